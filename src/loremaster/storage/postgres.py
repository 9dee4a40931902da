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
from ..models import from_micros
from ._compact import joined_events, spans
from ._plans import plan_branch, plan_contexts
from ._postgres_sql import (
    DIALECT,
    ROWS,
    SQL,
    insert_new,
    insert_rows,
    landed,
    landed_on_rows,
    lock_rows,
    write_mutations,
)
from ._schema import MigrationStatus, migration_status, pending_migrations
from ._sql import (
    VERSION_COLUMNS,
    query_sql,
    readable_by,
)
from ._types import (
    BranchPlan,
    BranchRecord,
    ContextRecord,
    ContextRows,
    EventRecord,
    IdempotencyRecord,
    MessageRecord,
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
    from ._postgres_sql import Connection

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
        self.trouble: str | None = None
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
                result = await attempt()
            except Exception as exc:
                if _is_transient(exc):
                    self.trouble = str(exc) or type(exc).__name__
                else:
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
            else:
                self.trouble = None
                return result
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
            if earlier and await landed(conn, contexts[0].event, write_id):
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
            await insert_new(conn, contexts, write_id)
            return None

        if contexts:
            await self._write("insert", insert)

    async def modify_context(self, context_id: str, plan: Plan) -> ContextRecord:
        return (await self.modify_contexts({context_id: plan}))[context_id]

    async def modify_contexts(self, plans: Mapping[str, Plan]) -> dict[str, ContextRecord]:
        async def modify(
            conn: Connection, write_id: uuid.UUID, earlier: list[dict[str, ContextRecord]]
        ) -> dict[str, ContextRecord]:
            current = await lock_rows(conn, list(plans))
            if earlier and await landed_on_rows(conn, earlier[0], write_id):
                return earlier[0]
            planned = plan_contexts(current, plans)
            await write_mutations(conn, planned.mutations, write_id)
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
            current = (await lock_rows(conn, [context_id]))[context_id]
            if earlier and await landed_on_rows(conn, {context_id: earlier[0][0]}, write_id):
                return earlier[0]
            row = await conn.fetchrow(SQL.select_branch, uuid.UUID(context_id), name)
            planned = plan_branch(current, None if row is None else ROWS.branch(row), plan)
            await write_mutations(conn, planned.mutations, write_id)
            return planned.result

        return await self._write("modify", modify)

    async def delete_context(
        self, context_id: str, authorize: Callable[[ContextRecord], None]
    ) -> None:
        key = DIALECT.lookup_key(context_id)
        if key is None:
            raise ContextNotFound(context_id)

        async def delete(conn: Connection, write_id: uuid.UUID, earlier: list[None]) -> None:
            try:
                row = (await lock_rows(conn, [context_id]))[context_id]
            except ContextNotFound:
                if earlier:
                    return None  # the earlier attempt's delete landed
                raise
            authorize(row)
            for statement in SQL.delete_context:
                await conn.execute(statement, key)
            return None

        await self._write("delete", delete)

    async def touch(self, context_id: str, *, when: int, not_since: int) -> None:
        key = DIALECT.lookup_key(context_id)
        if key is None:
            return
        params = (key, from_micros(when), from_micros(not_since))
        await self._write("touch", lambda conn, *_: conn.execute(SQL.touch, *params))

    # -- reads ---------------------------------------------------------------------------

    async def load_context(
        self, context_id: str, known: tuple[int, int] | None = None
    ) -> ContextRecord | NotModified | None:
        key = DIALECT.lookup_key(context_id)
        if key is None:
            return None

        async def load(conn: Connection) -> ContextRecord | NotModified | None:
            if known is not None:
                row = await conn.fetchrow(SQL.select_revision, key)
                if row is not None and (row[0], DIALECT.micros(row[1])) == known:
                    return NotModified()
            row = await conn.fetchrow(SQL.select_context, key)
            return None if row is None else ROWS.context(row)

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
        key = DIALECT.lookup_key(context_id)
        if key is None:
            return []
        before = 2**62 if before_seq is None else before_seq
        params = (key, branch, before, after_seq, limit)
        rows = await self._read(lambda conn: conn.fetch(SQL.select_messages, *params))
        return [ROWS.message(row) for row in reversed(rows)]

    async def load_events(
        self, context_id: str, *, since_revision: int, limit: int | None, branch: str | None = None
    ) -> list[EventRecord]:
        key = DIALECT.lookup_key(context_id)
        if key is None:
            return []
        params = (key, since_revision, limit, branch)

        async def load(conn: Connection) -> list[EventRecord]:
            async with conn.transaction(isolation="repeatable_read", readonly=True):
                events = [
                    ROWS.event(context_id, row)
                    for row in await conn.fetch(SQL.select_events, *params)
                ]
                messages = [
                    (span.segment, ROWS.message(row))
                    for span in spans(events)
                    for row in await conn.fetch(
                        SQL.select_message_span, key, span.segment, span.first, span.last
                    )
                ]
            return joined_events(events, messages)

        return await self._read(load)

    async def query_contexts(self, query: RecordQuery) -> list[ContextRecord]:
        sql, values = query_sql(DIALECT, query)
        rows = await self._read(lambda conn: conn.fetch(sql, *values))
        return [ROWS.context(row) for row in rows]

    async def search(self, text: str, *, reader: str | None, limit: int) -> list[SearchRecord]:
        words = search_words(text)
        if not words:
            return []
        terms = [f"'{word}'" for word in words]
        terms[-1] += ":*"
        tsquery = " & ".join(terms)
        access = f"AND ($2::text IS NULL OR {readable_by(DIALECT, '$2::text')})"
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
            known = [
                t for t in (self._statistics_refreshed_at, leased and DIALECT.micros(leased)) if t
            ]
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
        sql = SQL.idle_since(state)
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

    # -- idempotency keys ----------------------------------------------------------------

    async def claim_idempotency_key(
        self, user_id: str, key: str, fingerprint: str, *, ttl: float
    ) -> IdempotencyRecord:
        # The claim id is the same in every attempt: one whose COMMIT's answer was lost
        # finds its own claim in the row and still owns the key.
        claim_id = uuid.uuid4().hex
        now = time.time_ns() // 1000
        expired = now - int(ttl * 1e6)
        params = (user_id, key, fingerprint, claim_id, from_micros(now), from_micros(expired))

        async def claim(conn: Connection, *_: Any) -> IdempotencyRecord:
            await conn.execute(SQL.claim_key, *params)
            row = await conn.fetchrow(SQL.select_key, user_id, key)
            assert row is not None
            return IdempotencyRecord.from_row(tuple(row), claim_id)

        return await self._write("claim idempotency key", claim)

    async def finish_idempotency_key(
        self, user_id: str, key: str, *, status: int, body: bytes, headers: Mapping[str, str]
    ) -> None:
        params = (user_id, key, status, body, orjson.dumps(dict(headers)).decode())
        await self._write(
            "finish idempotency key", lambda conn, *_: conn.execute(SQL.finish_key, *params)
        )

    async def release_idempotency_key(self, user_id: str, key: str) -> None:
        await self._write(
            "release idempotency key",
            lambda conn, *_: conn.execute(SQL.release_key, user_id, key),
        )

    async def purge_idempotency_keys(self, older_than: float, *, dry_run: bool) -> int:
        before = from_micros(time.time_ns() // 1000 - int(older_than * 1e6))
        if dry_run:
            return int(await self._read(lambda conn: conn.fetchval(SQL.count_old_keys, before)))
        status = await self._write(
            "purge idempotency keys", lambda conn, *_: conn.execute(SQL.purge_old_keys, before)
        )
        return int(status.split()[-1])

    # -- codec dictionaries --------------------------------------------------------------

    async def load_dictionaries(self) -> list[tuple[int, str, bytes]]:
        rows = await self._read(lambda conn: conn.fetch(SQL.load_dictionaries))
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
        rows = await self._read(lambda conn: conn.fetch(SQL.sample_messages, limit))
        return [ROWS.message(row) for row in rows]

    # -- versions and branches -----------------------------------------------------------

    async def load_branch(self, context_id: str, name: str) -> BranchRecord | None:
        key = DIALECT.lookup_key(context_id)
        if key is None:
            return None
        row = await self._read(lambda conn: conn.fetchrow(SQL.select_branch, key, name))
        return None if row is None else ROWS.branch(row)

    async def list_branches(self, context_id: str) -> list[BranchRecord]:
        key = DIALECT.lookup_key(context_id)
        if key is None:
            return []
        rows = await self._read(lambda conn: conn.fetch(SQL.select_branches, key))
        return [ROWS.branch(row) for row in rows]

    async def load_versions(
        self, context_id: str, version_ids: Sequence[str]
    ) -> list[VersionRecord]:
        key = DIALECT.lookup_key(context_id)
        if key is None:
            return []
        params = (key, list(version_ids))
        rows = await self._read(lambda conn: conn.fetch(_SELECT_VERSIONS, *params))
        return [ROWS.version(row) for row in rows]

    async def load_version_chain(self, context_id: str, version_id: str) -> list[VersionRecord]:
        key = DIALECT.lookup_key(context_id)
        if key is None:
            return []
        rows = await self._read(lambda conn: conn.fetch(SQL.version_chain, key, version_id))
        return [ROWS.version(row) for row in reversed(rows)]

    async def list_versions(
        self,
        context_id: str,
        *,
        branch: str | None = None,
        tag: str | None = None,
        before_number: int | None = None,
        limit: int | None = None,
    ) -> list[VersionRecord]:
        key = DIALECT.lookup_key(context_id)
        if key is None:
            return []
        sql, params = SQL.list_versions(
            key, branch=branch, tag=tag, before_number=before_number, limit=limit
        )
        rows = await self._read(lambda conn: conn.fetch(sql, *params))
        return [ROWS.version(row) for row in rows]

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
        key = DIALECT.lookup_key(context_id)
        if key is None:
            return None

        async def load(conn: Connection) -> ContextRows | None:
            async with conn.transaction(isolation="repeatable_read", readonly=True):
                row = await conn.fetchrow(SQL.select_context, key)
                if row is None:
                    return None
                # Byte order, as SQLite's: a dump does not depend on the backend's collation.
                branches = await conn.fetch(SQL.select_branches, key)
                messages = await conn.fetch(SQL.select_all_messages, key)
                versions = await conn.fetch(SQL.select_versions, key)
                events = await conn.fetch(SQL.select_all_events, key)
            record = ROWS.context(row)
            stored = [(m[7], ROWS.message(m)) for m in messages]
            return ContextRows(
                record=record,
                branches=[ROWS.branch(b) for b in branches],
                messages=stored,
                versions=[ROWS.version(v) for v in versions],
                events=joined_events((ROWS.event(record.context_id, e) for e in events), stored),
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
                if earlier and (not rows.events or await landed(conn, rows.events[-1], write_id)):
                    return None  # the earlier attempt's COMMIT landed
                raise ValidationFailed(
                    "a context with this id exists", [Issue("/context_id", context_id)]
                )
            try:
                await insert_rows(conn, rows, write_id)
            except asyncpg.UniqueViolationError as exc:  # a version id another context has
                raise ValidationFailed(
                    "a row of this context is stored already", [Issue("/context_id", str(exc))]
                ) from exc
            found = await conn.fetchrow(SQL.row_counts, key)
            check_written(rows, () if found is None else tuple(found))
            return None

        await self._write("insert rows", insert)


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
    return [(row["version"], row["name"], DIALECT.micros(row["applied_at"])) for row in rows]
