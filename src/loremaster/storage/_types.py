"""What storage adapters read and write: plain records, no models, no I/O."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "ContextRecord",
    "EventRecord",
    "MessageRecord",
    "Mutation",
    "NewContext",
    "NotModified",
    "Plan",
    "RecordQuery",
    "SearchRecord",
    "StorageHealth",
    "search_words",
    "summarize_statistics",
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
    checksum: str | None = None

    @property
    def size_bytes(self) -> int:
        return self.doc_bytes + self.messages_bytes


@dataclass(frozen=True, slots=True)
class MessageRecord:
    """One stored message: its JSON (without ``seq``) in ``body``, or, for a large one,
    ``body`` empty and a codec blob of the JSON in ``blob``."""

    seq: int
    message_id: str
    role: str
    body: bytes
    blob: bytes | None
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


@dataclass(frozen=True, slots=True)
class NewContext:
    """A context's first revision: its row, its messages and its ``create`` event."""

    record: ContextRecord
    messages: Sequence[MessageRecord]
    event: EventRecord


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


def summarize_statistics(rows: Iterable[Sequence[Any]]) -> dict[str, Any]:
    """Totals and the per-(type, state) rows of the context_statistics view."""
    groups = [
        {
            "context_type": row[0],
            "state": row[1],
            "contexts": int(row[2]),
            "bytes": int(row[3] or 0),
            "messages": int(row[4] or 0),
            "max_messages": int(row[5] or 0),
        }
        for row in rows
    ]
    contexts = sum(group["contexts"] for group in groups)
    messages = sum(group["messages"] for group in groups)
    return {
        "contexts": contexts,
        "messages": messages,
        "bytes": sum(group["bytes"] for group in groups),
        "messages_per_context": round(messages / contexts, 2) if contexts else 0.0,
        "max_messages": max((group["max_messages"] for group in groups), default=0),
        "by_type_and_state": groups,
    }


def search_words(text: str) -> list[str]:
    """The words of a search: every one must occur, the last also as a prefix.

    Only word characters survive, so search syntax in user text is never interpreted.
    """
    return re.findall(r"\w+", text)
