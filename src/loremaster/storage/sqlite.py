"""The embedded backend: one SQLite file in WAL mode.

Each manager owns one writer connection and a few reader connections, each served by its
own thread, so a whole operation (a transaction of several statements) costs one hop off
the event loop. Writers take the write lock up front (``BEGIN IMMEDIATE``) so that SQLite's
busy handler, not an error, resolves contention between managers on the same file; a
write that still finds the file locked is retried until ``sync_timeout``.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import itertools
import os
import random
import sqlite3
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote

import orjson

from ..errors import (
    BackendUnavailable,
    DatabaseNotFound,
    Issue,
    ReadOnlyDatabase,
    ValidationFailed,
)
from ._compact import joined_events
from ._plans import plan_branch, plan_contexts
from ._rows import dumps
from ._schema import MigrationStatus, migration_status, pending_migrations
from ._sql import VERSION_COLUMNS, query_sql, readable_by
from ._sqlite_sql import (
    DIALECT,
    ROWS,
    SQL,
    existing,
    insert_context_row,
    insert_event,
    insert_messages,
    insert_versions,
    load_events,
    one,
    save_branch,
    select_branch,
    select_context,
    write_planned,
)
from ._types import (
    SNIPPET_BEFORE,
    SNIPPET_WINDOW,
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
    snippet,
    summarize_statistics,
)

__all__ = ["SQLiteStorage"]

T = TypeVar("T")

_READERS = 2
_BUSY_TIMEOUT_MS = 5_000


def _is_busy(exc: sqlite3.OperationalError) -> bool:
    text = str(exc)
    return "locked" in text or "busy" in text


def _is_read_only(exc: sqlite3.Error) -> bool:
    """SQLITE_READONLY or one of its extended codes (a folder it may not write, ...)."""
    return (getattr(exc, "sqlite_errorcode", 0) & 0xFF) == sqlite3.SQLITE_READONLY


def _uri(path: str, mode: str, *, immutable: bool = False) -> str:
    """The URI that opens `path`: ``mode`` ro (read-only), rw (never creates) or rwc."""
    return f"file:{quote(path)}?mode={mode}" + ("&immutable=1" if immutable else "")


# A search hit with the window of its text to cut a snippet from, where that window starts
# and how long the text is: `instr` and `substr` are linear.
_SNIPPET_SQL = (
    "SELECT context_id, context_type, title, score, substr(body, start, :window), seq, start, "
    "length(body), segment, versioning, message_count FROM (SELECT *, "
    "max(1, instr(lower(body), :first) - :before) AS start FROM ({}))"
)


def _fts_query(text: str) -> str | None:
    """User text as an FTS5 query: every word must occur, the last one as a prefix."""
    words = search_words(text)
    if not words:
        return None
    quoted = [f'"{word}"' for word in words]
    quoted[-1] += "*"
    return " ".join(quoted)


class _VersionsMoved(Exception):
    """Another cleanup rewrote these versions first; this one's plan is stale."""


class _Connection:
    """One sqlite3 connection and the single thread that uses it."""

    def __init__(self, path: str, name: str) -> None:
        self._path = path
        self.uri = _uri(path, "rwc")
        """What the connection opens; the storage sets it before `open()`."""
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=name)
        self._conn: sqlite3.Connection | None = None

    async def open(self) -> None:
        await self.call(lambda _: None)

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            conn = sqlite3.connect(
                self.uri, uri=True, isolation_level=None, check_same_thread=False, timeout=0
            )
            conn.execute(f"PRAGMA busy_timeout = {_BUSY_TIMEOUT_MS}")
            conn.execute("PRAGMA synchronous = NORMAL")
            conn.execute("PRAGMA temp_store = MEMORY")
            conn.execute("PRAGMA cache_size = -16000")
            self._conn = conn
        return self._conn

    async def call(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._executor, lambda: fn(self._connection()))
        except sqlite3.OperationalError as exc:
            if _is_read_only(exc):
                raise ReadOnlyDatabase(
                    f"SQLite database {self._path} is read-only ({exc}): writes are refused"
                ) from exc
            raise BackendUnavailable(f"SQLite database {self._path}: {exc}") from exc
        except sqlite3.DatabaseError as exc:
            raise BackendUnavailable(f"SQLite database {self._path} is unusable: {exc}") from exc

    async def close(self) -> None:
        def _close(conn: sqlite3.Connection) -> None:
            conn.close()
            self._conn = None

        if self._conn is not None:
            await self.call(_close)
        self._executor.shutdown(wait=True)


def _read(conn: sqlite3.Connection, fn: Callable[[sqlite3.Connection], T]) -> T:
    """Run `fn` in one read transaction, so that it sees one consistent snapshot."""
    conn.execute("BEGIN")
    try:
        return fn(conn)
    finally:
        conn.execute("COMMIT")


class SQLiteStorage:
    """`Storage` on one SQLite file, shared safely by several managers and processes."""

    backend = "sqlite"

    def __init__(
        self,
        path: str,
        *,
        write_timeout: float = 30.0,
        read_only: bool = False,
        immutable: bool = False,
    ) -> None:
        self.path = path
        self.read_only = read_only or immutable
        self.trouble: str | None = None  # a file does not go away while it is open
        """Whether writes are refused: asked for (``?mode=ro``, ``?immutable=1``), or found
        on opening (a file this process may not write, or a folder where a WAL database's
        shared-memory file cannot be made)."""
        self._immutable = immutable
        self._why_read_only = "opened read-only" if self.read_only else ""
        self._write_timeout = write_timeout
        self._writer = _Connection(path, "loremaster-sqlite-writer")
        self._readers = [
            _Connection(path, f"loremaster-sqlite-reader-{i}") for i in range(_READERS)
        ]
        self._next_reader = itertools.cycle(self._readers)

    # -- lifecycle -----------------------------------------------------------------------

    async def open(self, *, create: bool = True) -> None:
        uri = self._choose_uri(create)  # a few stat calls, like the mkdir it replaces
        for connection in (self._writer, *self._readers):
            connection.uri = uri
        await self._writer.open()
        if not self.read_only:
            await self._writer.call(
                lambda conn: self._when_unlocked(conn, "PRAGMA journal_mode = WAL")
            )
        for reader in self._readers:
            await reader.open()

    def _choose_uri(self, create: bool) -> str:
        """How to open the file: create it (and its folder) only if `create` and not asked
        to be read-only; read-only when it cannot be written. A WAL database whose
        ``-shm`` file is gone (its last writer closed cleanly) cannot even be read from a
        folder this process may not write, unless opened as immutable: nobody can be
        writing it there, so it is."""
        path = Path(self.path)
        if not path.is_file():
            if not create or self.read_only:
                raise DatabaseNotFound(f"SQLite database {path} does not exist")
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise BackendUnavailable(f"cannot create the folder of {path}: {exc}") from exc
            if not os.access(path.parent, os.W_OK):
                raise ReadOnlyDatabase(
                    f"cannot create SQLite database {path}: its folder is not writable"
                )
            return _uri(self.path, "rwc")
        if not self.read_only and not os.access(path, os.W_OK):
            self.read_only, self._why_read_only = True, "the file is not writable"
        mode = "ro" if self.read_only else "rwc" if create else "rw"
        uri = _uri(self.path, mode, immutable=self._immutable)
        if self._immutable or os.access(path.parent, os.W_OK):
            return uri
        try:
            with contextlib.closing(sqlite3.connect(uri, uri=True, timeout=0)) as probe:
                one(probe, "PRAGMA journal_mode")
        except sqlite3.OperationalError as exc:
            if getattr(exc, "sqlite_errorcode", 0) != sqlite3.SQLITE_READONLY_DIRECTORY:
                raise BackendUnavailable(f"SQLite database {path}: {exc}") from exc
            self.read_only = self._immutable = True
            self._why_read_only = "its folder is not writable: opened as immutable"
            uri = _uri(self.path, "ro", immutable=True)
        return uri

    async def migrate(self) -> MigrationStatus:
        """Apply pending migrations; a schema already current is only read, so opening
        never waits for another connection's write transaction."""
        status = await self.migration_status()
        if status.pending:
            await self._write(_migrate)
            status = await self.migration_status()
        return status

    async def migration_status(self) -> MigrationStatus:
        return migration_status("sqlite", await self._read(_applied_migrations))

    async def close(self) -> None:
        for connection in (self._writer, *self._readers):
            await connection.close()

    # -- plumbing ------------------------------------------------------------------------

    async def _write(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        if self.read_only:
            raise ReadOnlyDatabase(
                f"SQLite database {self.path} is read-only ({self._why_read_only}): "
                "writes are refused"
            )
        try:
            return await self._writer.call(lambda conn: self._in_write_transaction(conn, fn))
        except ReadOnlyDatabase:
            self.read_only, self._why_read_only = True, "a write found it read-only"
            raise

    def _when_unlocked(self, conn: sqlite3.Connection, statement: str) -> None:
        """Run `statement`, retrying with backoff while another connection holds the lock."""
        deadline = time.monotonic() + self._write_timeout
        for attempt in itertools.count():
            try:
                one(conn, statement)
                return
            except sqlite3.OperationalError as exc:
                if not _is_busy(exc) or time.monotonic() >= deadline:
                    raise
                time.sleep(min(0.2, 0.005 * 2**attempt) * random.uniform(0.5, 1.0))

    def _in_write_transaction(
        self, conn: sqlite3.Connection, fn: Callable[[sqlite3.Connection], T]
    ) -> T:
        self._when_unlocked(conn, "BEGIN IMMEDIATE")
        try:
            result = fn(conn)
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        return result

    async def _read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        return await next(self._next_reader).call(lambda conn: _read(conn, fn))

    # -- writes --------------------------------------------------------------------------

    async def insert_contexts(self, contexts: Sequence[NewContext]) -> None:
        def insert(conn: sqlite3.Connection) -> None:
            for new in contexts:
                insert_context_row(conn, new.record)
                insert_messages(conn, new.record.context_id, "main", new.messages)
                insert_event(conn, new.event)
                if new.version is not None:
                    insert_versions(conn, [new.version])

        await self._write(insert)

    async def modify_context(self, context_id: str, plan: Plan) -> ContextRecord:
        return (await self.modify_contexts({context_id: plan}))[context_id]

    async def modify_contexts(self, plans: Mapping[str, Plan]) -> dict[str, ContextRecord]:
        def modify(conn: sqlite3.Connection) -> dict[str, ContextRecord]:
            current = {context_id: existing(conn, context_id) for context_id in plans}
            return write_planned(conn, plan_contexts(current, plans))

        return await self._write(modify)

    async def modify_branch(
        self, context_id: str, name: str, plan: BranchPlan
    ) -> tuple[ContextRecord, BranchRecord | None]:
        def modify(conn: sqlite3.Connection) -> tuple[ContextRecord, BranchRecord | None]:
            branch = select_branch(conn, context_id, name)
            return write_planned(conn, plan_branch(existing(conn, context_id), branch, plan))

        return await self._write(modify)

    async def delete_context(
        self, context_id: str, authorize: Callable[[ContextRecord], None]
    ) -> None:
        def delete(conn: sqlite3.Connection) -> None:
            authorize(existing(conn, context_id))
            for statement in SQL.delete_context:
                conn.execute(statement, (context_id,))

        await self._write(delete)

    async def touch(self, context_id: str, *, when: int, not_since: int) -> None:
        await self._write(lambda conn: conn.execute(SQL.touch, (context_id, when, not_since)))

    # -- reads ---------------------------------------------------------------------------

    async def load_context(
        self, context_id: str, known: tuple[int, int] | None = None
    ) -> ContextRecord | NotModified | None:
        def load(conn: sqlite3.Connection) -> ContextRecord | NotModified | None:
            if known is not None:
                row = one(conn, SQL.select_revision, (context_id,))
                if row is not None and (row[0], row[1]) == known:
                    return NotModified()
            return select_context(conn, context_id)

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
        before = 2**62 if before_seq is None else before_seq
        params = (context_id, branch, before, after_seq, -1 if limit is None else limit)
        rows = await self._read(lambda conn: conn.execute(SQL.select_messages, params).fetchall())
        return [ROWS.message(row) for row in reversed(rows)]

    async def load_events(
        self, context_id: str, *, since_revision: int, limit: int | None, branch: str | None = None
    ) -> list[EventRecord]:
        params = (context_id, since_revision, -1 if limit is None else limit, branch)
        return await self._read(
            lambda conn: load_events(conn, context_id, conn.execute(SQL.select_events, params))
        )

    async def query_contexts(self, query: RecordQuery) -> list[ContextRecord]:
        sql, params = query_sql(DIALECT, query)
        rows = await self._read(lambda conn: conn.execute(sql, params).fetchall())
        return [ROWS.context(row) for row in rows]

    async def search(self, text: str, *, reader: str | None, limit: int) -> list[SearchRecord]:
        match = _fts_query(text)
        if match is None:
            return []
        words = search_words(text)
        access = "" if reader is None else f"AND {readable_by(DIALECT, ':reader')}"
        params = {
            "match": match,
            "reader": reader,
            "limit": limit,
            "first": words[0].lower(),
            "before": SNIPPET_BEFORE,
            "window": SNIPPET_WINDOW,
        }
        # FTS5's snippet() is quadratic in how often a word occurs in one text (a 0.5 MB
        # message took 6 s): snippets are cut here around the first match instead.
        in_contexts = _SNIPPET_SQL.format(
            "SELECT c.context_id, c.context_type, c.title, -bm25(contexts_fts, 2.0, 1.0) AS score, "
            "c.title || ' ' || c.description AS body, NULL AS seq, NULL AS segment, "
            "c.versioning, c.message_count "
            "FROM contexts_fts JOIN contexts c ON c.row_id = contexts_fts.rowid "
            f"WHERE contexts_fts MATCH :match AND c.state != 'deleted' {access} "
            "ORDER BY bm25(contexts_fts, 2.0, 1.0) LIMIT :limit"
        )
        in_messages = _SNIPPET_SQL.format(
            "SELECT c.context_id, c.context_type, c.title, -bm25(messages_fts) AS score, "
            "m.search_text AS body, m.seq AS seq, m.branch AS segment, c.versioning, "
            "c.message_count "
            "FROM messages_fts JOIN messages m ON m.id = messages_fts.rowid "
            "JOIN contexts c ON c.context_id = m.context_id "
            f"WHERE messages_fts MATCH :match AND c.state != 'deleted' {access} "
            "ORDER BY bm25(messages_fts) LIMIT :candidates"
        )

        def found(row: Sequence[Any]) -> SearchRecord:
            start, length = row[6], row[7]
            cut_after = start + SNIPPET_WINDOW <= length
            shown = snippet(row[4], words, cut_before=start > 1, cut_after=cut_after)
            main = VersionState.from_json(orjson.loads(row[9]))
            return SearchRecord(
                row[0], row[1], row[2], row[3], shown, row[5], row[8], main, row[10]
            )

        def load(conn: sqlite3.Connection) -> list[SearchRecord]:
            rows = conn.execute(in_contexts, params).fetchall()
            rows += conn.execute(in_messages, {**params, "candidates": limit * 10}).fetchall()
            return [found(row) for row in rows]

        return await self._read(load)

    async def health(self) -> StorageHealth:
        def measure(conn: sqlite3.Connection) -> dict[str, Any]:
            # Messages as `stats` counts them: in each context's main view (the messages
            # table also keeps branches' and those a rollback took out of view).
            contexts, messages = one(
                conn, "SELECT count(*), coalesce(sum(message_count), 0) FROM contexts"
            )
            events = one(conn, "SELECT count(*) FROM events")[0]
            page_size = one(conn, "PRAGMA page_size")[0]
            pages = one(conn, "PRAGMA page_count")[0]
            journal = one(conn, "PRAGMA journal_mode")[0]
            return {
                "path": self.path,
                "journal_mode": journal,
                "immutable": self._immutable,
                "database_bytes": page_size * pages,
                "sqlite_version": sqlite3.sqlite_version,
                "contexts": contexts,
                "messages": messages,
                "events": events,
            }

        details = await self._read(measure)
        status = await self.migration_status()
        return StorageHealth("sqlite", True, status.version, details)

    async def statistics(self, *, refresh: bool, max_age: float | None = None) -> dict[str, Any]:
        # A plain view: always counted now.
        rows = await self._read(
            lambda conn: conn.execute(
                "SELECT context_type, state, contexts, bytes, messages, max_messages "
                "FROM context_statistics ORDER BY context_type, state"
            ).fetchall()
        )
        return summarize_statistics(rows)

    # -- retention -----------------------------------------------------------------------

    async def acquire_lease(self, name: str, holder: str, *, ttl: float, every: float) -> bool:
        now = time.time_ns() // 1000

        def acquire(conn: sqlite3.Connection) -> bool:
            conn.execute("INSERT OR IGNORE INTO maintenance_leases (name) VALUES (?)", (name,))
            taken = conn.execute(
                "UPDATE maintenance_leases SET holder = ?, expires_at = ? WHERE name = ? "
                "AND (holder IS NULL OR expires_at < ?) AND last_finished_at <= ?",
                (holder, now + int(ttl * 1e6), name, now, now - int(every * 1e6)),
            )
            return taken.rowcount == 1

        return await self._write(acquire)

    async def release_lease(self, name: str, holder: str, *, finished: bool) -> None:
        now = time.time_ns() // 1000

        def release(conn: sqlite3.Connection) -> None:
            conn.execute(
                "UPDATE maintenance_leases SET holder = NULL, expires_at = 0, "
                "last_finished_at = CASE WHEN ? THEN ? ELSE last_finished_at END "
                "WHERE name = ? AND holder = ?",
                (finished, now, name, holder),
            )

        await self._write(release)

    async def contexts_idle_since(self, before: int, *, state: str, limit: int) -> list[str]:
        sql = SQL.idle_since(state)
        rows = await self._read(lambda conn: conn.execute(sql, (state, before, limit)).fetchall())
        return [row[0] for row in rows]

    async def trim_events(self, before: int, *, dry_run: bool) -> int:
        where = (
            "WHERE created_at < ? AND revision < "
            "(SELECT c.revision FROM contexts c WHERE c.context_id = events.context_id)"
        )
        if dry_run:
            row = await self._read(
                lambda conn: one(conn, f"SELECT count(*) FROM events {where}", (before,))
            )
            return int(row[0])
        return await self._write(
            lambda conn: conn.execute(f"DELETE FROM events {where}", (before,)).rowcount
        )

    # -- idempotency keys ----------------------------------------------------------------

    async def claim_idempotency_key(
        self, user_id: str, key: str, fingerprint: str, *, ttl: float
    ) -> IdempotencyRecord:
        claim_id = uuid.uuid4().hex
        now = time.time_ns() // 1000
        params = (user_id, key, fingerprint, claim_id, now, now - int(ttl * 1e6))

        def claim(conn: sqlite3.Connection) -> IdempotencyRecord:
            conn.execute(SQL.claim_key, params)
            return IdempotencyRecord.from_row(one(conn, SQL.select_key, (user_id, key)), claim_id)

        return await self._write(claim)

    async def finish_idempotency_key(
        self, user_id: str, key: str, *, status: int, body: bytes, headers: Mapping[str, str]
    ) -> None:
        params = (user_id, key, status, body, dumps(dict(headers)))
        await self._write(lambda conn: conn.execute(SQL.finish_key, params))

    async def release_idempotency_key(self, user_id: str, key: str) -> None:
        await self._write(lambda conn: conn.execute(SQL.release_key, (user_id, key)))

    async def purge_idempotency_keys(self, older_than: float, *, dry_run: bool) -> int:
        before = (time.time_ns() // 1000 - int(older_than * 1e6),)
        if dry_run:
            return int((await self._read(lambda conn: one(conn, SQL.count_old_keys, before)))[0])
        return await self._write(lambda conn: conn.execute(SQL.purge_old_keys, before).rowcount)

    # -- codec dictionaries --------------------------------------------------------------

    async def load_dictionaries(self) -> list[tuple[int, str, bytes]]:
        rows = await self._read(lambda conn: conn.execute(SQL.load_dictionaries).fetchall())
        return [(row[0], row[1], bytes(row[2])) for row in rows]

    async def save_dictionary(self, context_type: str, data: bytes, *, sample_count: int) -> int:
        def save(conn: sqlite3.Connection) -> int:
            cursor = conn.execute(
                "INSERT INTO codec_dictionaries (context_type, sample_count, created_at, data) "
                "VALUES (?, ?, ?, ?)",
                (context_type, sample_count, time.time_ns() // 1000, data),
            )
            return int(cursor.lastrowid or 0)

        return await self._write(save)

    async def sample_messages(self, limit: int) -> list[MessageRecord]:
        rows = await self._read(lambda conn: conn.execute(SQL.sample_messages, (limit,)).fetchall())
        return [ROWS.message(row) for row in rows]

    # -- versions and branches -----------------------------------------------------------

    async def load_branch(self, context_id: str, name: str) -> BranchRecord | None:
        return await self._read(lambda conn: select_branch(conn, context_id, name))

    async def list_branches(self, context_id: str) -> list[BranchRecord]:
        rows = await self._read(
            lambda conn: conn.execute(SQL.select_branches, (context_id,)).fetchall()
        )
        return [ROWS.branch(row) for row in rows]

    async def load_versions(
        self, context_id: str, version_ids: Sequence[str]
    ) -> list[VersionRecord]:
        params = (context_id, dumps(list(version_ids)))
        rows = await self._read(lambda conn: conn.execute(_SELECT_VERSIONS, params).fetchall())
        return [ROWS.version(row) for row in rows]

    async def load_version_chain(self, context_id: str, version_id: str) -> list[VersionRecord]:
        params = (context_id, version_id)
        rows = await self._read(lambda conn: conn.execute(SQL.version_chain, params).fetchall())
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
        sql, params = SQL.list_versions(
            context_id, branch=branch, tag=tag, before_number=before_number, limit=limit
        )
        rows = await self._read(lambda conn: conn.execute(sql, params).fetchall())
        return [ROWS.version(row) for row in rows]

    async def rewrite_versions(
        self, context_id: str, *, delete: Sequence[str], replace: Sequence[VersionRecord]
    ) -> bool:
        # Under the write lock, so no version is made meanwhile; the plan was made from
        # reads before it, so each of its assumptions is checked again here.
        def rewrite(conn: sqlite3.Connection) -> bool:
            gone = dumps(list(delete))
            if one(conn, _HEADS_AMONG_SQL, (context_id, gone)) is not None:
                raise _VersionsMoved  # a head: it moved back, or was listed before it moved
            deleted = conn.execute(
                "DELETE FROM versions WHERE context_id = ?1 AND version_id "
                "IN (SELECT value FROM json_each(?2)) AND version_id NOT IN "
                "(SELECT base_version FROM branches WHERE context_id = ?1 "
                "AND base_version IS NOT NULL UNION SELECT merge_parent_id FROM versions "
                "WHERE context_id = ?1 AND merge_parent_id IS NOT NULL)",
                (context_id, gone),
            ).rowcount
            if deleted != len(delete):
                raise _VersionsMoved
            rebased = sum(
                conn.execute(
                    "UPDATE versions SET parent_id = ?, merge_parent_id = ?, kind = ?, "
                    "payload = ?, size_bytes = ? WHERE version_id = ? "
                    "AND parent_id IN (SELECT value FROM json_each(?))",
                    (
                        v.parent_id,
                        v.merge_parent_id,
                        v.kind,
                        v.payload,
                        v.size_bytes,
                        v.version_id,
                        gone,
                    ),
                ).rowcount
                for v in replace
            )
            if rebased != len(replace) or one(conn, _ORPHANS_SQL, (context_id, gone)):
                raise _VersionsMoved  # a version made since the plan rests on a removed one
            return True

        try:
            return await self._write(rewrite)
        except _VersionsMoved:
            return False

    async def contexts_over_version_limit(
        self, automatic: int, checkpoints: int, *, max_contexts: int
    ) -> list[str]:
        rows = await self._read(
            lambda conn: conn.execute(
                "SELECT context_id FROM versions GROUP BY context_id HAVING sum(automatic) > ? "
                "OR sum(NOT automatic AND tags = '[]') > ? LIMIT ?",
                (automatic, checkpoints, max_contexts),
            ).fetchall()
        )
        return [row[0] for row in rows]

    async def load_rows(self, context_id: str) -> ContextRows | None:
        def load(conn: sqlite3.Connection) -> ContextRows | None:
            record = select_context(conn, context_id)
            if record is None:
                return None
            key = (context_id,)
            messages = [
                (row[7], ROWS.message(row)) for row in conn.execute(SQL.select_all_messages, key)
            ]
            events = [
                ROWS.event(context_id, row) for row in conn.execute(SQL.select_all_events, key)
            ]
            return ContextRows(
                record=dataclasses.replace(record, read_at=0),
                branches=[ROWS.branch(row) for row in conn.execute(SQL.select_branches, key)],
                messages=messages,
                versions=[ROWS.version(row) for row in conn.execute(SQL.select_versions, key)],
                events=joined_events(events, messages),
            )

        return await self._read(load)

    async def insert_rows(self, rows: ContextRows) -> None:
        context_id = rows.record.context_id

        def insert(conn: sqlite3.Connection) -> None:
            insert_context_row(conn, rows.record)
            ordered = sorted(rows.messages, key=lambda pair: (pair[0], pair[1].seq))
            for segment, group in itertools.groupby(ordered, key=lambda pair: pair[0]):
                insert_messages(conn, context_id, segment, [message for _, message in group])
            try:
                for event in rows.events:
                    insert_event(conn, event)
                insert_versions(conn, rows.versions)
            except sqlite3.IntegrityError as exc:  # a version id another context has, say
                raise ValidationFailed(
                    "a row of this context is stored already", [Issue("/context_id", str(exc))]
                ) from exc
            for branch in rows.branches:
                save_branch(conn, branch)
            found = one(conn, SQL.row_counts, (context_id,))
            check_written(rows, found)

        await self._write(insert)


_SELECT_VERSIONS = (
    f"SELECT {VERSION_COLUMNS} FROM versions WHERE context_id = ?1 AND version_id "
    "IN (SELECT value FROM json_each(?2))"
)
_HEADS_AMONG_SQL = (
    "SELECT 1 FROM (SELECT json_extract(versioning, '$.head') AS head FROM contexts "
    "WHERE context_id = ?1 UNION ALL SELECT json_extract(versioning, '$.head') FROM branches "
    "WHERE context_id = ?1) WHERE head IN (SELECT value FROM json_each(?2))"
)
_ORPHANS_SQL = (
    "SELECT 1 FROM versions WHERE context_id = ?1 AND parent_id IN "
    "(SELECT value FROM json_each(?2)) LIMIT 1"
)


def _statements(script: str) -> Iterable[str]:
    buffer = ""
    for line in script.splitlines(keepends=True):
        buffer += line
        if sqlite3.complete_statement(buffer):
            yield buffer
            buffer = ""
    leftover = [
        line for line in buffer.splitlines() if line.strip() and not line.strip().startswith("--")
    ]
    if leftover:
        raise ValueError(f"incomplete SQL statement in migration: {leftover[0]!r}")


_SCHEMA_VERSION_TABLE = (
    "CREATE TABLE IF NOT EXISTS schema_version ("
    "version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)"
)


def _applied_migrations(conn: sqlite3.Connection) -> list[tuple[int, str, int]]:
    exists = one(conn, "SELECT 1 FROM sqlite_master WHERE name = 'schema_version'")
    if exists is None:
        return []
    rows = conn.execute("SELECT version, name, applied_at FROM schema_version").fetchall()
    return [(row[0], row[1], row[2]) for row in rows]


def _migrate(conn: sqlite3.Connection) -> None:
    """Apply pending migrations inside the caller's write transaction."""
    conn.execute(_SCHEMA_VERSION_TABLE)
    applied = {version for version, _, _ in _applied_migrations(conn)}
    for migration in pending_migrations("sqlite", applied):
        for statement in _statements(migration.script):
            conn.execute(statement)
        conn.execute(
            "INSERT INTO schema_version (version, name, applied_at) VALUES (?, ?, ?)",
            (migration.version, migration.name, time.time_ns() // 1000),
        )
