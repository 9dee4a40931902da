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

    def version(self, row: Row) -> VersionRecord:
        return VersionRecord(
            version_id=row[0],
            context_id=str(row[1]),
            number=row[2],
            branch=row[3],
            parent_id=row[4],
            kind=row[5],
            payload=row[6],
            size_bytes=row[7],
            message_seq=row[8],
            view=tuple((str(s), int(n)) for s, n in orjson.loads(row[9])),
            turn_count=row[10],
            revision=row[11],
            author=row[12],
            message=row[13],
            tags=tuple(self.dialect.string_list(row[14])),
            created_at=self.dialect.micros(row[15]),
            checksum=row[16],
            merge_parent_id=row[17],
            automatic=bool(row[18]),
        )

    def version_values(self, version: VersionRecord) -> tuple[Any, ...]:
        return (
            version.version_id,
            self.dialect.key(version.context_id),
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

    def branch(self, row: Row) -> BranchRecord:
        return BranchRecord(
            context_id=str(row[0]),
            name=row[1],
            document=orjson.loads(row[2]),
            message_count=row[3],
            turn_count=row[4],
            messages_bytes=row[5],
            versioning=VersionState.from_json(orjson.loads(row[6])),
            base_version=row[7],
            created_by=row[8],
            created_at=self.dialect.micros(row[9]),
            last_modified=self.dialect.micros(row[10]),
        )

    def branch_values(self, branch: BranchRecord) -> tuple[Any, ...]:
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
