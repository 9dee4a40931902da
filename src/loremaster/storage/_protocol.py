"""The contract every storage backend fulfils; the contract tests run against each."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol

from ._types import (
    ContextRecord,
    EventRecord,
    MessageRecord,
    NotModified,
    Plan,
    RecordQuery,
    SearchRecord,
    StorageHealth,
)

__all__ = ["Storage"]


class Storage(Protocol):
    """Durable contexts, messages and events.

    Every method that writes runs one transaction: the row, its messages and its event
    commit together or not at all. Revisions of a context are gapless.
    """

    backend: str

    async def open(self) -> None:
        """Connect and apply pending schema migrations."""

    async def close(self) -> None: ...

    async def insert_context(
        self, record: ContextRecord, messages: Sequence[MessageRecord], event: EventRecord
    ) -> None:
        """Store a new context (``ValidationFailed`` if its id is taken)."""

    async def load_context(
        self, context_id: str, known_revision: int | None = None
    ) -> ContextRecord | NotModified | None:
        """The row, `NotModified` if it is still at `known_revision`, None if missing."""

    async def modify_context(self, context_id: str, plan: Plan) -> ContextRecord:
        """Run `plan` on the current row inside a write transaction and commit its mutation.

        Returns the row as committed (the current row when the plan returned None);
        ``ContextNotFound`` when there is no such row.
        """

    async def delete_context(
        self, context_id: str, authorize: Callable[[ContextRecord], None]
    ) -> None:
        """Remove the row, its messages and its events for good, if `authorize` allows."""

    async def load_messages(
        self, context_id: str, *, branch: str, limit: int | None, before_seq: int | None
    ) -> list[MessageRecord]:
        """The last `limit` messages before `before_seq` (all when None), oldest first."""

    async def load_events(
        self, context_id: str, *, since_revision: int, limit: int | None
    ) -> list[EventRecord]:
        """Events with revision > `since_revision`, in revision order."""

    async def query_contexts(self, query: RecordQuery) -> list[ContextRecord]: ...

    async def search(self, text: str, *, reader: str | None, limit: int) -> list[SearchRecord]:
        """Full-text search over titles, descriptions and message text, best first."""

    async def touch(self, context_id: str, *, when: int, not_since: int) -> None:
        """Set last_accessed to `when` unless it is already at or after `not_since`."""

    async def health(self) -> StorageHealth: ...
