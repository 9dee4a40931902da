"""What storage adapters read and write: plain records, no models, no I/O."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "ContextRecord",
    "EventRecord",
    "MessageRecord",
    "Mutation",
    "NotModified",
    "Plan",
    "RecordQuery",
    "SearchRecord",
    "StorageHealth",
]


@dataclass(frozen=True, slots=True)
class ContextRecord:
    """One row of the contexts table. Times are microseconds since the epoch (UTC)."""

    context_id: str
    context_type: str
    title: str
    description: str
    data: dict[str, Any]
    metadata: dict[str, Any]
    extra: dict[str, Any]
    state: str
    owner_id: str | None
    collaborators: list[str]
    permissions: dict[str, list[str]]
    revision: int
    message_count: int
    turn_count: int
    doc_bytes: int
    messages_bytes: int
    created_at: int
    last_modified: int
    last_accessed: int

    @property
    def size_bytes(self) -> int:
        return self.doc_bytes + self.messages_bytes


@dataclass(frozen=True, slots=True)
class MessageRecord:
    """One stored message; ``body`` is the message's JSON (without ``seq``)."""

    seq: int
    message_id: str
    role: str
    body: bytes
    search_text: str
    created_at: int


@dataclass(frozen=True, slots=True)
class EventRecord:
    """One committed change; ``changes`` is the JSON Patch it applied."""

    context_id: str
    revision: int
    op: str
    changes: list[dict[str, Any]]
    user_id: str | None
    created_at: int


@dataclass(frozen=True, slots=True)
class Mutation:
    """What one committed change writes, all in one transaction.

    ``record`` is the new row; its revision must be the stored one plus one. With
    ``document_changed`` False only the counters and times of the row are written.
    """

    record: ContextRecord
    event: EventRecord
    messages: Sequence[MessageRecord] = ()
    document_changed: bool = True


Plan = Callable[[ContextRecord], Mutation | None]
"""Decides, inside the write transaction, what to write given the current row.

It may raise a `LoremasterError` (permission, conflict, validation) to write nothing;
returning None also writes nothing. It must be pure: it may run in a worker thread.
"""


class NotModified:
    """The row's revision is the one the caller already has."""


@dataclass(frozen=True, slots=True)
class RecordQuery:
    """A `ContextQuery` resolved for storage: times in microseconds, cursor decoded."""

    context_type: str | None
    states: tuple[str, ...]
    owner_id: str | None
    collaborator: str | None
    title_contains: str | None
    metadata_match: tuple[tuple[tuple[str, ...], Any], ...]
    created_after: int | None
    created_before: int | None
    modified_after: int | None
    modified_before: int | None
    order_by: str
    descending: bool
    limit: int
    offset: int
    after: tuple[Any, str] | None
    reader: str | None


@dataclass(frozen=True, slots=True)
class SearchRecord:
    context_id: str
    context_type: str
    title: str
    score: float
    snippet: str
    message_seq: int | None


@dataclass(frozen=True, slots=True)
class StorageHealth:
    backend: str
    reachable: bool
    schema_version: int
    details: dict[str, Any] = field(default_factory=dict)
