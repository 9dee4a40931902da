"""What the backends spell differently where they store the same rows.

A `Dialect` says how values are bound and read back (context ids, times, lists of strings)
and how the few SQL fragments that differ are written; the shared SQL (`_sql`) and the row
codec (`_rows`) are written once over it. Each backend module defines its own.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any, ClassVar

__all__ = ["Dialect", "Params"]


class Dialect(ABC):
    """One backend's spelling of the SQL and values both backends share."""

    placeholder: ClassVar[str]
    """Before a parameter's number: ``?`` (SQLite's ``?NNN``) or ``$``."""
    no_limit: ClassVar[Any]
    """The LIMIT that limits nothing."""
    byte_order: ClassVar[str]
    """What makes an ORDER BY of text follow byte order (SQLite's default)."""
    empty_payload: ClassVar[str]
    """A version's payload column, left empty for listings."""
    tagged: ClassVar[str]
    """Whether a version has tags."""
    owner_column: ClassVar[str] = "context_id"
    """The column by which a row of messages, events, versions or branches names its
    context."""

    def param(self, number: int) -> str:
        return f"{self.placeholder}{number}"

    def nullable_text(self, number: int) -> str:
        """Text parameter `number` where it may be compared with NULL."""
        return self.param(number)

    def owner(self, context_id: str) -> str:
        """The `owner_column` value of the context whose id is the SQL `context_id`."""
        return context_id

    def owned_by(self, context_id: str) -> str:
        """Whether a row of messages, events, versions or branches belongs to the context
        whose id is the SQL `context_id`."""
        return f"{self.owner_column} = {self.owner(context_id)}"

    # -- values as bound and as read -----------------------------------------------------

    @abstractmethod
    def key(self, context_id: str) -> Any:
        """A context id as bound."""

    @abstractmethod
    def lookup_key(self, context_id: str) -> Any:
        """A context id as looked up: None where no stored context can have it."""

    @abstractmethod
    def time(self, micros: int) -> Any:
        """A time (microseconds since the epoch) as bound."""

    @abstractmethod
    def micros(self, stored: Any) -> int:
        """A time as read, in microseconds since the epoch."""

    @abstractmethod
    def strings(self, values: Sequence[str]) -> Any:
        """A list of strings (collaborators, tags) as bound."""

    @abstractmethod
    def string_list(self, stored: Any) -> list[str]:
        """A list of strings as read."""

    # -- SQL fragments -------------------------------------------------------------------

    @abstractmethod
    def has_member(self, strings: str, value: str) -> str:
        """Whether the list of strings `strings` holds `value`."""

    @abstractmethod
    def grants_any(self, permissions: str, user: str) -> str:
        """Whether the permissions map grants `user` anything."""

    @abstractmethod
    def one_of(self, column: str, values: Sequence[str], params: Params) -> str:
        """Whether `column` is one of `values`."""

    @abstractmethod
    def contains(self, column: str, pattern: str) -> str:
        """Whether `column` matches the LIKE `pattern` (escaped with backslashes), ignoring
        case as the database does."""

    @abstractmethod
    def metadata_matches(
        self, pairs: Sequence[tuple[tuple[str, ...], Any]], params: Params
    ) -> list[str]:
        """Conditions that the metadata holds each (path, JSON value)."""


class Params:
    """Positional parameters for a statement built piece by piece."""

    def __init__(self, dialect: Dialect) -> None:
        self.dialect = dialect
        self.values: list[Any] = []

    def __call__(self, value: Any) -> str:
        self.values.append(value)
        return self.dialect.param(len(self.values))
