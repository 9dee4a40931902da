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
import re
import sqlite3
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote

import orjson

from ..errors import (
    BackendUnavailable,
    ContextNotFound,
    DatabaseNotFound,
    Issue,
    ReadOnlyDatabase,
    ValidationFailed,
)
from ._schema import MigrationStatus, migration_status, pending_migrations
from ._types import (
    SNIPPET_BEFORE,
    SNIPPET_WINDOW,
    BranchPlan,
    BranchRecord,
    ContextRecord,
    ContextRows,
    Coordination,
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
    snippet,
    summarize_statistics,
)

__all__ = ["SQLiteStorage"]

T = TypeVar("T")

_CONTEXT_COLUMNS = (
    "context_id, context_type, title, description, data, metadata, extra, state, owner_id, "
    "collaborators, permissions, revision, message_count, turn_count, doc_bytes, "
    "messages_bytes, created_at, last_modified, last_accessed, checksum, versioning, "
    "version_number, coordination"
)
_VERSION_COLUMNS = (
    "version_id, context_id, number, branch, parent_id, kind, payload, size_bytes, "
    "message_seq, view, turn_count, revision, author, message, tags, created_at, checksum, "
    "merge_parent_id, automatic"
)
_VERSION_METADATA = _VERSION_COLUMNS.replace("payload", "x''")
_BRANCH_COLUMNS = (
    "context_id, name, document, message_count, turn_count, messages_bytes, versioning, "
    "base_version, created_by, created_at, last_modified"
)
_ORDER_COLUMNS = {"created_at", "last_modified", "last_accessed", "title"}
_READERS = 2
_BUSY_TIMEOUT_MS = 5_000


def _dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


def _record(row: Sequence[Any]) -> ContextRecord:
    loads = orjson.loads
    return ContextRecord(
        context_id=row[0],
        context_type=row[1],
        title=row[2],
        description=row[3],
        data=loads(row[4]),
        metadata=loads(row[5]),
        extra=loads(row[6]),
        state=row[7],
        owner_id=row[8],
        collaborators=loads(row[9]),
        permissions=loads(row[10]),
        revision=row[11],
        message_count=row[12],
        turn_count=row[13],
        doc_bytes=row[14],
        messages_bytes=row[15],
        created_at=row[16],
        last_modified=row[17],
        last_accessed=row[18],
        checksum=row[19],
        versioning=VersionState.from_json(loads(row[20])),
        version_number=row[21],
        coordination=Coordination.from_json(loads(row[22])),
    )


def _version(row: Sequence[Any]) -> VersionRecord:
    return VersionRecord(
        version_id=row[0],
        context_id=row[1],
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
        tags=tuple(orjson.loads(row[14])),
        created_at=row[15],
        checksum=row[16],
        merge_parent_id=row[17],
        automatic=bool(row[18]),
    )


def _branch(row: Sequence[Any]) -> BranchRecord:
    return BranchRecord(
        context_id=row[0],
        name=row[1],
        document=orjson.loads(row[2]),
        message_count=row[3],
        turn_count=row[4],
        messages_bytes=row[5],
        versioning=VersionState.from_json(orjson.loads(row[6])),
        base_version=row[7],
        created_by=row[8],
        created_at=row[9],
        last_modified=row[10],
    )


def _one(conn: sqlite3.Connection, sql: str, params: Sequence[Any] = ()) -> Any:
    """The first row of a query, with its statement finished so COMMIT never waits on it."""
    cursor = conn.execute(sql, params)
    try:
        return cursor.fetchone()
    finally:
        cursor.close()


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


def _reader_clause(alias: str) -> str:
    return (
        f"({alias}.owner_id = :reader"
        f" OR EXISTS (SELECT 1 FROM json_each({alias}.collaborators) WHERE value = :reader)"
        f" OR EXISTS (SELECT 1 FROM json_each({alias}.permissions)"
        f" WHERE key = :reader AND json_array_length(value) > 0))"
    )


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
                _one(probe, "PRAGMA journal_mode")
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
                _one(conn, statement)
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
                _insert_context_row(conn, new.record)
                _insert_messages(conn, new.record.context_id, "main", new.messages)
                _insert_event(conn, new.event)
                if new.version is not None:
                    _insert_versions(conn, [new.version])

        await self._write(insert)

    async def modify_context(self, context_id: str, plan: Plan) -> ContextRecord:
        return (await self.modify_contexts({context_id: plan}))[context_id]

    async def modify_contexts(self, plans: Mapping[str, Plan]) -> dict[str, ContextRecord]:
        def modify(conn: sqlite3.Connection) -> dict[str, ContextRecord]:
            return {
                context_id: _apply_plan(conn, context_id, plan)
                for context_id, plan in plans.items()
            }

        return await self._write(modify)

    async def modify_branch(
        self, context_id: str, name: str, plan: BranchPlan
    ) -> tuple[ContextRecord, BranchRecord | None]:
        def modify(conn: sqlite3.Connection) -> tuple[ContextRecord, BranchRecord | None]:
            current = _select_context(conn, context_id)
            if current is None:
                raise ContextNotFound(context_id)
            branch = _select_branch(conn, context_id, name)
            mutation = plan(current, branch)
            if mutation is None:
                return current, branch
            _write_mutation(conn, current, mutation)
            return mutation.record, mutation.branch

        return await self._write(modify)

    async def delete_context(
        self, context_id: str, authorize: Callable[[ContextRecord], None]
    ) -> None:
        def delete(conn: sqlite3.Connection) -> None:
            current = _select_context(conn, context_id)
            if current is None:
                raise ContextNotFound(context_id)
            authorize(current)
            for table in ("messages", "events", "versions", "branches", "contexts"):
                conn.execute(f"DELETE FROM {table} WHERE context_id = ?", (context_id,))

        await self._write(delete)

    async def touch(self, context_id: str, *, when: int, not_since: int) -> None:
        def touch(conn: sqlite3.Connection) -> None:
            conn.execute(
                "UPDATE contexts SET last_accessed = ? WHERE context_id = ? AND last_accessed < ?",
                (when, context_id, not_since),
            )

        await self._write(touch)

    # -- reads ---------------------------------------------------------------------------

    async def load_context(
        self, context_id: str, known: tuple[int, int] | None = None
    ) -> ContextRecord | NotModified | None:
        def load(conn: sqlite3.Connection) -> ContextRecord | NotModified | None:
            if known is not None:
                row = _one(
                    conn,
                    "SELECT revision, last_modified FROM contexts WHERE context_id = ?",
                    (context_id,),
                )
                if row is not None and (row[0], row[1]) == known:
                    return NotModified()
            return _select_context(conn, context_id)

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
        sql = (
            "SELECT seq, message_id, role, body, body_blob, search_text, created_at "
            "FROM messages WHERE context_id = ? AND branch = ? AND seq < ? AND seq > ? "
            "ORDER BY seq DESC LIMIT ?"
        )
        params = (
            context_id,
            branch,
            2**62 if before_seq is None else before_seq,
            after_seq,
            -1 if limit is None else limit,
        )

        def load(conn: sqlite3.Connection) -> list[MessageRecord]:
            rows = conn.execute(sql, params).fetchall()
            return [_message(row) for row in reversed(rows)]

        return await self._read(load)

    async def load_events(
        self, context_id: str, *, since_revision: int, limit: int | None, branch: str | None = None
    ) -> list[EventRecord]:
        def load(conn: sqlite3.Connection) -> list[EventRecord]:
            rows = conn.execute(
                "SELECT revision, op, changes, user_id, created_at, branch, provider FROM events "
                "WHERE context_id = ?1 AND revision > ?2 AND (?4 IS NULL OR branch = ?4) "
                "ORDER BY revision LIMIT ?3",
                (context_id, since_revision, -1 if limit is None else limit, branch),
            ).fetchall()
            return [
                EventRecord(context_id, row[0], row[1], orjson.loads(row[2]), *row[3:])
                for row in rows
            ]

        return await self._read(load)

    async def query_contexts(self, query: RecordQuery) -> list[ContextRecord]:
        sql, params = _query_sql(query)

        def load(conn: sqlite3.Connection) -> list[ContextRecord]:
            return [_record(row) for row in conn.execute(sql, params).fetchall()]

        return await self._read(load)

    async def search(self, text: str, *, reader: str | None, limit: int) -> list[SearchRecord]:
        match = _fts_query(text)
        if match is None:
            return []
        words = search_words(text)
        access = "" if reader is None else f"AND {_reader_clause('c')}"
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
            contexts, messages = _one(
                conn, "SELECT count(*), coalesce(sum(message_count), 0) FROM contexts"
            )
            events = _one(conn, "SELECT count(*) FROM events")[0]
            page_size = _one(conn, "PRAGMA page_size")[0]
            pages = _one(conn, "PRAGMA page_count")[0]
            journal = _one(conn, "PRAGMA journal_mode")[0]
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
        column = "last_modified" if state == "deleted" else "last_accessed"
        sql = (
            f"SELECT context_id FROM contexts WHERE state = ? AND {column} < ? "
            f"ORDER BY {column} LIMIT ?"
        )
        rows = await self._read(lambda conn: conn.execute(sql, (state, before, limit)).fetchall())
        return [row[0] for row in rows]

    async def trim_events(self, before: int, *, dry_run: bool) -> int:
        where = (
            "WHERE created_at < ? AND revision < "
            "(SELECT c.revision FROM contexts c WHERE c.context_id = events.context_id)"
        )
        if dry_run:
            row = await self._read(
                lambda conn: _one(conn, f"SELECT count(*) FROM events {where}", (before,))
            )
            return int(row[0])
        return await self._write(
            lambda conn: conn.execute(f"DELETE FROM events {where}", (before,)).rowcount
        )

    # -- codec dictionaries --------------------------------------------------------------

    async def load_dictionaries(self) -> list[tuple[int, str, bytes]]:
        rows = await self._read(
            lambda conn: conn.execute(
                "SELECT dictionary_id, context_type, data FROM codec_dictionaries "
                "ORDER BY dictionary_id"
            ).fetchall()
        )
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
        rows = await self._read(
            lambda conn: conn.execute(
                "SELECT seq, message_id, role, body, body_blob, search_text, created_at "
                "FROM messages ORDER BY random() LIMIT ?",
                (limit,),
            ).fetchall()
        )
        return [_message(row) for row in rows]

    # -- versions and branches -----------------------------------------------------------

    async def load_branch(self, context_id: str, name: str) -> BranchRecord | None:
        return await self._read(lambda conn: _select_branch(conn, context_id, name))

    async def list_branches(self, context_id: str) -> list[BranchRecord]:
        rows = await self._read(
            lambda conn: conn.execute(
                f"SELECT {_BRANCH_COLUMNS} FROM branches WHERE context_id = ? ORDER BY name",
                (context_id,),
            ).fetchall()
        )
        return [_branch(row) for row in rows]

    async def load_versions(
        self, context_id: str, version_ids: Sequence[str]
    ) -> list[VersionRecord]:
        def load(conn: sqlite3.Connection) -> list[VersionRecord]:
            rows = conn.execute(
                f"SELECT {_VERSION_COLUMNS} FROM versions WHERE context_id = ? AND version_id "
                f"IN (SELECT value FROM json_each(?))",
                (context_id, _dumps(list(version_ids))),
            ).fetchall()
            return [_version(row) for row in rows]

        return await self._read(load)

    async def load_version_chain(self, context_id: str, version_id: str) -> list[VersionRecord]:
        def load(conn: sqlite3.Connection) -> list[VersionRecord]:
            rows = conn.execute(_CHAIN_SQL, (context_id, version_id)).fetchall()
            return [_version(row) for row in reversed(rows)]

        return await self._read(load)

    async def list_versions(
        self,
        context_id: str,
        *,
        branch: str | None = None,
        tag: str | None = None,
        before_number: int | None = None,
        limit: int | None = None,
    ) -> list[VersionRecord]:
        sql = f"SELECT {_VERSION_METADATA} FROM versions WHERE context_id = ? AND number < ?"
        params: list[Any] = [context_id, 2**62 if before_number is None else before_number]
        if branch is not None:
            sql += " AND branch = ?"
            params.append(branch)
        if tag is not None:
            sql += " AND tags != '[]' AND EXISTS (SELECT 1 FROM json_each(tags) WHERE value = ?)"
            params.append(tag)
        sql += " ORDER BY number DESC LIMIT ?"
        params.append(-1 if limit is None else limit)
        rows = await self._read(lambda conn: conn.execute(sql, params).fetchall())
        return [_version(row) for row in rows]

    async def rewrite_versions(
        self, context_id: str, *, delete: Sequence[str], replace: Sequence[VersionRecord]
    ) -> bool:
        # Under the write lock, so no version is made meanwhile; the plan was made from
        # reads before it, so each of its assumptions is checked again here.
        def rewrite(conn: sqlite3.Connection) -> bool:
            gone = _dumps(list(delete))
            if _one(conn, _HEADS_AMONG_SQL, (context_id, gone)) is not None:
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
            if rebased != len(replace) or _one(conn, _ORPHANS_SQL, (context_id, gone)):
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
            record = _select_context(conn, context_id)
            if record is None:
                return None
            key = (context_id,)
            branches = conn.execute(
                f"SELECT {_BRANCH_COLUMNS} FROM branches WHERE context_id = ? ORDER BY name", key
            ).fetchall()
            messages = conn.execute(
                "SELECT seq, message_id, role, body, body_blob, search_text, created_at, branch "
                "FROM messages WHERE context_id = ? ORDER BY branch, seq",
                key,
            ).fetchall()
            versions = conn.execute(
                f"SELECT {_VERSION_COLUMNS} FROM versions WHERE context_id = ? ORDER BY number",
                key,
            ).fetchall()
            events = conn.execute(
                "SELECT revision, op, changes, user_id, created_at, branch, provider FROM events "
                "WHERE context_id = ? ORDER BY revision",
                key,
            ).fetchall()
            return ContextRows(
                record=dataclasses.replace(record, read_at=0),
                branches=[_branch(row) for row in branches],
                messages=[(row[7], _message(row)) for row in messages],
                versions=[_version(row) for row in versions],
                events=[
                    EventRecord(context_id, row[0], row[1], orjson.loads(row[2]), *row[3:])
                    for row in events
                ],
            )

        return await self._read(load)

    async def insert_rows(self, rows: ContextRows) -> None:
        context_id = rows.record.context_id

        def insert(conn: sqlite3.Connection) -> None:
            _insert_context_row(conn, rows.record)
            ordered = sorted(rows.messages, key=lambda pair: (pair[0], pair[1].seq))
            for segment, group in itertools.groupby(ordered, key=lambda pair: pair[0]):
                _insert_messages(conn, context_id, segment, [message for _, message in group])
            try:
                for event in rows.events:
                    _insert_event(conn, event)
                _insert_versions(conn, rows.versions)
            except sqlite3.IntegrityError as exc:  # a version id another context has, say
                raise ValidationFailed(
                    "a row of this context is stored already", [Issue("/context_id", str(exc))]
                ) from exc
            for branch in rows.branches:
                _save_branch(conn, branch)
            found = _one(conn, _ROW_COUNTS_SQL, (context_id,))
            check_written(rows, found)

        await self._write(insert)


_ROW_COUNTS_SQL = (
    "SELECT (SELECT count(*) FROM messages WHERE context_id = ?1), "
    "(SELECT count(*) FROM events WHERE context_id = ?1), "
    "(SELECT count(*) FROM versions WHERE context_id = ?1), "
    "(SELECT count(*) FROM branches WHERE context_id = ?1)"
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

# From a version back to the snapshot it rests on: its ancestors while they are patches.
_CHAIN_SQL = f"""
WITH RECURSIVE chain(version_id, parent_id, kind, depth) AS (
    SELECT version_id, parent_id, kind, 0 FROM versions WHERE context_id = ?1 AND version_id = ?2
    UNION ALL
    SELECT v.version_id, v.parent_id, v.kind, chain.depth + 1
    FROM versions v JOIN chain ON v.version_id = chain.parent_id
    WHERE chain.kind = 'delta'
)
SELECT {", ".join("v." + c for c in _VERSION_COLUMNS.split(", "))}
FROM chain JOIN versions v ON v.version_id = chain.version_id ORDER BY chain.depth
"""


def _row(record: ContextRecord) -> tuple[Any, ...]:
    return (
        record.context_id,
        record.context_type,
        record.title,
        record.description,
        _dumps(record.data),
        _dumps(record.metadata),
        _dumps(record.extra),
        record.state,
        record.owner_id,
        _dumps(record.collaborators),
        _dumps(record.permissions),
        record.revision,
        record.message_count,
        record.turn_count,
        record.doc_bytes,
        record.messages_bytes,
        record.created_at,
        record.last_modified,
        record.last_accessed,
        record.checksum,
        _dumps(record.versioning.to_json()),
        record.version_number,
        _dumps(record.coordination.to_json()),
    )


def _apply_plan(conn: sqlite3.Connection, context_id: str, plan: Plan) -> ContextRecord:
    current = _select_context(conn, context_id)
    if current is None:
        raise ContextNotFound(context_id)
    mutation = plan(current)
    if mutation is None:
        return current
    _write_mutation(conn, current, mutation)
    return mutation.record


def _write_mutation(conn: sqlite3.Connection, current: ContextRecord, mutation: Mutation) -> None:
    new = mutation.record
    state = (
        _dumps(new.versioning.to_json()),
        new.version_number,
        _dumps(new.coordination.to_json()),
    )
    if mutation.document_changed:
        conn.execute(
            "UPDATE contexts SET title = ?, description = ?, data = ?, metadata = ?, "
            "extra = ?, state = ?, owner_id = ?, collaborators = ?, permissions = ?, "
            "revision = ?, message_count = ?, turn_count = ?, doc_bytes = ?, "
            "messages_bytes = ?, last_modified = ?, last_accessed = ?, checksum = ?, "
            "versioning = ?, version_number = ?, coordination = ? "
            "WHERE context_id = ? AND revision = ?",
            (*_row(new)[2:16], *_row(new)[17:], new.context_id, current.revision),
        )
    else:
        conn.execute(
            "UPDATE contexts SET revision = ?, message_count = ?, turn_count = ?, "
            "messages_bytes = ?, last_modified = ?, versioning = ?, version_number = ?, "
            "coordination = ? WHERE context_id = ? AND revision = ?",
            (
                new.revision,
                new.message_count,
                new.turn_count,
                new.messages_bytes,
                new.last_modified,
                *state,
                new.context_id,
                current.revision,
            ),
        )
    _insert_messages(conn, new.context_id, mutation.segment, mutation.messages)
    _insert_event(conn, mutation.event)
    if mutation.branch is not None:
        _save_branch(conn, mutation.branch)
    if mutation.version is not None:
        _insert_versions(conn, [mutation.version])


def _save_branch(conn: sqlite3.Connection, branch: BranchRecord) -> None:
    conn.execute(
        f"INSERT OR REPLACE INTO branches ({_BRANCH_COLUMNS}) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            branch.context_id,
            branch.name,
            _dumps(branch.document),
            branch.message_count,
            branch.turn_count,
            branch.messages_bytes,
            _dumps(branch.versioning.to_json()),
            branch.base_version,
            branch.created_by,
            branch.created_at,
            branch.last_modified,
        ),
    )


def _version_row(version: VersionRecord) -> tuple[Any, ...]:
    return (
        version.version_id,
        version.context_id,
        version.number,
        version.branch,
        version.parent_id,
        version.kind,
        version.payload,
        version.size_bytes,
        version.message_seq,
        _dumps([list(piece) for piece in version.view]),
        version.turn_count,
        version.revision,
        version.author,
        version.message,
        _dumps(list(version.tags)),
        version.created_at,
        version.checksum,
        version.merge_parent_id,
        version.automatic,
    )


def _insert_context_row(conn: sqlite3.Connection, record: ContextRecord) -> None:
    try:
        conn.execute(
            f"INSERT INTO contexts ({_CONTEXT_COLUMNS}) VALUES "
            "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            _row(record),
        )
    except sqlite3.IntegrityError as exc:
        raise ValidationFailed(
            "a context with this id exists", [Issue("/context_id", record.context_id)]
        ) from exc


def _insert_versions(conn: sqlite3.Connection, versions: Sequence[VersionRecord]) -> None:
    conn.executemany(
        f"INSERT INTO versions ({_VERSION_COLUMNS}) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [_version_row(version) for version in versions],
    )


def _select_branch(conn: sqlite3.Connection, context_id: str, name: str) -> BranchRecord | None:
    row = _one(
        conn,
        f"SELECT {_BRANCH_COLUMNS} FROM branches WHERE context_id = ? AND name = ?",
        (context_id, name),
    )
    return None if row is None else _branch(row)


def _message(row: Sequence[Any]) -> MessageRecord:
    return MessageRecord(row[0], row[1], row[2], row[3].encode(), row[4], row[5], row[6])


def _select_context(conn: sqlite3.Connection, context_id: str) -> ContextRecord | None:
    """The row, stamped with the time it was read (this machine is the database's)."""
    row = _one(conn, f"SELECT {_CONTEXT_COLUMNS} FROM contexts WHERE context_id = ?", (context_id,))
    if row is None:
        return None
    return dataclasses.replace(_record(row), read_at=time.time_ns() // 1000)


def _insert_messages(
    conn: sqlite3.Connection, context_id: str, segment: str, messages: Sequence[MessageRecord]
) -> None:
    rows = [
        (
            context_id,
            segment,
            m.seq,
            m.message_id,
            m.role,
            m.body.decode(),
            m.blob,
            m.search_text,
            m.created_at,
        )
        for m in messages
    ]
    if not rows:
        return
    try:
        conn.executemany(
            "INSERT INTO messages (context_id, branch, seq, message_id, role, body, "
            "body_blob, search_text, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            rows,
        )
    except sqlite3.IntegrityError as exc:
        raise ValidationFailed(
            "a message id is already used in this context", [Issue("/messages", str(exc))]
        ) from exc
    conn.execute(
        "INSERT INTO messages_fts (rowid, search_text) SELECT id, search_text FROM messages "
        "WHERE context_id = ? AND branch = ? AND seq BETWEEN ? AND ?",
        (context_id, segment, rows[0][2], rows[-1][2]),
    )


def _insert_event(conn: sqlite3.Connection, event: EventRecord) -> None:
    conn.execute(
        "INSERT INTO events (context_id, revision, op, changes, user_id, created_at, branch, "
        "provider) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (
            event.context_id,
            event.revision,
            event.op,
            _dumps(event.changes),
            event.user_id,
            event.created_at,
            event.branch,
            event.provider,
        ),
    )


def _json_kind(json_type: str) -> str:
    """A JSON value's kind, integers and reals being one kind: numbers (as in PostgreSQL)."""
    return f"(CASE WHEN {json_type} IN ('integer', 'real') THEN 'number' ELSE {json_type} END)"


def _query_sql(query: RecordQuery) -> tuple[str, dict[str, Any]]:
    if query.order_by not in _ORDER_COLUMNS:
        raise ValidationFailed("unknown order", [Issue("/order_by", query.order_by)])
    where: list[str] = []
    params: dict[str, Any] = {"reader": query.reader, "limit": query.limit, "offset": query.offset}

    def add(condition: str, **values: Any) -> None:
        where.append(condition)
        params.update(values)

    states = ", ".join(f":state{i}" for i in range(len(query.states)))
    add(f"c.state IN ({states})", **{f"state{i}": s for i, s in enumerate(query.states)})
    if query.reader is not None:
        add(_reader_clause("c"))
    if query.context_type is not None:
        add("c.context_type = :context_type", context_type=query.context_type)
    if query.owner_id is not None:
        add("c.owner_id = :owner_id", owner_id=query.owner_id)
    if query.collaborator is not None:
        add(
            "EXISTS (SELECT 1 FROM json_each(c.collaborators) WHERE value = :collaborator)",
            collaborator=query.collaborator,
        )
    if query.title_contains is not None:
        escaped = re.sub(r"([\\%_])", r"\\\1", query.title_contains)
        add("c.title LIKE :title ESCAPE '\\'", title=f"%{escaped}%")
    for index, (path, value) in enumerate(query.metadata_match):
        json_path = "$" + "".join(f'."{key}"' for key in path)
        stored = _json_kind(f"json_type(c.metadata, :path{index})")
        wanted = _json_kind(f"json_type(:value{index}, '$')")
        add(
            f"{stored} = {wanted} AND "
            f"json_extract(c.metadata, :path{index}) IS json_extract(:value{index}, '$')",
            **{f"path{index}": json_path, f"value{index}": _dumps(value)},
        )
    for column, bound, op in (
        ("created_at", query.created_after, ">="),
        ("created_at", query.created_before, "<"),
        ("last_modified", query.modified_after, ">="),
        ("last_modified", query.modified_before, "<"),
    ):
        if bound is not None:
            name = f"{column}_{'from' if op == '>=' else 'to'}"
            add(f"c.{column} {op} :{name}", **{name: bound})
    direction = "DESC" if query.descending else "ASC"
    if query.after is not None:
        compare = "<" if query.descending else ">"
        add(
            f"(c.{query.order_by} {compare} :after_value OR "
            f"(c.{query.order_by} = :after_value AND c.context_id {compare} :after_id))",
            after_value=query.after[0],
            after_id=query.after[1],
        )
    sql = (
        f"SELECT {', '.join('c.' + col.strip() for col in _CONTEXT_COLUMNS.split(','))} "
        f"FROM contexts c WHERE {' AND '.join(where)} "
        f"ORDER BY c.{query.order_by} {direction}, c.context_id {direction} "
        "LIMIT :limit OFFSET :offset"
    )
    return sql, params


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
    exists = _one(conn, "SELECT 1 FROM sqlite_master WHERE name = 'schema_version'")
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
