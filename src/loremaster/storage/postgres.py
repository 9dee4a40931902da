"""The scale-out backend: PostgreSQL through an asyncpg connection pool.

Every operation runs in one transaction on one pooled connection. A connection lost before
COMMIT (a restart, ``pg_terminate_backend``, a network blip) is retried with exponential
backoff and jitter until ``sync_timeout``; a COMMIT cut off midway is resolved by looking
for the transaction's ``write_id`` in the events table, so a write is never applied twice
and never reported lost when it landed. asyncpg prepares and caches every statement per
connection, so the hot queries run as prepared statements.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import random
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar

import asyncpg
import orjson

from ..config import database_address
from ..errors import (
    BackendUnavailable,
    ConfigurationError,
    ContextNotFound,
    DatabaseNotFound,
    Issue,
    LoremasterError,
    ReadOnlyDatabase,
    ValidationFailed,
)
from ..models import from_micros, to_micros
from ._dialect import Dialect, Params
from ._plans import plan_branch, plan_contexts, revision_guard_missed
from ._rows import MESSAGE_FIELDS, Codec, dumps
from ._schema import MigrationStatus, migration_status, pending_migrations
from ._sql import (
    BRANCH_COLUMNS,
    CONTEXT_COLUMNS,
    VERSION_COLUMNS,
    Statements,
    query_sql,
    readable_by,
)
from ._types import (
    BranchPlan,
    BranchRecord,
    ContextRecord,
    ContextRows,
    EventRecord,
    MessageRecord,
    Mutation,
    NewContext,
    NotModified,
    Plan,
    RecordQuery,
    SearchRecord,
    StorageHealth,
    VersionRecord,
    VersionState,
    check_written,
    search_words,
    summarize_statistics,
)

__all__ = ["PostgresStorage"]

T = TypeVar("T")
log = logging.getLogger("loremaster.storage")
if TYPE_CHECKING:
    from asyncpg.pool import PoolConnectionProxy

    Connection = PoolConnectionProxy[asyncpg.Record]
    RawConnection = asyncpg.Connection[asyncpg.Record]
    Pool = asyncpg.Pool[asyncpg.Record]

_MIGRATION_LOCK = 0x6C6F7265  # "lore": the advisory lock that serializes migrations
_CONNECT_TIMEOUT = 5.0  # seconds one connection attempt may take (within the deadline)
_STATISTICS_COLUMNS = (
    "context_type, state, count(*), sum(doc_bytes + messages_bytes), sum(message_count), "
    "max(message_count)"
)
_FTS_DOCUMENT = "to_tsvector('english', c.title || ' ' || c.description)"
_HEADLINE = "'StartSel=[, StopSel=], MaxWords=18, MinWords=6, MaxFragments=1'"

_TRANSIENT: tuple[type[BaseException], ...] = (
    asyncpg.PostgresConnectionError,
    asyncpg.exceptions.OperatorInterventionError,
    asyncpg.exceptions.TransactionRollbackError,
    asyncpg.exceptions.InsufficientResourcesError,
    ConnectionError,
    OSError,
    asyncio.TimeoutError,
)


def _is_transient(exc: BaseException) -> bool:
    if isinstance(exc, asyncpg.exceptions.QueryCanceledError):
        return False
    if isinstance(exc, asyncpg.InterfaceError):
        return "closed" in str(exc)
    # A connection cut off mid-operation can leave asyncpg's protocol state inconsistent.
    return isinstance(exc, (*_TRANSIENT, asyncpg.exceptions.InternalClientError))


def _discard_if_broken(conn: Connection, exc: BaseException) -> None:
    """Make sure the pool never hands out a connection that failed mid-operation."""
    if _is_transient(exc):
        with contextlib.suppress(asyncpg.InterfaceError):  # already gone from the pool
            conn.terminate()


def _translated(exc: Exception) -> Exception:
    """Our error for a non-transient one from asyncpg (ours pass through)."""
    if isinstance(exc, asyncpg.exceptions.DataError):
        return ValidationFailed(f"PostgreSQL refused the data: {exc}")
    if isinstance(exc, asyncpg.exceptions.QueryCanceledError):
        return BackendUnavailable(f"PostgreSQL cancelled the statement: {exc}")
    if isinstance(exc, asyncpg.exceptions.ReadOnlySQLTransactionError):
        return ReadOnlyDatabase(f"PostgreSQL is read-only ({exc}): writes are refused")
    if isinstance(exc, asyncpg.exceptions.InvalidCatalogNameError):
        return DatabaseNotFound(f"PostgreSQL: {exc}")
    if isinstance(exc, (asyncpg.PostgresError, asyncpg.InterfaceError)):
        return BackendUnavailable(f"PostgreSQL error: {exc}")
    return exc


async def _keep_session(conn: RawConnection) -> None:
    """Pool release hook. loremaster leaves no session state behind (no SET, LISTEN or
    session advisory lock outlives its call), so the default reset query, a round trip on
    every release, is skipped; asyncpg still rolls back any open transaction."""


def _uuid(context_id: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(context_id)
    except ValueError:
        return None


def _time(value: datetime) -> int:
    return to_micros(value)


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
        return _uuid(context_id)

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


_DIALECT = _Postgres()
_ROWS = Codec(_DIALECT)
_SQL = Statements(_DIALECT)


# Every write is one statement: data-modifying CTEs write the row and the messages, and the
# messages and the event are inserted from the row write (joined with r), so nothing lands
# if the revision-guarded row write matched nothing; one round trip commits a whole change
# (a version or a branch row, when there is one, follows in the same transaction).
# Parameters $1-$7 are the event's, $8-$14 the messages' (as arrays), the row's follow;
# the message segment and the event's branch come last.
def _event_sql(branch: str, provider: str) -> str:
    return (
        "INSERT INTO events (context_id, revision, op, changes, user_id, created_at, write_id, "
        f"branch, provider) SELECT $1, $2, $3, $4, $5, $6, $7, {branch}, {provider} FROM r"
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
    "RETURNING 1), " + _messages_sql("'main'") + " " + _event_sql("'main'", "$36")
)
_APPEND = (
    "WITH r AS (UPDATE contexts SET revision = $2, message_count = $16, turn_count = $17, "
    "messages_bytes = $18, last_modified = $19, versioning = $21, version_number = $22, "
    "coordination = $25 "
    "WHERE context_id = $1 AND context_type = $15 AND revision = $20 RETURNING 1), "
    f"{_messages_sql('$23')} {_event_sql('$24', '$26')}"
)
_REWRITE = (
    "WITH r AS (UPDATE contexts SET title = $16, description = $17, data = $18, metadata = $19, "
    "extra = $20, state = $21, owner_id = $22, collaborators = $23, permissions = $24, "
    "revision = $2, message_count = $25, turn_count = $26, doc_bytes = $27, "
    "messages_bytes = $28, last_modified = $29, last_accessed = $30, checksum = $31, "
    "versioning = $32, version_number = $33, coordination = $34 "
    "WHERE context_id = $1 AND context_type = $15 AND revision = $35 RETURNING 1), "
    f"{_messages_sql('$36')} {_event_sql('$37', '$38')}"
)
_SAVE_BRANCH = (
    f"INSERT INTO branches ({BRANCH_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, "
    "$10, $11) ON CONFLICT (context_id, name) DO UPDATE SET document = $3, "
    "message_count = $4, turn_count = $5, messages_bytes = $6, versioning = $7, "
    "last_modified = $11"
)


def _change_params(
    event: EventRecord, messages: Sequence[MessageRecord], write_id: uuid.UUID
) -> tuple[Any, ...]:
    """$1-$14: the event, then the messages as parallel arrays."""
    columns = [list(column) for column in zip(*map(_ROWS.message_values, messages), strict=True)]
    return (*_ROWS.event_values(event)[:6], write_id, *(columns or [[]] * MESSAGE_FIELDS))


def _create_params(new: NewContext, write_id: uuid.UUID) -> tuple[Any, ...]:
    values = _ROWS.context_values(new.record)
    return (
        *_change_params(new.event, new.messages, write_id),
        values[1],
        *values[2:11],
        *values[12:],
        new.event.provider,
    )


def _rewrite_params(mutation: Mutation, old_revision: int, write_id: uuid.UUID) -> tuple[Any, ...]:
    values = _ROWS.context_values(mutation.record)
    return (
        *_change_params(mutation.event, mutation.messages, write_id),
        values[1],
        *values[2:11],
        *values[12:16],
        *values[17:],
        old_revision,
        mutation.segment,
        mutation.event.branch,
        mutation.event.provider,
    )


def _append_params(mutation: Mutation, old_revision: int, write_id: uuid.UUID) -> tuple[Any, ...]:
    new = mutation.record
    return (
        *_change_params(mutation.event, mutation.messages, write_id),
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
    )


async def _attempt_write(
    conn: Connection,
    work: Callable[[Connection, uuid.UUID, list[T]], Awaitable[T]],
    write_id: uuid.UUID,
    earlier: list[T],
) -> T:
    """One attempt of a write: `work` in a transaction, rolled back whatever it raises."""
    transaction = conn.transaction()
    await transaction.start()
    try:
        result = await work(conn, write_id, earlier)
    except BaseException as exc:
        if not _is_transient(exc):  # a broken connection is closed instead, never reused
            await transaction.rollback()
        raise
    earlier[:] = [result]  # before COMMIT, whose answer may be lost
    await transaction.commit()
    return result


async def _write_mutations(
    conn: Connection, mutations: Sequence[tuple[ContextRecord, Mutation]], write_id: uuid.UUID
) -> None:
    """Commit each (row planned on, mutation): the row, messages and event, then any branch
    row and version."""
    rewrites = [(current, m) for current, m in mutations if m.document_changed]
    appends = [(current, m) for current, m in mutations if not m.document_changed]
    await _write_guarded(conn, _REWRITE, rewrites, _rewrite_params, write_id)
    await _write_guarded(conn, _APPEND, appends, _append_params, write_id)
    branches = [_ROWS.branch_values(m.branch) for _, m in mutations if m.branch is not None]
    versions = [_ROWS.version_values(m.version) for _, m in mutations if m.version is not None]
    if branches:
        await conn.executemany(_SAVE_BRANCH, branches)
    if versions:
        await conn.executemany(_SQL.insert_version, versions)


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


class PostgresStorage:
    """`Storage` on PostgreSQL (``postgresql://user:password@host:port/database``)."""

    backend = "postgresql"

    def __init__(
        self,
        url: str,
        *,
        deadline: float = 30.0,
        pool_size: int = 10,
        max_overflow: int = 10,
    ) -> None:
        self.url = url
        self.address = database_address(url)
        """``host:port/database``, for messages: never the user or password."""
        self.read_only = False
        """Whether the server took only reads when opened (a standby, or
        ``default_transaction_read_only``); writes are refused by the server itself."""
        self._deadline = deadline
        self._pool_size = pool_size
        self._max_overflow = max_overflow
        self._pool: Pool | None = None
        self._statistics_refreshed_at: int | None = None
        self._warned_at = -float("inf")

    # -- lifecycle -----------------------------------------------------------------------

    async def open(self, *, create: bool = True) -> None:
        """Connect (`create` is moot: loremaster never creates a PostgreSQL database)."""

        async def connect() -> Pool:
            try:
                return await asyncpg.create_pool(
                    self.url,
                    min_size=min(1, self._pool_size),
                    max_size=self._pool_size + self._max_overflow,
                    max_inactive_connection_lifetime=300,
                    command_timeout=self._deadline,
                    timeout=min(self._deadline, _CONNECT_TIMEOUT),
                    reset=_keep_session,
                )
            except ValueError as exc:  # asyncpg's own checks of the URL's options
                raise ConfigurationError(f"invalid PostgreSQL URL: {exc}") from exc

        self._pool = await self._retrying("connect", connect)
        self.read_only = bool(
            await self._read(
                lambda conn: conn.fetchval(
                    "SELECT pg_is_in_recovery() OR current_setting('transaction_read_only') = 'on'"
                )
            )
        )

    async def close(self) -> None:
        if self._pool is not None:
            pool, self._pool = self._pool, None
            await pool.close()

    @property
    def pool(self) -> Pool:
        if self._pool is None:
            raise BackendUnavailable("the PostgreSQL pool is closed")
        return self._pool

    async def migrate(self) -> MigrationStatus:
        """Apply pending migrations; a schema already current is only read (so a standby
        opens), otherwise under an advisory lock, one process at a time."""
        status = await self.migration_status()
        if not status.pending:
            return status

        async def migrate(conn: Connection) -> None:
            await conn.execute("SELECT pg_advisory_lock($1)", _MIGRATION_LOCK)
            try:
                await conn.execute(_SCHEMA_VERSION_TABLE)
                applied = {version for version, _, _ in await _applied(conn)}
                for migration in pending_migrations("postgres", applied):
                    async with conn.transaction():
                        await conn.execute(migration.script)
                        await conn.execute(
                            "INSERT INTO schema_version (version, name) VALUES ($1, $2)",
                            migration.version,
                            migration.name,
                        )
            finally:
                await conn.execute("SELECT pg_advisory_unlock($1)", _MIGRATION_LOCK)

        await self._with_connection("migrate", migrate)
        return await self.migration_status()

    async def migration_status(self) -> MigrationStatus:
        return migration_status("postgres", await self._with_connection("read", _applied))

    # -- plumbing ------------------------------------------------------------------------

    async def _retrying(self, what: str, attempt: Callable[[], Awaitable[T]]) -> T:
        deadline = time.monotonic() + self._deadline
        for tries in range(1_000_000):
            try:
                return await attempt()
            except Exception as exc:
                if not _is_transient(exc):
                    translated = _translated(exc)
                    if translated is exc:
                        raise
                    raise translated from exc
                if time.monotonic() >= deadline:
                    raise BackendUnavailable(
                        f"PostgreSQL at {self.address} unavailable for {self._deadline:g} s "
                        f"({what}): {exc}"
                    ) from exc
                self._warn_retrying(what, exc)
                backoff = min(2.0, 0.02 * 2**tries) * random.uniform(0.5, 1.0)
                await asyncio.sleep(min(backoff, deadline - time.monotonic()))
        raise AssertionError("unreachable")  # pragma: no cover

    def _warn_retrying(self, what: str, exc: Exception) -> None:
        """Say once per deadline that operations wait for the server, and where."""
        now = time.monotonic()
        if now - self._warned_at >= self._deadline:
            self._warned_at = now
            log.warning(
                "PostgreSQL at %s is not answering (%s: %s); retrying for up to %g s "
                "(CONTEXT_SYNC_TIMEOUT)",
                self.address,
                what,
                str(exc) or type(exc).__name__,
                self._deadline,
            )

    async def _once(self, work: Callable[[Connection], Awaitable[T]]) -> T:
        async with self.pool.acquire(timeout=self._deadline) as conn:
            try:
                return await work(conn)
            except Exception as exc:
                _discard_if_broken(conn, exc)
                raise

    async def _with_connection(self, what: str, work: Callable[[Connection], Awaitable[T]]) -> T:
        return await self._retrying(what, lambda: self._once(work))

    async def _write(
        self, what: str, work: Callable[[Connection, uuid.UUID, list[T]], Awaitable[T]]
    ) -> T:
        """Run `work` in a transaction; retry what did not commit, never what did.

        Every attempt carries the same write id into the event rows it writes. After a
        COMMIT whose answer was lost, the next attempt's `work` gets that attempt's result in
        `earlier`: once it holds its locks — so the earlier transaction has finished, one
        way or the other — it looks for the write id and returns the result if it landed.
        """
        write_id = uuid.uuid4()
        earlier: list[T] = []
        return await self._with_connection(
            what, lambda conn: _attempt_write(conn, work, write_id, earlier)
        )

    async def _read(self, work: Callable[[Connection], Awaitable[T]]) -> T:
        return await self._with_connection("read", work)

    # -- writes --------------------------------------------------------------------------

    async def insert_contexts(self, contexts: Sequence[NewContext]) -> None:
        async def insert(conn: Connection, write_id: uuid.UUID, earlier: list[None]) -> None:
            ids = sorted(new.record.context_id for new in contexts)
            # Lock first, look second: a statement's snapshot predates the locks it waits for.
            await conn.execute(
                "SELECT pg_advisory_xact_lock(hashtextextended(id, 0)) "
                "FROM unnest($1::text[]) AS id",
                ids,
            )
            if earlier and await _landed(conn, contexts[0].event, write_id):
                return None
            taken = await conn.fetchval(
                "SELECT min(context_id::text) FROM contexts WHERE context_id = ANY($1::uuid[])",
                ids,
            )
            duplicate = next((a for a, b in itertools.pairwise(ids) if a == b), None)
            clash = taken or duplicate
            if clash:
                raise ValidationFailed(
                    "a context with this id exists", [Issue("/context_id", str(clash))]
                )
            await _run_writes(conn, _CREATE, [_create_params(new, write_id) for new in contexts])
            versions = [new.version for new in contexts if new.version is not None]
            if versions:
                await conn.executemany(_SQL.insert_version, map(_ROWS.version_values, versions))
            return None

        if contexts:
            await self._write("insert", insert)

    async def modify_context(self, context_id: str, plan: Plan) -> ContextRecord:
        return (await self.modify_contexts({context_id: plan}))[context_id]

    async def modify_contexts(self, plans: Mapping[str, Plan]) -> dict[str, ContextRecord]:
        async def modify(
            conn: Connection, write_id: uuid.UUID, earlier: list[dict[str, ContextRecord]]
        ) -> dict[str, ContextRecord]:
            current = await _lock_rows(conn, list(plans))
            if earlier and await _landed_on_rows(conn, earlier[0], write_id):
                return earlier[0]
            planned = plan_contexts(current, plans)
            await _write_mutations(conn, planned.mutations, write_id)
            return planned.result

        return await self._write("modify", modify)

    async def modify_branch(
        self, context_id: str, name: str, plan: BranchPlan
    ) -> tuple[ContextRecord, BranchRecord | None]:
        async def modify(
            conn: Connection,
            write_id: uuid.UUID,
            earlier: list[tuple[ContextRecord, BranchRecord | None]],
        ) -> tuple[ContextRecord, BranchRecord | None]:
            current = (await _lock_rows(conn, [context_id]))[context_id]
            if earlier and await _landed_on_rows(conn, {context_id: earlier[0][0]}, write_id):
                return earlier[0]
            row = await conn.fetchrow(_SQL.select_branch, uuid.UUID(context_id), name)
            planned = plan_branch(current, None if row is None else _ROWS.branch(row), plan)
            await _write_mutations(conn, planned.mutations, write_id)
            return planned.result

        return await self._write("modify", modify)

    async def delete_context(
        self, context_id: str, authorize: Callable[[ContextRecord], None]
    ) -> None:
        key = _uuid(context_id)
        if key is None:
            raise ContextNotFound(context_id)

        async def delete(conn: Connection, write_id: uuid.UUID, earlier: list[None]) -> None:
            try:
                row = (await _lock_rows(conn, [context_id]))[context_id]
            except ContextNotFound:
                if earlier:
                    return None  # the earlier attempt's delete landed
                raise
            authorize(row)
            for statement in _SQL.delete_context:
                await conn.execute(statement, key)
            return None

        await self._write("delete", delete)

    async def touch(self, context_id: str, *, when: int, not_since: int) -> None:
        key = _uuid(context_id)
        if key is None:
            return
        params = (key, from_micros(when), from_micros(not_since))
        await self._write("touch", lambda conn, *_: conn.execute(_SQL.touch, *params))

    # -- reads ---------------------------------------------------------------------------

    async def load_context(
        self, context_id: str, known: tuple[int, int] | None = None
    ) -> ContextRecord | NotModified | None:
        key = _uuid(context_id)
        if key is None:
            return None

        async def load(conn: Connection) -> ContextRecord | NotModified | None:
            if known is not None:
                row = await conn.fetchrow(_SQL.select_revision, key)
                if row is not None and (row[0], _time(row[1])) == known:
                    return NotModified()
            row = await conn.fetchrow(_SQL.select_context, key)
            return None if row is None else _ROWS.context(row)

        return await self._read(load)

    async def load_messages(
        self,
        context_id: str,
        *,
        branch: str,
        limit: int | None,
        before_seq: int | None,
        after_seq: int = 0,
    ) -> list[MessageRecord]:
        key = _uuid(context_id)
        if key is None:
            return []
        before = 2**62 if before_seq is None else before_seq
        params = (key, branch, before, after_seq, limit)
        rows = await self._read(lambda conn: conn.fetch(_SQL.select_messages, *params))
        return [_ROWS.message(row) for row in reversed(rows)]

    async def load_events(
        self, context_id: str, *, since_revision: int, limit: int | None, branch: str | None = None
    ) -> list[EventRecord]:
        key = _uuid(context_id)
        if key is None:
            return []
        params = (key, since_revision, limit, branch)
        rows = await self._read(lambda conn: conn.fetch(_SQL.select_events, *params))
        return [_ROWS.event(context_id, row) for row in rows]

    async def query_contexts(self, query: RecordQuery) -> list[ContextRecord]:
        sql, values = query_sql(_DIALECT, query)
        rows = await self._read(lambda conn: conn.fetch(sql, *values))
        return [_ROWS.context(row) for row in rows]

    async def search(self, text: str, *, reader: str | None, limit: int) -> list[SearchRecord]:
        words = search_words(text)
        if not words:
            return []
        terms = [f"'{word}'" for word in words]
        terms[-1] += ":*"
        tsquery = " & ".join(terms)
        access = f"AND ($2::text IS NULL OR {readable_by(_DIALECT, '$2::text')})"
        in_contexts = (
            "SELECT c.context_id, c.context_type, c.title, "
            f"2 * ts_rank({_FTS_DOCUMENT}, q) AS score, "
            f"ts_headline('english', c.title || ' ' || c.description, q, {_HEADLINE}), "
            "NULL::bigint, NULL::text, c.versioning, c.message_count "
            "FROM contexts c, to_tsquery('english', $1) q "
            f"WHERE {_FTS_DOCUMENT} @@ q AND c.state <> 'deleted' {access} "
            "ORDER BY score DESC LIMIT $3"
        )
        in_messages = (
            "SELECT hit.context_id, hit.context_type, hit.title, hit.score, "
            f"ts_headline('english', hit.search_text, q, {_HEADLINE}), hit.seq, hit.branch, "
            "hit.versioning, hit.message_count FROM ("
            "SELECT m.context_id, c.context_type, c.title, m.search_text, m.seq, m.branch, "
            "c.versioning, c.message_count, "
            "ts_rank(to_tsvector('english', m.search_text), q) AS score "
            "FROM messages m JOIN contexts c ON c.context_id = m.context_id, "
            "to_tsquery('english', $1) q "
            "WHERE to_tsvector('english', m.search_text) @@ q "
            f"AND c.state <> 'deleted' {access} ORDER BY score DESC LIMIT $3"
            ") hit, to_tsquery('english', $1) q"
        )

        async def search(conn: Connection) -> list[SearchRecord]:
            found = await conn.fetch(in_contexts, tsquery, reader, limit)
            found += await conn.fetch(in_messages, tsquery, reader, limit * 10)
            return [
                SearchRecord(
                    str(row[0]),
                    row[1],
                    row[2],
                    float(row[3]),
                    row[4],
                    row[5],
                    row[6],
                    VersionState.from_json(orjson.loads(row[7])),
                    row[8],
                )
                for row in found
            ]

        return await self._read(search)

    async def health(self) -> StorageHealth:
        async def measure(conn: Connection) -> dict[str, Any]:
            return {
                "server_version": await conn.fetchval("SHOW server_version"),
                "database_bytes": await conn.fetchval(
                    "SELECT pg_database_size(current_database())"
                ),
                "in_recovery": await conn.fetchval("SELECT pg_is_in_recovery()"),
            }

        details = await self._read(measure)
        pool = self.pool
        details["pool"] = {
            "size": pool.get_size(),
            "idle": pool.get_idle_size(),
            "in_use": pool.get_size() - pool.get_idle_size(),
            "max": pool.get_max_size(),
            "utilization": round((pool.get_size() - pool.get_idle_size()) / pool.get_max_size(), 3),
        }
        status = await self.migration_status()
        return StorageHealth("postgresql", True, status.version, details)

    async def statistics(self, *, refresh: bool, max_age: float | None = None) -> dict[str, Any]:
        async def read(conn: Connection) -> tuple[list[Any], int | None]:
            if refresh:
                await conn.execute("REFRESH MATERIALIZED VIEW CONCURRENTLY context_statistics")
                self._statistics_refreshed_at = time.time_ns() // 1000
            # When the view was last refreshed by this process or, in any process, by the
            # background task (its 'statistics' lease records when it finished).
            leased = await conn.fetchval(
                "SELECT last_finished_at FROM maintenance_leases "
                "WHERE name = 'statistics' AND last_finished_at > '-infinity'"
            )
            known = [t for t in (self._statistics_refreshed_at, leased and _time(leased)) if t]
            refreshed = max(known, default=None)
            now = time.time_ns() // 1000
            if max_age is not None and (refreshed is None or now - refreshed > max_age * 1e6):
                source = f"SELECT {_STATISTICS_COLUMNS} FROM contexts GROUP BY context_type, state"
                refreshed = now  # counted now, from the table
            else:
                source = (
                    "SELECT context_type, state, contexts, bytes, messages, max_messages "
                    "FROM context_statistics"
                )
            rows = await conn.fetch(f"SELECT * FROM ({source}) s ORDER BY 1, 2")
            return list(rows), refreshed

        rows, refreshed = await self._read(read)
        figures = summarize_statistics(rows)
        figures["refreshed_at"] = None if refreshed is None else from_micros(refreshed).isoformat()
        return figures

    # -- retention -----------------------------------------------------------------------

    async def acquire_lease(self, name: str, holder: str, *, ttl: float, every: float) -> bool:
        async def acquire(conn: Connection, write_id: uuid.UUID, earlier: list[bool]) -> bool:
            await conn.execute(
                "INSERT INTO maintenance_leases (name) VALUES ($1) ON CONFLICT DO NOTHING", name
            )
            # After an attempt that took the lease and lost COMMIT's answer, the lease this
            # holder has is the one that attempt took.
            taken = await conn.fetchval(
                "UPDATE maintenance_leases SET holder = $2, "
                "expires_at = now() + make_interval(secs => $3) WHERE name = $1 "
                "AND (($5 AND holder = $2) OR ((holder IS NULL OR expires_at < now()) "
                "AND last_finished_at <= now() - make_interval(secs => $4))) RETURNING 1",
                name,
                holder,
                ttl,
                every,
                earlier == [True],
            )
            return bool(taken == 1)

        return await self._write("acquire lease", acquire)

    async def release_lease(self, name: str, holder: str, *, finished: bool) -> None:
        await self._write(
            "release lease",
            lambda conn, *_: conn.execute(
                "UPDATE maintenance_leases SET holder = NULL, expires_at = '-infinity', "
                "last_finished_at = CASE WHEN $3 THEN now() ELSE last_finished_at END "
                "WHERE name = $1 AND holder = $2",
                name,
                holder,
                finished,
            ),
        )

    async def contexts_idle_since(self, before: int, *, state: str, limit: int) -> list[str]:
        sql = _SQL.idle_since(state)
        rows = await self._read(lambda conn: conn.fetch(sql, state, from_micros(before), limit))
        return [str(row["context_id"]) for row in rows]

    async def trim_events(self, before: int, *, dry_run: bool) -> int:
        where = (
            "FROM events e WHERE e.created_at < $1 AND e.revision < "
            "(SELECT max(c.revision) FROM contexts c WHERE c.context_id = e.context_id)"
        )
        if dry_run:
            count = await self._read(
                lambda conn: conn.fetchval(f"SELECT count(*) {where}", from_micros(before))
            )
            return int(count)
        status = await self._write(
            "trim events", lambda conn, *_: conn.execute(f"DELETE {where}", from_micros(before))
        )
        return int(status.split()[-1])

    # -- codec dictionaries --------------------------------------------------------------

    async def load_dictionaries(self) -> list[tuple[int, str, bytes]]:
        rows = await self._read(lambda conn: conn.fetch(_SQL.load_dictionaries))
        return [(row[0], row[1], bytes(row[2])) for row in rows]

    async def save_dictionary(self, context_type: str, data: bytes, *, sample_count: int) -> int:
        async def save(conn: Connection, write_id: uuid.UUID, earlier: list[int]) -> int:
            if earlier and await conn.fetchval(
                "SELECT 1 FROM codec_dictionaries WHERE dictionary_id = $1", earlier[0]
            ):
                return earlier[0]
            dictionary_id = await conn.fetchval(
                "INSERT INTO codec_dictionaries (context_type, sample_count, data) "
                "VALUES ($1, $2, $3) RETURNING dictionary_id",
                context_type,
                sample_count,
                data,
            )
            return int(dictionary_id)

        return await self._write("save dictionary", save)

    async def sample_messages(self, limit: int) -> list[MessageRecord]:
        rows = await self._read(lambda conn: conn.fetch(_SQL.sample_messages, limit))
        return [_ROWS.message(row) for row in rows]

    # -- versions and branches -----------------------------------------------------------

    async def load_branch(self, context_id: str, name: str) -> BranchRecord | None:
        key = _uuid(context_id)
        if key is None:
            return None
        row = await self._read(lambda conn: conn.fetchrow(_SQL.select_branch, key, name))
        return None if row is None else _ROWS.branch(row)

    async def list_branches(self, context_id: str) -> list[BranchRecord]:
        key = _uuid(context_id)
        if key is None:
            return []
        rows = await self._read(lambda conn: conn.fetch(_SQL.select_branches, key))
        return [_ROWS.branch(row) for row in rows]

    async def load_versions(
        self, context_id: str, version_ids: Sequence[str]
    ) -> list[VersionRecord]:
        key = _uuid(context_id)
        if key is None:
            return []
        params = (key, list(version_ids))
        rows = await self._read(lambda conn: conn.fetch(_SELECT_VERSIONS, *params))
        return [_ROWS.version(row) for row in rows]

    async def load_version_chain(self, context_id: str, version_id: str) -> list[VersionRecord]:
        key = _uuid(context_id)
        if key is None:
            return []
        rows = await self._read(lambda conn: conn.fetch(_SQL.version_chain, key, version_id))
        return [_ROWS.version(row) for row in reversed(rows)]

    async def list_versions(
        self,
        context_id: str,
        *,
        branch: str | None = None,
        tag: str | None = None,
        before_number: int | None = None,
        limit: int | None = None,
    ) -> list[VersionRecord]:
        key = _uuid(context_id)
        if key is None:
            return []
        sql, params = _SQL.list_versions(
            key, branch=branch, tag=tag, before_number=before_number, limit=limit
        )
        rows = await self._read(lambda conn: conn.fetch(sql, *params))
        return [_ROWS.version(row) for row in rows]

    async def rewrite_versions(
        self, context_id: str, *, delete: Sequence[str], replace: Sequence[VersionRecord]
    ) -> bool:
        # The context's row lock keeps every writer (and so every new version, branch and
        # merge) out meanwhile; the plan was made from reads before it, so each of its
        # assumptions is checked again here.
        async def rewrite(conn: Connection, write_id: uuid.UUID, earlier: list[bool]) -> bool:
            cid, gone = uuid.UUID(context_id), list(delete)
            await conn.execute("SELECT 1 FROM contexts WHERE context_id = $1 FOR UPDATE", cid)
            deleted = await conn.fetchval(
                "WITH d AS (DELETE FROM versions WHERE context_id = $1 "
                "AND version_id = ANY($2::text[]) AND version_id NOT IN (SELECT base_version "
                "FROM branches WHERE context_id = $1 AND base_version IS NOT NULL UNION "
                "SELECT merge_parent_id FROM versions WHERE context_id = $1 "
                "AND merge_parent_id IS NOT NULL) "
                "RETURNING 1) SELECT count(*) FROM d",
                cid,
                gone,
            )
            if deleted != len(delete):
                if earlier:
                    return True  # the earlier attempt's rewrite landed
                raise _VersionsMoved("another cleanup rewrote these versions first")
            if await conn.fetchval(_HEADS_AMONG_SQL, cid, gone):
                raise _VersionsMoved("a version to remove is a head again")
            rebased = await conn.fetchval(
                "WITH r AS (UPDATE versions v SET parent_id = x.parent_id, "
                "merge_parent_id = x.merge_parent_id, kind = x.kind, payload = x.payload, "
                "size_bytes = x.size_bytes FROM unnest($2::text[], $3::text[], $4::text[], "
                "$5::text[], $6::bytea[], $7::bigint[]) AS x(version_id, parent_id, "
                "merge_parent_id, kind, payload, size_bytes) WHERE v.context_id = $1 "
                "AND v.version_id = x.version_id AND v.parent_id = ANY($8::text[]) "
                "RETURNING 1) SELECT count(*) FROM r",
                cid,
                [v.version_id for v in replace],
                [v.parent_id for v in replace],
                [v.merge_parent_id for v in replace],
                [v.kind for v in replace],
                [v.payload for v in replace],
                [v.size_bytes for v in replace],
                gone,
            )
            orphans = await conn.fetchval(
                "SELECT count(*) FROM versions WHERE context_id = $1 "
                "AND parent_id = ANY($2::text[])",
                cid,
                gone,
            )
            if rebased != len(replace) or orphans:
                raise _VersionsMoved("a version made since the plan rests on a removed one")
            return True

        try:
            return await self._write("rewrite versions", rewrite)
        except _VersionsMoved:
            return False

    async def contexts_over_version_limit(
        self, automatic: int, checkpoints: int, *, max_contexts: int
    ) -> list[str]:
        rows = await self._read(
            lambda conn: conn.fetch(
                "SELECT context_id FROM versions GROUP BY context_id "
                "HAVING count(*) FILTER (WHERE automatic) > $1 "
                "OR count(*) FILTER (WHERE NOT automatic AND cardinality(tags) = 0) > $2 "
                "LIMIT $3",
                automatic,
                checkpoints,
                max_contexts,
            )
        )
        return [str(row["context_id"]) for row in rows]

    async def load_rows(self, context_id: str) -> ContextRows | None:
        key = _uuid(context_id)
        if key is None:
            return None

        async def load(conn: Connection) -> ContextRows | None:
            async with conn.transaction(isolation="repeatable_read", readonly=True):
                row = await conn.fetchrow(_SQL.select_context, key)
                if row is None:
                    return None
                # Byte order, as SQLite's: a dump does not depend on the backend's collation.
                branches = await conn.fetch(_SQL.select_branches, key)
                messages = await conn.fetch(_SQL.select_all_messages, key)
                versions = await conn.fetch(_SQL.select_versions, key)
                events = await conn.fetch(_SQL.select_all_events, key)
            record = _ROWS.context(row)
            return ContextRows(
                record=record,
                branches=[_ROWS.branch(b) for b in branches],
                messages=[(m[7], _ROWS.message(m)) for m in messages],
                versions=[_ROWS.version(v) for v in versions],
                events=[_ROWS.event(record.context_id, e) for e in events],
            )

        return await self._read(load)

    async def insert_rows(self, rows: ContextRows) -> None:
        context_id = rows.record.context_id
        key = uuid.UUID(context_id)

        async def insert(conn: Connection, write_id: uuid.UUID, earlier: list[None]) -> None:
            # The same lock as insert_contexts': one id, one creator at a time.
            await conn.execute("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", context_id)
            exists = await conn.fetchval("SELECT 1 FROM contexts WHERE context_id = $1", key)
            if exists:
                if earlier and (not rows.events or await _landed(conn, rows.events[-1], write_id)):
                    return None  # the earlier attempt's COMMIT landed
                raise ValidationFailed(
                    "a context with this id exists", [Issue("/context_id", context_id)]
                )
            try:
                await _insert_rows(conn, rows, write_id)
            except asyncpg.UniqueViolationError as exc:  # a version id another context has
                raise ValidationFailed(
                    "a row of this context is stored already", [Issue("/context_id", str(exc))]
                ) from exc
            found = await conn.fetchrow(_SQL.row_counts, key)
            check_written(rows, () if found is None else tuple(found))
            return None

        await self._write("insert rows", insert)


async def _insert_rows(conn: Connection, rows: ContextRows, write_id: uuid.UUID) -> None:
    """Write every row of a context (its events stamped with `write_id`)."""
    key = uuid.UUID(rows.record.context_id)
    messages = [(segment, *_ROWS.message_values(m)) for segment, m in rows.messages]
    columns = [list(column) for column in zip(*messages, strict=True)]
    await conn.execute(_SQL.insert_context, *_ROWS.context_values(rows.record))
    await conn.execute(
        "INSERT INTO messages (context_id, branch, seq, message_id, role, body, "
        "body_blob, search_text, created_at) SELECT $1, x.branch, x.seq, "
        "x.message_id, x.role, NULLIF(x.body, '')::json, x.body_blob, x.search_text, "
        "x.created_at FROM unnest($2::text[], $3::bigint[], $4::text[], $5::text[], "
        "$6::text[], $7::bytea[], $8::text[], $9::timestamptz[]) AS x(branch, seq, "
        "message_id, role, body, body_blob, search_text, created_at)",
        key,
        *(columns or [[]] * (1 + MESSAGE_FIELDS)),
    )
    if rows.events:
        await conn.executemany(
            "INSERT INTO events (context_id, revision, op, changes, user_id, created_at, "
            "branch, provider, write_id) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            [(*_ROWS.event_values(event), write_id) for event in rows.events],
        )
    if rows.versions:
        await conn.executemany(
            _SQL.insert_version, [_ROWS.version_values(v) for v in rows.versions]
        )
    if rows.branches:
        await conn.executemany(_SAVE_BRANCH, [_ROWS.branch_values(b) for b in rows.branches])


_SELECT_VERSIONS = (
    f"SELECT {VERSION_COLUMNS} FROM versions WHERE context_id = $1 AND version_id = ANY($2::text[])"
)
_HEADS_AMONG_SQL = (
    "SELECT EXISTS (SELECT 1 FROM contexts WHERE context_id = $1 "
    "AND versioning->>'head' = ANY($2::text[])) OR EXISTS (SELECT 1 FROM branches "
    "WHERE context_id = $1 AND versioning->>'head' = ANY($2::text[]))"
)


class _VersionsMoved(LoremasterError):
    """Another cleanup rewrote these versions first; this one's plan is stale."""


_SCHEMA_VERSION_TABLE = (
    "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY, "
    "name TEXT NOT NULL, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())"
)


async def _applied(conn: Connection) -> list[tuple[int, str, int]]:
    exists = await conn.fetchval("SELECT to_regclass('schema_version') IS NOT NULL")
    if not exists:
        return []
    rows = await conn.fetch("SELECT version, name, applied_at FROM schema_version")
    return [(row["version"], row["name"], _time(row["applied_at"])) for row in rows]


async def _lock_rows(conn: Connection, context_ids: list[str]) -> dict[str, ContextRecord]:
    keys = [_uuid(context_id) for context_id in context_ids]
    for context_id, key in zip(context_ids, keys, strict=True):
        if key is None:
            raise ContextNotFound(context_id)
    rows = await conn.fetch(
        f"SELECT {CONTEXT_COLUMNS}, (extract(epoch FROM clock_timestamp()) * 1000000)::bigint "
        "AS read_at FROM contexts WHERE context_id = ANY($1::uuid[]) "
        "ORDER BY context_id FOR UPDATE",
        keys,
    )
    found = {str(row[0]): _ROWS.context(row, read_at=row["read_at"]) for row in rows}
    for context_id in context_ids:
        if str(uuid.UUID(context_id)) not in found:
            raise ContextNotFound(context_id)
    return {context_id: found[str(uuid.UUID(context_id))] for context_id in context_ids}


async def _landed(conn: Connection, event: EventRecord, write_id: uuid.UUID) -> bool:
    found = await conn.fetchval(
        "SELECT 1 FROM events WHERE context_id = $1 AND revision = $2 AND write_id = $3",
        uuid.UUID(event.context_id),
        event.revision,
        write_id,
    )
    return found is not None


async def _landed_on_rows(
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
