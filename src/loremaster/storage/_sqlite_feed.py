"""SQLite's commit feed, watched: what other processes on the same file commit, as it lands.

Migration 0012 keeps ``event_feed``: a trigger adds (sequence number, context, revision) for
every event row inserted, whoever inserts it, and the sequence grows in commit order. A
thread of its own holds a connection and asks ``PRAGMA data_version`` every `interval`
seconds — a look at the WAL index in shared memory, no read transaction, about 3 µs — and
reads the feed only when the answer changed: another connection committed.
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
import threading
from collections.abc import Awaitable, Callable, Sequence

__all__ = ["FeedEntry", "SQLiteFeed", "feed_position"]

log = logging.getLogger("loremaster.storage")

FeedEntry = tuple[int, str, int]
"""(sequence number, context id, revision) of one committed event, in commit order."""

Deliver = Callable[[Sequence[FeedEntry], bool], None]
"""Called from the feed's thread with entries after the position, in order, and whether
entries before them were trimmed from the feed before they could be read."""

_BATCH = 1000
_POSITION_SQL = "SELECT max(seq) FROM event_feed"
_ENTRIES_SQL = "SELECT seq, context_id, revision FROM event_feed WHERE seq > ? ORDER BY seq LIMIT ?"


def feed_position(conn: sqlite3.Connection) -> int | None:
    """The sequence number of the latest commit (0: none yet); None when the schema has no
    feed (a database migrated before 0012, opened to read)."""
    try:
        row = conn.execute(_POSITION_SQL).fetchone()
    except sqlite3.OperationalError as exc:
        if "no such table" in str(exc):
            return None
        raise
    return int(row[0] or 0)


class SQLiteFeed:
    """Watches one SQLite file's commit feed from a thread of its own, only while asked
    to `follow` it (paused, the thread waits and costs nothing)."""

    def __init__(
        self, uri: str, interval: float, position: Callable[[], Awaitable[int | None]]
    ) -> None:
        self._uri = uri
        self._position = position
        self._interval = interval
        self._lock = threading.Condition()
        self._after: int | None = None
        """The last sequence number read; None while paused."""
        self._deliver: Deliver | None = None
        self._turn = 0
        """Counts follows and pauses: what a poll read for an earlier turn is dropped."""
        self._closed = False
        self._thread: threading.Thread | None = None

    async def position(self) -> int | None:
        """The sequence number of the latest commit (see `feed_position`)."""
        return await self._position()

    def follow(self, after: int, deliver: Deliver) -> None:
        """Deliver the entries after sequence number `after`, now and as they come."""
        with self._lock:
            if self._closed:
                return
            self._after, self._deliver = after, deliver
            self._turn += 1
            self._lock.notify()
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="loremaster-sqlite-feed", daemon=True
                )
                self._thread.start()

    def pause(self) -> None:
        """Stop reading; a delivery already on its way may still arrive."""
        with self._lock:
            self._after, self._deliver = None, None
            self._turn += 1

    def close(self) -> None:
        """Stop the thread (it finishes the poll it is in, a few microseconds)."""
        with self._lock:
            self._closed = True
            self._lock.notify()
            thread = self._thread
        if thread is not None:
            thread.join()

    def _run(self) -> None:
        conn: sqlite3.Connection | None = None
        seen: int | None = None
        try:
            while True:
                with self._lock:
                    while self._after is None and not self._closed:
                        self._lock.wait()
                        seen = None  # resumed: read once whatever data_version says
                    if self._closed:
                        return
                    after, deliver, turn = self._after, self._deliver, self._turn
                assert after is not None
                assert deliver is not None
                try:
                    if conn is None:
                        conn = sqlite3.connect(
                            self._uri, uri=True, isolation_level=None, check_same_thread=False
                        )
                    version = conn.execute("PRAGMA data_version").fetchone()[0]
                    if version != seen:
                        seen = version
                        self._read(conn, after, deliver, turn)
                except sqlite3.Error as exc:
                    log.warning("the commit feed of %s cannot be read: %s", self._uri, exc)
                    if conn is not None:
                        conn.close()
                    conn, seen = None, None
                with self._lock:
                    if not self._closed and turn == self._turn:
                        self._lock.wait(self._interval)
        finally:
            if conn is not None:
                conn.close()

    def _read(self, conn: sqlite3.Connection, after: int, deliver: Deliver, turn: int) -> None:
        while True:
            entries: list[FeedEntry] = conn.execute(_ENTRIES_SQL, (after, _BATCH)).fetchall()
            if not entries:
                return
            skipped = entries[0][0] > after + 1
            with self._lock:
                if turn != self._turn:
                    return
                self._after = entries[-1][0]
            with contextlib.suppress(RuntimeError):  # the event loop is gone: so is the bus
                deliver(entries, skipped)
            after = entries[-1][0]
            if len(entries) < _BATCH:
                return
