"""PostgreSQL's own SQL: its dialect of the shared SQL, and its writes of one statement each
(data-modifying CTEs), guarded, pipelined and stamped with the transaction's write id."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

import asyncpg

from ..errors import ContextNotFound, Issue, ValidationFailed
from ..models import from_micros, to_micros
from ._calls import CallRows
from ._dialect import Dialect, Params
from ._plans import revision_guard_missed
from ._rows import Codec, dumps
from ._sql import CONTEXT_COLUMNS, Statements
from ._types import ContextRecord, ContextRows, EventRecord, MessageRecord, Mutation, NewContext

if TYPE_CHECKING:
    from asyncpg.pool import PoolConnectionProxy

    Connection = PoolConnectionProxy[asyncpg.Record]

__all__ = [
    "CALLS",
    "DIALECT",
    "ROWS",
    "SQL",
    "insert_new",
    "insert_rows",
    "landed",
    "landed_on_rows",
    "lock_rows",
    "write_mutations",
]


def _lookup_key(context_id: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(context_id)
    except ValueError:
        return None


class _Postgres(Dialect):
    """Context ids are uuids, times timestamptz, lists text[]."""

    placeholder = "$"
    no_limit = None
    byte_order = ' COLLATE "C"'
    empty_payload = "''::bytea AS payload"
    tagged = "cardinality(tags) > 0"

    def nullable_text(self, number: int) -> str:
        return f"${number}::text"

    def key(self, context_id: str) -> uuid.UUID:
        return uuid.UUID(context_id)

    def lookup_key(self, context_id: str) -> uuid.UUID | None:
        return _lookup_key(context_id)

    def time(self, micros: int) -> datetime:
        return from_micros(micros)

    def micros(self, stored: Any) -> int:
        return to_micros(stored)

    def strings(self, values: Sequence[str]) -> list[str]:
        return list(values)

    def string_list(self, stored: Any) -> list[str]:
        return list(stored)

    def has_member(self, strings: str, value: str) -> str:
        return f"{strings} @> ARRAY[{value}]::text[]"

    def grants_any(self, permissions: str, user: str) -> str:
        return f"jsonb_array_length({permissions} -> {user}) > 0"

    def one_of(self, column: str, values: Sequence[str], params: Params) -> str:
        return f"{column} = ANY({params(list(values))}::text[])"

    def contains(self, column: str, pattern: str) -> str:
        return f"{column} ILIKE {pattern}"

    def metadata_matches(
        self, pairs: Sequence[tuple[tuple[str, ...], Any]], params: Params
    ) -> list[str]:
        # Values go through @> (the GIN index); null needs equality, which @> would not
        # give ({"k": null} contains no key k).
        values = [(path, v) for path, v in pairs if v is not None]
        conditions = [f"c.metadata @> {params(dumps(_nest(values)))}::jsonb"] if values else []
        conditions += [
            f"c.metadata #> {params(list(path))}::text[] = 'null'::jsonb"
            for path, value in pairs
            if value is None
        ]
        return conditions


def _nest(pairs: Sequence[tuple[tuple[str, ...], Any]]) -> dict[str, Any]:
    nested: dict[str, Any] = {}
    for path, value in pairs:
        node = nested
        for key in path[:-1]:
            node = node.setdefault(key, {})
        node[path[-1]] = value
    return nested


DIALECT = _Postgres()
ROWS = Codec(DIALECT)
SQL = Statements(DIALECT)
CALLS = CallRows(DIALECT)


# Every write is one statement: data-modifying CTEs write the row and the messages, and the
# messages and the event are inserted from the row write (joined with r), so nothing lands
# if the revision-guarded row write matched nothing; one round trip commits a whole change
# (a version or a branch row, when there is one, follows in the same transaction).
# Parameters $1-$7 are the event's, $8-$14 the messages' (as arrays), the row's follow;
# the message segment and the event's branch come last.
def _event_sql(branch: str, provider: str, tool: str) -> str:
    return (
        "INSERT INTO events (context_id, revision, op, changes, user_id, created_at, write_id, "
        f"branch, provider, tool) SELECT $1, $2, $3, $4, $5, $6, $7, {branch}, {provider}, "
        f"{tool} FROM r"
    )


def _messages_sql(segment: str) -> str:
    return (
        "m AS (INSERT INTO messages (context_id, branch, seq, message_id, role, body, "
        f"body_blob, search_text, created_at) SELECT $1, {segment}, x.seq, x.message_id, "
        "x.role, NULLIF(x.body, '')::json, x.body_blob, x.search_text, x.created_at FROM "
        "unnest($8::bigint[], $9::text[], $10::text[], $11::text[], $12::bytea[], $13::text[], "
        "$14::timestamptz[]) AS x(seq, message_id, role, body, body_blob, search_text, "
        "created_at), r)"
    )


_CREATE = (
    f"WITH r AS (INSERT INTO contexts ({CONTEXT_COLUMNS}) VALUES ($1, $15, $16, $17, $18, $19, "
    "$20, $21, $22, $23, $24, $2, $25, $26, $27, $28, $29, $30, $31, $32, $33, $34, $35) "
    "RETURNING 1), " + _messages_sql("'main'") + " " + _event_sql("'main'", "$36", "$37")
)
_APPEND = (
    "WITH r AS (UPDATE contexts SET revision = $2, message_count = $16, turn_count = $17, "
    "messages_bytes = $18, last_modified = $19, versioning = $21, version_number = $22, "
    "coordination = $25 "
    "WHERE context_id = $1 AND context_type = $15 AND revision = $20 RETURNING 1), "
    f"{_messages_sql('$23')} {_event_sql('$24', '$26', '$27')}"
)
_REWRITE = (
    "WITH r AS (UPDATE contexts SET title = $16, description = $17, data = $18, metadata = $19, "
    "extra = $20, state = $21, owner_id = $22, collaborators = $23, permissions = $24, "
    "revision = $2, message_count = $25, turn_count = $26, doc_bytes = $27, "
    "messages_bytes = $28, last_modified = $29, last_accessed = $30, checksum = $31, "
    "versioning = $32, version_number = $33, coordination = $34 "
    "WHERE context_id = $1 AND context_type = $15 AND revision = $35 RETURNING 1), "
    f"{_messages_sql('$36')} {_event_sql('$37', '$38', '$39')}"
)
_SAVE_BRANCH = (
    f"INSERT INTO {SQL.branch_row} ON CONFLICT (context_id, name) DO UPDATE SET document = $3, "
    "message_count = $4, turn_count = $5, messages_bytes = $6, versioning = $7, "
    "last_modified = $11"
)


def _change_params(
    event: EventRecord, segment: str, messages: Sequence[MessageRecord], write_id: uuid.UUID
) -> tuple[Any, ...]:
    """$1-$14: the event (naming the messages it wrote to `segment`), then the messages as
    parallel arrays."""
    event_values = ROWS.event_values(event, segment, messages)[:6]
    return (*event_values, write_id, *ROWS.message_columns(messages))


def _create_params(new: NewContext, write_id: uuid.UUID) -> tuple[Any, ...]:
    values = ROWS.context_values(new.record)
    return (
        *_change_params(new.event, "main", new.messages, write_id),
        values[1],
        *values[2:11],
        *values[12:],
        new.event.provider,
        new.event.tool,
    )


def _rewrite_params(mutation: Mutation, old_revision: int, write_id: uuid.UUID) -> tuple[Any, ...]:
    values = ROWS.context_values(mutation.record)
    return (
        *_change_params(mutation.event, mutation.segment, mutation.messages, write_id),
        values[1],
        *values[2:11],
        *values[12:16],
        *values[17:],
        old_revision,
        mutation.segment,
        mutation.event.branch,
        mutation.event.provider,
        mutation.event.tool,
    )


def _append_params(mutation: Mutation, old_revision: int, write_id: uuid.UUID) -> tuple[Any, ...]:
    new = mutation.record
    return (
        *_change_params(mutation.event, mutation.segment, mutation.messages, write_id),
        new.context_type,
        new.message_count,
        new.turn_count,
        new.messages_bytes,
        from_micros(new.last_modified),
        old_revision,
        dumps(new.versioning.to_json()),
        new.version_number,
        mutation.segment,
        mutation.event.branch,
        dumps(new.coordination.to_json()),
        mutation.event.provider,
        mutation.event.tool,
    )


async def insert_new(conn: Connection, contexts: Sequence[NewContext], write_id: uuid.UUID) -> None:
    """Write new contexts: each one's row, messages and event in one statement, pipelined,
    then their first versions."""
    await _run_writes(conn, _CREATE, [_create_params(new, write_id) for new in contexts])
    versions = [new.version for new in contexts if new.version is not None]
    if versions:
        await conn.executemany(SQL.insert_version, map(ROWS.version_values, versions))


async def write_mutations(
    conn: Connection, mutations: Sequence[tuple[ContextRecord, Mutation]], write_id: uuid.UUID
) -> None:
    """Commit each (row planned on, mutation): the row, messages and event, then any branch
    row and version."""
    rewrites = [(current, m) for current, m in mutations if m.document_changed]
    appends = [(current, m) for current, m in mutations if not m.document_changed]
    await _write_guarded(conn, _REWRITE, rewrites, _rewrite_params, write_id)
    await _write_guarded(conn, _APPEND, appends, _append_params, write_id)
    branches = [ROWS.branch_values(m.branch) for _, m in mutations if m.branch is not None]
    versions = [ROWS.version_values(m.version) for _, m in mutations if m.version is not None]
    if branches:
        await conn.executemany(_SAVE_BRANCH, branches)
    if versions:
        await conn.executemany(SQL.insert_version, versions)
    calls = [CALLS.values(call) for _, m in mutations for call in m.calls]
    if calls:
        await conn.executemany(CALLS.insert, calls)


async def _write_guarded(
    conn: Connection,
    statement: str,
    writes: Sequence[tuple[ContextRecord, Mutation]],
    params: Callable[[Mutation, int, uuid.UUID], tuple[Any, ...]],
    write_id: uuid.UUID,
) -> None:
    """Write each (row planned on, mutation) with a statement guarded by the row's revision,
    and make sure every guard matched: one that matches nothing writes nothing, not even
    its event (the statement's status counts those)."""
    rows = [params(mutation, current.revision, write_id) for current, mutation in writes]
    if not rows or await _run_writes(conn, statement, rows) == "INSERT 0 1":
        return
    stored = {
        str(row[0]): row[1]
        for row in await conn.fetch(
            "SELECT context_id, revision FROM contexts WHERE context_id = ANY($1::uuid[])",
            [uuid.UUID(current.context_id) for current, _ in writes],
        )
    }
    for current, mutation in writes:
        actual = stored.get(str(uuid.UUID(current.context_id)))
        if actual != mutation.record.revision:
            raise revision_guard_missed(current.context_id, current.revision, actual)


async def _run_writes(conn: Connection, statement: str, rows: list[tuple[Any, ...]]) -> str | None:
    """Run one write statement per row, pipelined in one round trip; a single one's status."""
    try:
        if len(rows) == 1:
            return await conn.execute(statement, *rows[0])
        await conn.executemany(statement, rows)
        return None
    except asyncpg.UniqueViolationError as exc:
        if exc.constraint_name == "ux_messages_message_id":
            raise ValidationFailed(
                "a message id is already used in this context", [Issue("/messages", str(exc))]
            ) from exc
        raise ValidationFailed(
            "a context with this id exists", [Issue("/context_id", str(exc))]
        ) from exc


async def insert_rows(conn: Connection, rows: ContextRows, write_id: uuid.UUID) -> None:
    """Write every row of a context (its events stamped with `write_id`)."""
    key = uuid.UUID(rows.record.context_id)
    segments = [segment for segment, _ in rows.messages]
    columns = ROWS.message_columns([message for _, message in rows.messages])
    await conn.execute(SQL.insert_context, *ROWS.context_values(rows.record))
    await conn.execute(
        "INSERT INTO messages (context_id, branch, seq, message_id, role, body, "
        "body_blob, search_text, created_at) SELECT $1, x.branch, x.seq, "
        "x.message_id, x.role, NULLIF(x.body, '')::json, x.body_blob, x.search_text, "
        "x.created_at FROM unnest($2::text[], $3::bigint[], $4::text[], $5::text[], "
        "$6::text[], $7::bytea[], $8::text[], $9::timestamptz[]) AS x(branch, seq, "
        "message_id, role, body, body_blob, search_text, created_at)",
        key,
        segments,
        *columns,
    )
    if rows.events:
        await conn.executemany(
            "INSERT INTO events (context_id, revision, op, changes, user_id, created_at, "
            "branch, provider, tool, write_id) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
            [(*ROWS.event_values(event), write_id) for event in rows.events],
        )
    if rows.versions:
        await conn.executemany(SQL.insert_version, [ROWS.version_values(v) for v in rows.versions])
    if rows.branches:
        await conn.executemany(_SAVE_BRANCH, [ROWS.branch_values(b) for b in rows.branches])


async def lock_rows(conn: Connection, context_ids: list[str]) -> dict[str, ContextRecord]:
    keys = [_lookup_key(context_id) for context_id in context_ids]
    for context_id, key in zip(context_ids, keys, strict=True):
        if key is None:
            raise ContextNotFound(context_id)
    rows = await conn.fetch(
        f"SELECT {CONTEXT_COLUMNS}, (extract(epoch FROM clock_timestamp()) * 1000000)::bigint "
        "AS read_at FROM contexts WHERE context_id = ANY($1::uuid[]) "
        "ORDER BY context_id FOR UPDATE",
        keys,
    )
    found = {str(row[0]): ROWS.context(row, read_at=row["read_at"]) for row in rows}
    for context_id in context_ids:
        if str(uuid.UUID(context_id)) not in found:
            raise ContextNotFound(context_id)
    return {context_id: found[str(uuid.UUID(context_id))] for context_id in context_ids}


async def landed(conn: Connection, event: EventRecord, write_id: uuid.UUID) -> bool:
    found = await conn.fetchval(
        "SELECT 1 FROM events WHERE context_id = $1 AND revision = $2 AND write_id = $3",
        uuid.UUID(event.context_id),
        event.revision,
        write_id,
    )
    return found is not None


async def landed_on_rows(
    conn: Connection, committed: Mapping[str, ContextRecord], write_id: uuid.UUID
) -> bool:
    """Whether the earlier attempt's rows landed: its event at the revision it wrote (not
    the latest, which another writer may have added since) carries this write id."""
    for row in committed.values():
        found = await conn.fetchval(
            "SELECT write_id FROM events WHERE context_id = $1 AND revision = $2",
            uuid.UUID(row.context_id),
            row.revision,
        )
        if found == write_id:
            return True
    return False
