"""SQLite's own SQL: its dialect of the shared SQL (JSON text for lists, integer times),
and the statements a write transaction runs on one connection."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterable, Sequence
from itertools import repeat
from typing import Any, TypeVar

import orjson

from ..errors import ContextNotFound, Issue, ValidationFailed
from ._calls import CallRows
from ._compact import joined_events, spans
from ._dialect import Dialect, Params
from ._plans import Planned, revision_guard_missed
from ._rows import Codec, Row, dumps
from ._sql import Statements
from ._types import BranchRecord, ContextRecord, EventRecord, MessageRecord, Mutation, VersionRecord

__all__ = [
    "CALLS",
    "DIALECT",
    "ROWS",
    "SQL",
    "existing",
    "insert_context_row",
    "insert_event",
    "insert_messages",
    "insert_versions",
    "load_events",
    "one",
    "save_branch",
    "select_branch",
    "select_context",
    "write_mutation",
    "write_planned",
]

R = TypeVar("R")


class _SQLite(Dialect):
    """Context ids are text, times integers (microseconds), lists JSON text; the rows of a
    context name it by its row in the contexts table."""

    placeholder = "?"
    no_limit = -1
    byte_order = ""
    empty_payload = "x''"
    tagged = "tags != '[]'"
    owner_column = "context_row"

    def owner(self, context_id: str) -> str:
        return f"(SELECT row_id FROM contexts WHERE context_id = {context_id})"

    def key(self, context_id: str) -> str:
        return context_id

    def lookup_key(self, context_id: str) -> str:
        return context_id

    def time(self, micros: int) -> int:
        return micros

    def micros(self, stored: Any) -> int:
        return int(stored)

    def strings(self, values: Sequence[str]) -> str:
        return dumps(list(values))

    def string_list(self, stored: Any) -> list[str]:
        return list(orjson.loads(stored))

    def has_member(self, strings: str, value: str) -> str:
        return f"EXISTS (SELECT 1 FROM json_each({strings}) WHERE value = {value})"

    def grants_any(self, permissions: str, user: str) -> str:
        return (
            f"EXISTS (SELECT 1 FROM json_each({permissions}) "
            f"WHERE key = {user} AND json_array_length(value) > 0)"
        )

    def one_of(self, column: str, values: Sequence[str], params: Params) -> str:
        return f"{column} IN ({', '.join(params(value) for value in values)})"

    def contains(self, column: str, pattern: str) -> str:
        return f"{column} LIKE {pattern} ESCAPE '\\'"

    def metadata_matches(
        self, pairs: Sequence[tuple[tuple[str, ...], Any]], params: Params
    ) -> list[str]:
        # Same kind and same value: integers and reals are one kind, numbers, as in JSON.
        conditions = []
        for path, value in pairs:
            json_path = params("$" + "".join(f'."{key}"' for key in path))
            wanted = params(dumps(value))
            stored, asked = f"json_type(c.metadata, {json_path})", f"json_type({wanted}, '$')"
            conditions.append(
                f"{_json_kind(stored)} = {_json_kind(asked)} AND "
                f"json_extract(c.metadata, {json_path}) IS json_extract({wanted}, '$')"
            )
        return conditions


def _json_kind(json_type: str) -> str:
    return f"(CASE WHEN {json_type} IN ('integer', 'real') THEN 'number' ELSE {json_type} END)"


DIALECT = _SQLite()
ROWS = Codec(DIALECT)
SQL = Statements(DIALECT)
CALLS = CallRows(DIALECT)


def one(conn: sqlite3.Connection, sql: str, params: Sequence[Any] = ()) -> Any:
    """The first row of a query, with its statement finished so COMMIT never waits on it."""
    cursor = conn.execute(sql, params)
    try:
        return cursor.fetchone()
    finally:
        cursor.close()


_GUARD = "WHERE context_id = ? AND revision = ?"
_REWRITE = (
    "UPDATE contexts SET title = ?, description = ?, data = ?, metadata = ?, extra = ?, "
    "state = ?, owner_id = ?, collaborators = ?, permissions = ?, revision = ?, "
    "message_count = ?, turn_count = ?, doc_bytes = ?, messages_bytes = ?, last_modified = ?, "
    "last_accessed = ?, checksum = ?, versioning = ?, version_number = ?, coordination = ? "
    + _GUARD
)
_APPEND = (
    "UPDATE contexts SET revision = ?, message_count = ?, turn_count = ?, messages_bytes = ?, "
    "last_modified = ?, versioning = ?, version_number = ?, coordination = ? " + _GUARD
)


def select_context(conn: sqlite3.Connection, context_id: str) -> ContextRecord | None:
    """The row, stamped with the time it was read (this machine is the database's)."""
    row = one(conn, SQL.select_context, (context_id,))
    return None if row is None else ROWS.context(row, read_at=time.time_ns() // 1000)


def existing(conn: sqlite3.Connection, context_id: str) -> ContextRecord:
    current = select_context(conn, context_id)
    if current is None:
        raise ContextNotFound(context_id)
    return current


def select_branch(conn: sqlite3.Connection, context_id: str, name: str) -> BranchRecord | None:
    row = one(conn, SQL.select_branch, (context_id, name))
    return None if row is None else ROWS.branch(context_id, row)


def write_planned(conn: sqlite3.Connection, planned: Planned[R]) -> R:
    """Write what the plans decided; what they decided to return."""
    for current, mutation in planned.mutations:
        write_mutation(conn, current, mutation)
    return planned.result


def write_mutation(conn: sqlite3.Connection, current: ContextRecord, mutation: Mutation) -> None:
    """Write what a plan made of `current`: the row (guarded by its revision), the messages,
    the event, and any branch row and version."""
    _write_row(conn, current.revision, mutation)
    insert_messages(conn, current.context_id, mutation.segment, mutation.messages)
    insert_event(conn, mutation.event, mutation.segment, mutation.messages)
    if mutation.branch is not None:
        save_branch(conn, mutation.branch)
    if mutation.version is not None:
        insert_versions(conn, [mutation.version])
    if mutation.calls:
        conn.executemany(CALLS.insert, map(CALLS.values, mutation.calls))


def _write_row(conn: sqlite3.Connection, old_revision: int, mutation: Mutation) -> None:
    new = mutation.record
    if mutation.document_changed:
        values = ROWS.context_values(new)
        written = conn.execute(
            _REWRITE, (*values[2:16], *values[17:], new.context_id, old_revision)
        ).rowcount
    else:
        bookkeeping = (new.revision, new.message_count, new.turn_count, new.messages_bytes)
        written = conn.execute(
            _APPEND,
            (
                *bookkeeping,
                new.last_modified,
                dumps(new.versioning.to_json()),
                new.version_number,
                dumps(new.coordination.to_json()),
                new.context_id,
                old_revision,
            ),
        ).rowcount
    if written != 1:
        stored = one(conn, SQL.select_revision, (new.context_id,))
        actual = None if stored is None else int(stored[0])
        raise revision_guard_missed(new.context_id, old_revision, actual)


def save_branch(conn: sqlite3.Connection, branch: BranchRecord) -> None:
    conn.execute(f"INSERT OR REPLACE INTO {SQL.branch_row}", ROWS.branch_values(branch))


def insert_context_row(conn: sqlite3.Connection, record: ContextRecord) -> None:
    try:
        conn.execute(SQL.insert_context, ROWS.context_values(record))
    except sqlite3.IntegrityError as exc:
        raise ValidationFailed(
            "a context with this id exists", [Issue("/context_id", record.context_id)]
        ) from exc


def insert_versions(conn: sqlite3.Connection, versions: Sequence[VersionRecord]) -> None:
    conn.executemany(SQL.insert_version, [ROWS.version_values(version) for version in versions])


_INSERT_MESSAGE = (
    "INSERT INTO messages (context_row, branch, seq, message_id, role, body, body_blob, "
    f"search_text, created_at) VALUES ({DIALECT.owner('?1')}, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"
)
_INSERT_EVENT = (
    "INSERT INTO events (context_row, revision, op, changes, user_id, created_at, branch, "
    f"provider, tool) VALUES ({DIALECT.owner('?1')}, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"
)


def insert_messages(
    conn: sqlite3.Connection, context_id: str, segment: str, messages: Sequence[MessageRecord]
) -> None:
    if not messages:
        return
    rows = list(zip(repeat(context_id), repeat(segment), *ROWS.message_columns(messages)))
    try:
        conn.executemany(_INSERT_MESSAGE, rows)
    except sqlite3.IntegrityError as exc:
        raise ValidationFailed(
            "a message id is already used in this context", [Issue("/messages", str(exc))]
        ) from exc
    conn.execute(
        "INSERT INTO messages_fts (rowid, search_text) SELECT id, search_text FROM messages "
        f"WHERE {DIALECT.owned_by('?1')} AND branch = ?2 AND seq BETWEEN ?3 AND ?4",
        (context_id, segment, messages[0].seq, messages[-1].seq),
    )


def insert_event(
    conn: sqlite3.Connection,
    event: EventRecord,
    segment: str = "main",
    messages: Sequence[MessageRecord] = (),
) -> None:
    """Insert `event`, whose change wrote `messages` to `segment` (named, not copied)."""
    conn.execute(_INSERT_EVENT, ROWS.event_values(event, segment, messages))


def load_events(
    conn: sqlite3.Connection, context_id: str, rows: Iterable[Row]
) -> list[EventRecord]:
    """The events of `rows`, with the messages they name read back in."""
    events = [ROWS.event(context_id, row) for row in rows]
    messages = [
        (span.segment, ROWS.message(row))
        for span in spans(events)
        for row in conn.execute(
            SQL.select_message_span, (context_id, span.segment, span.first, span.last)
        )
    ]
    return joined_events(events, messages)
