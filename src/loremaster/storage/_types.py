"""What storage adapters read and write: plain records, no models, no I/O."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from ..errors import DataCorrupted

__all__ = [
    "SNIPPET_BEFORE",
    "SNIPPET_WINDOW",
    "BranchPlan",
    "BranchRecord",
    "ContextRecord",
    "ContextRows",
    "Coordination",
    "EventRecord",
    "IdempotencyRecord",
    "Lease",
    "MessageRecord",
    "Mutation",
    "NewContext",
    "NotModified",
    "Piece",
    "Plan",
    "RecordQuery",
    "SearchRecord",
    "StorageHealth",
    "VersionRecord",
    "VersionState",
    "check_written",
    "search_words",
    "snippet",
    "summarize_statistics",
]


Piece = tuple[str, int]
"""Messages ``(previous piece's end, end]`` of a message segment: (segment, end seq)."""


@dataclass(frozen=True, slots=True)
class VersionState:
    """A branch's versioning bookkeeping, kept on its row.

    ``segment`` is the message segment the branch appends to; ``lineage`` the closed
    pieces before it (a fork or a rollback starts a new segment). ``pending`` is the JSON
    Patch from the ``head`` version to the current document, or None when unknown (then
    the next version is a snapshot); ``depth`` counts patches since the head's snapshot.
    """

    segment: str = "main"
    lineage: tuple[Piece, ...] = ()
    head: str | None = None
    depth: int = 0
    pending: list[dict[str, Any]] | None = None
    changes_since: int = 0
    head_at: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "segment": self.segment,
            "lineage": [list(piece) for piece in self.lineage],
            "head": self.head,
            "depth": self.depth,
            "pending": self.pending,
            "changes_since": self.changes_since,
            "head_at": self.head_at,
        }

    @classmethod
    def from_json(cls, value: dict[str, Any]) -> VersionState:
        return cls(
            segment=value.get("segment", "main"),
            lineage=tuple((str(s), int(n)) for s, n in value.get("lineage", ())),
            head=value.get("head"),
            depth=value.get("depth", 0),
            pending=value.get("pending"),
            changes_since=value.get("changes_since", 0),
            head_at=value.get("head_at", 0),
        )


@dataclass(frozen=True, slots=True)
class Lease:
    """An exclusive edit lock: who holds it, its fencing token (the context revision that
    granted it: tokens only grow) and when it ends (microseconds, the database's clock)."""

    holder: str
    token: int
    expires_at: int


@dataclass(frozen=True, slots=True)
class Coordination:
    """What a context row holds for collaboration: the edit lock, if any, and the
    conflicts waiting for a person (their records as JSON)."""

    lease: Lease | None = None
    conflicts: tuple[dict[str, Any], ...] = ()

    def to_json(self) -> dict[str, Any]:
        lease = self.lease
        return {
            "lease": None
            if lease is None
            else {"holder": lease.holder, "token": lease.token, "expires_at": lease.expires_at},
            "conflicts": list(self.conflicts),
        }

    @classmethod
    def from_json(cls, value: dict[str, Any]) -> Coordination:
        lease = value.get("lease")
        return cls(
            lease=None if lease is None else Lease(**lease),
            conflicts=tuple(value.get("conflicts", ())),
        )


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
    version_number: int = 0
    versioning: VersionState = field(default_factory=VersionState)
    coordination: Coordination = field(default_factory=Coordination)
    read_at: int = 0
    """When the row was read for a write, by the database's clock (microseconds)."""
    stale: bool = False
    """Served from a cache while the database was unavailable; never stored or shared."""

    @property
    def size_bytes(self) -> int:
        return self.doc_bytes + self.messages_bytes

    def to_json(self) -> bytes:
        fields = dataclasses.asdict(self)
        del fields["stale"]
        return orjson.dumps(fields)

    @classmethod
    def from_json(cls, blob: bytes) -> ContextRecord:
        fields = orjson.loads(blob)
        fields["versioning"] = VersionState.from_json(fields["versioning"])
        fields["coordination"] = Coordination.from_json(fields["coordination"])
        return cls(**fields)


@dataclass(frozen=True, slots=True)
class MessageRecord:
    """One stored message: its stored body (`pack_message`: the compact form, or the
    message's JSON without ``seq`` as written before) in ``body``, or, for a large one,
    ``body`` empty and a codec blob of that body in ``blob``."""

    seq: int
    message_id: str
    role: str
    body: bytes
    blob: bytes | None
    search_text: str
    created_at: int


@dataclass(frozen=True, slots=True)
class EventRecord:
    """One committed change; ``changes`` is the JSON Patch it applied to ``branch``."""

    context_id: str
    revision: int
    op: str
    changes: list[dict[str, Any]]
    user_id: str | None
    created_at: int
    branch: str = "main"
    provider: str | None = None


@dataclass(frozen=True, slots=True)
class VersionRecord:
    """One stored version: a codec blob of the document (``snapshot``) or of the JSON
    Patch from its parent's document (``delta``), and the message view it covers.
    Listings leave ``payload`` empty; ``size_bytes`` is the stored payload's size."""

    version_id: str
    context_id: str
    number: int
    branch: str
    parent_id: str | None
    kind: str
    payload: bytes
    message_seq: int
    view: tuple[Piece, ...]
    turn_count: int
    revision: int
    author: str | None
    message: str
    tags: tuple[str, ...]
    created_at: int
    checksum: str
    size_bytes: int
    merge_parent_id: str | None = None
    """A merge's version: the source branch's version that was merged in."""
    automatic: bool = False
    """Made by a change (not asked for): cleanup keeps CONTEXT_MAX_VERSIONS of these."""


@dataclass(frozen=True, slots=True)
class BranchRecord:
    """A branch other than ``main`` (whose state is the context row itself)."""

    context_id: str
    name: str
    document: dict[str, Any]
    message_count: int
    turn_count: int
    messages_bytes: int
    versioning: VersionState
    base_version: str | None
    created_by: str | None
    created_at: int
    last_modified: int


@dataclass(frozen=True, slots=True)
class Mutation:
    """What one committed change writes, all in one transaction.

    ``record`` is the new row; its revision must be the stored one plus one. With
    ``document_changed`` False only the counters, times and versioning state of the row
    are written. Messages go to ``segment``; ``branch`` (for a branch other than main) is
    written as it is, and ``version`` is inserted.
    """

    record: ContextRecord
    event: EventRecord
    messages: Sequence[MessageRecord] = ()
    document_changed: bool = True
    segment: str = "main"
    branch: BranchRecord | None = None
    version: VersionRecord | None = None


@dataclass(frozen=True, slots=True)
class NewContext:
    """A context's first revision: its row, its messages, its ``create`` event and, when
    versioning is on, its first version."""

    record: ContextRecord
    messages: Sequence[MessageRecord]
    event: EventRecord
    version: VersionRecord | None = None


@dataclass(frozen=True, slots=True)
class ContextRows:
    """Every stored row of one context, as stored: the row, the branches other than main,
    the messages of every segment (``(segment, message)``, by segment then seq), the
    versions with their payloads (by number) and the events (by revision). What a full
    export reads and a full import writes."""

    record: ContextRecord
    branches: Sequence[BranchRecord]
    messages: Sequence[tuple[str, MessageRecord]]
    versions: Sequence[VersionRecord]
    events: Sequence[EventRecord]


def check_written(rows: ContextRows, found: Sequence[int]) -> None:
    """Refuse (inside the write transaction, so nothing lands) a context whose rows are
    not all there: `found` counts its (messages, events, versions, branches) as written."""
    wanted = (len(rows.messages), len(rows.events), len(rows.versions), len(rows.branches))
    if tuple(found) != wanted:
        raise DataCorrupted(
            f"context {rows.record.context_id}: wrote (messages, events, versions, branches) "
            f"{tuple(found)}, not {wanted}"
        )


Plan = Callable[[ContextRecord], Mutation | None]
BranchPlan = Callable[[ContextRecord, BranchRecord | None], Mutation | None]
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
    """A search hit: a context's title or description, or one stored message (`segment`,
    `message_seq`), with the main branch's versioning state and message count (which
    messages main shows)."""

    context_id: str
    context_type: str
    title: str
    score: float
    snippet: str
    message_seq: int | None
    segment: str | None = None
    versioning: VersionState = VersionState()
    message_count: int = 0


@dataclass(frozen=True, slots=True)
class IdempotencyRecord:
    """An idempotency key as a claim left it: `claimed` by that claim (the caller owns it
    now), or held already, with the fingerprint of the request that claimed it and, once
    that request finished, its response (`status` None until then)."""

    claimed: bool
    fingerprint: str
    status: int | None = None
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_row(cls, row: Sequence[Any], claim_id: str) -> IdempotencyRecord:
        """The record of a row (claim id, fingerprint, status, body, headers as JSON text)
        read after the claim `claim_id` tried it."""
        claimed_by, fingerprint, status, body, headers = row
        return cls(
            claimed=claimed_by == claim_id,
            fingerprint=fingerprint,
            status=status,
            body=b"" if body is None else bytes(body),
            headers={} if headers is None else orjson.loads(headers),
        )


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


SNIPPET_BEFORE = 40
"""Characters a message snippet shows before its first match."""
SNIPPET_WINDOW = 120
"""Characters of a message a snippet is cut from."""


def snippet(window: str, words: Sequence[str], *, cut_before: bool, cut_after: bool) -> str:
    """A snippet of a message's text: the `window` around the first match, cut to whole
    words, the words of the search marked ``[like this]`` (as prefixes), ``…`` where the
    text goes on. Linear in the window, whatever the message's size."""
    shown = " ".join(window.split())
    if cut_before and " " in shown:
        shown = shown.split(" ", 1)[1]
    if cut_after and " " in shown:
        shown = shown.rsplit(" ", 1)[0]
    if words:
        prefixes = "|".join(re.escape(word) for word in words)
        shown = re.sub(
            rf"\b(?:{prefixes})\w*", lambda hit: f"[{hit.group(0)}]", shown, flags=re.IGNORECASE
        )
    return ("…" if cut_before else "") + shown + ("…" if cut_after else "")


def search_words(text: str) -> list[str]:
    """The words of a search: every one must occur, the last also as a prefix.

    Only word characters survive, so search syntax in user text is never interpreted.
    """
    return re.findall(r"\w+", text)
