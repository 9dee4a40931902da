"""Stored rows <-> records, once for both backends: rows come in and go out in the column
order of `_sql`, their values spelled by a `Dialect`. Stored rows are a wire format."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

import orjson

from ._compact import StoredEvent, read_changes, stored_changes
from ._dialect import Dialect
from ._types import (
    BranchRecord,
    ContextRecord,
    Coordination,
    EventRecord,
    MessageRecord,
    VersionRecord,
    VersionState,
)

__all__ = ["Codec", "Row", "dumps"]


class Row(Protocol):
    """A row as a driver returns it: its values by position."""

    def __getitem__(self, index: int, /) -> Any: ...


def dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


class Codec:
    """Reads records from rows and writes them as values to bind, in one dialect."""

    def __init__(self, dialect: Dialect) -> None:
        self.dialect = dialect

    # -- contexts ------------------------------------------------------------------------

    def context(self, row: Row, read_at: int = 0) -> ContextRecord:
        loads, micros = orjson.loads, self.dialect.micros
        return ContextRecord(
            context_id=str(row[0]),
            context_type=row[1],
            title=row[2],
            description=row[3],
            data=loads(row[4]),
            metadata=loads(row[5]),
            extra=loads(row[6]),
            state=row[7],
            owner_id=row[8],
            collaborators=self.dialect.string_list(row[9]),
            permissions=loads(row[10]),
            revision=row[11],
            message_count=row[12],
            turn_count=row[13],
            doc_bytes=row[14],
            messages_bytes=row[15],
            created_at=micros(row[16]),
            last_modified=micros(row[17]),
            last_accessed=micros(row[18]),
            checksum=row[19],
            versioning=VersionState.from_json(loads(row[20])),
            version_number=row[21],
            coordination=Coordination.from_json(loads(row[22])),
            read_at=read_at,
        )

    def context_values(self, record: ContextRecord) -> tuple[Any, ...]:
        time = self.dialect.time
        return (
            self.dialect.key(record.context_id),
            record.context_type,
            record.title,
            record.description,
            dumps(record.data),
            dumps(record.metadata),
            dumps(record.extra),
            record.state,
            record.owner_id,
            self.dialect.strings(record.collaborators),
            dumps(record.permissions),
            record.revision,
            record.message_count,
            record.turn_count,
            record.doc_bytes,
            record.messages_bytes,
            time(record.created_at),
            time(record.last_modified),
            time(record.last_accessed),
            record.checksum,
            dumps(record.versioning.to_json()),
            record.version_number,
            dumps(record.coordination.to_json()),
        )

    # -- versions and branches -----------------------------------------------------------

    def version(self, context_id: str, row: Row) -> VersionRecord:
        """A version of context `context_id` (its columns as read leave the context out)."""
        return VersionRecord(
            version_id=row[0],
            context_id=context_id,
            number=row[1],
            branch=row[2],
            parent_id=row[3],
            kind=row[4],
            payload=row[5],
            size_bytes=row[6],
            message_seq=row[7],
            view=tuple((str(s), int(n)) for s, n in orjson.loads(row[8])),
            turn_count=row[9],
            revision=row[10],
            author=row[11],
            message=row[12],
            tags=tuple(self.dialect.string_list(row[13])),
            created_at=self.dialect.micros(row[14]),
            checksum=row[15],
            merge_parent_id=row[16],
            automatic=bool(row[17]),
        )

    def version_values(self, version: VersionRecord) -> tuple[Any, ...]:
        """The version's context id, then its columns."""
        return (
            self.dialect.key(version.context_id),
            version.version_id,
            version.number,
            version.branch,
            version.parent_id,
            version.kind,
            version.payload,
            version.size_bytes,
            version.message_seq,
            dumps([list(piece) for piece in version.view]),
            version.turn_count,
            version.revision,
            version.author,
            version.message,
            self.dialect.strings(list(version.tags)),
            self.dialect.time(version.created_at),
            version.checksum,
            version.merge_parent_id,
            version.automatic,
        )

    def branch(self, context_id: str, row: Row) -> BranchRecord:
        """A branch of context `context_id` (its columns as read leave the context out)."""
        return BranchRecord(
            context_id=context_id,
            name=row[0],
            document=orjson.loads(row[1]),
            message_count=row[2],
            turn_count=row[3],
            messages_bytes=row[4],
            versioning=VersionState.from_json(orjson.loads(row[5])),
            base_version=row[6],
            created_by=row[7],
            created_at=self.dialect.micros(row[8]),
            last_modified=self.dialect.micros(row[9]),
        )

    def branch_values(self, branch: BranchRecord) -> tuple[Any, ...]:
        """The branch's context id, then its columns."""
        return (
            self.dialect.key(branch.context_id),
            branch.name,
            dumps(branch.document),
            branch.message_count,
            branch.turn_count,
            branch.messages_bytes,
            dumps(branch.versioning.to_json()),
            branch.base_version,
            branch.created_by,
            self.dialect.time(branch.created_at),
            self.dialect.time(branch.last_modified),
        )

    # -- messages and events -------------------------------------------------------------

    def message(self, row: Row) -> MessageRecord:
        # A large message's body is stored empty (SQLite) or NULL (PostgreSQL).
        body = (row[3] or "").encode()
        return MessageRecord(
            row[0], row[1], row[2], body, row[4], row[5], self.dialect.micros(row[6])
        )

    def message_columns(self, messages: Sequence[MessageRecord]) -> list[list[Any]]:
        """The messages' values as parallel columns: seq, message_id, role, body, blob,
        search_text, created_at."""
        time = self.dialect.time
        return [
            [m.seq for m in messages],
            [m.message_id for m in messages],
            [m.role for m in messages],
            [m.body.decode() for m in messages],
            [m.blob for m in messages],
            [m.search_text for m in messages],
            [time(m.created_at) for m in messages],
        ]

    def event(self, context_id: str, row: Row) -> StoredEvent:
        """An event as stored: its changes may name messages to join back in."""
        record = EventRecord(
            context_id,
            row[0],
            row[1],
            [],
            row[3],
            self.dialect.micros(row[4]),
            row[5],
            row[6],
            row[7],
        )
        return read_changes(record, orjson.loads(row[2]))

    def event_values(
        self, event: EventRecord, segment: str = "main", messages: Sequence[MessageRecord] = ()
    ) -> tuple[Any, ...]:
        """The event's values, its change having written `messages` to `segment`."""
        return (
            self.dialect.key(event.context_id),
            event.revision,
            event.op,
            dumps(stored_changes(event.changes, segment, messages)),
            event.user_id,
            self.dialect.time(event.created_at),
            event.branch,
            event.provider,
            event.tool,
        )
