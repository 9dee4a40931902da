"""The embedded bus: this process's commits as `MemoryBus` delivers them, and the commits
of other processes on the same database as its commit feed shows them.

Without Redis nothing carries an event from one process to another, but the database
does: SQLite keeps a feed of every commit in commit order (storage's `SQLiteFeed`). While
anyone in this process subscribes, the feed is watched; each entry of a context somebody
follows has its event read from the events table and delivered, so the MCP bridge, the
CLI's ``watch`` and a server sharing one file hear each other live.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence
from typing import Protocol, TypeVar

from ..errors import LoremasterError, UsageError
from ..models import ContextEvent
from ._fanout import ALL, Fanout
from ._subscription import Gap, GapReason, Mailbox, Subscription

__all__ = ["CommitFeed", "LoadEvents", "WatchedBus"]

log = logging.getLogger("loremaster.bus")

T = TypeVar("T")

FeedEntry = tuple[int, str, int]
"""(sequence number, context id, revision) of one committed event, in commit order."""
Deliver = Callable[[Sequence[FeedEntry], bool], None]
LoadEvents = Callable[[str, int, int], Awaitable[Sequence[ContextEvent]]]
"""``(context_id, after_revision, limit)``: at most `limit` events with a revision above
`after_revision`, in revision order (the events table)."""

_REMEMBERED = 10_000
"""Contexts whose progress through the feed is remembered (least recently seen go)."""


class CommitFeed(Protocol):
    """Every commit to the database, in commit order, from any process."""

    async def position(self) -> int | None:
        """The sequence number of the latest commit; None if the database keeps no feed."""

    def follow(self, after: int, deliver: Deliver) -> None:
        """Call ``deliver(entries, skipped)``, from any thread, with the entries after
        `after` and then with each new commit; ``skipped``: entries before these were
        lost to this reader."""

    def pause(self) -> None: ...

    def close(self) -> None: ...


class _Marks:
    """Per context: the last revision the feed has reached, and the revisions this
    process announced itself ahead of it. Each revision is announced by whoever comes
    first — the process's own writer, or the feed — and only once."""

    def __init__(self) -> None:
        self._reached: OrderedDict[str, int] = OrderedDict()
        self._ahead: OrderedDict[str, set[int]] = OrderedDict()

    def claim(self, context_id: str, revision: int) -> bool:
        """This process announces `revision`: False if the feed has already done so."""
        if revision <= self._reached.get(context_id, 0):
            return False
        self._ahead.setdefault(context_id, set()).add(revision)
        _keep_latest(self._ahead, context_id)
        return True

    def reach(self, context_id: str, revisions: Sequence[int]) -> list[int]:
        """The feed reached `revisions` (ascending): those nobody has announced."""
        reached = self._reached.get(context_id, 0)
        ahead = self._ahead.pop(context_id, set())
        fresh = [r for r in revisions if r > reached and r not in ahead]
        top = max(reached, revisions[-1])
        self._reached[context_id] = top
        _keep_latest(self._reached, context_id)
        later = {r for r in ahead if r > top}
        if later:
            self._ahead[context_id] = later
        return fresh

    def clear(self) -> None:
        self._reached.clear()
        self._ahead.clear()


def _keep_latest(entries: OrderedDict[str, T], key: str) -> None:
    entries.move_to_end(key)
    while len(entries) > _REMEMBERED:
        entries.popitem(last=False)


class WatchedBus:
    """`MemoryBus` plus the commits of other processes, read from a `CommitFeed`.

    The feed is watched only while someone in this process subscribes. A commit of another
    process reaches subscribers within the feed's poll interval; this process's own
    commits are delivered at once, as by `MemoryBus`, and never a second time from the
    feed; one committed quietly (`publish_quiet`) is not announced from the feed either.
    Should the feed lose entries before they are read, every subscription gets a `Gap`.
    """

    def __init__(
        self, feed: CommitFeed, load_events: LoadEvents, *, max_pending: int = 1000
    ) -> None:
        self._fanout = Fanout(max_pending)
        self._feed = feed
        self._load_events = load_events
        self._marks = _Marks()
        self._following = False
        self._turn = 0
        """Counts starts and stops of following: deliveries of an earlier turn are dropped."""
        self._starting = asyncio.Lock()
        self._batches: asyncio.Queue[tuple[int, Sequence[FeedEntry], bool]] = asyncio.Queue()
        self._reader: asyncio.Task[None] | None = None

    @property
    def following(self) -> bool:
        """Whether the feed is being watched (someone subscribes, and the database has one)."""
        return self._following

    async def publish(self, event: ContextEvent) -> None:
        self._check_open()
        if self._following and not self._marks.claim(event.context_id, event.revision):
            return
        self._deliver(event)

    async def publish_quiet(self, context_id: str, revision: int | None) -> None:
        """Keep the feed from announcing a change committed without its event announced."""
        self._check_open()
        if self._following and revision is not None:
            self._marks.claim(context_id, revision)

    async def subscribe(self, context_id: str) -> Subscription:
        subscription, _ = self._fanout.add(context_id, self._forget)
        async with self._starting:
            if not self._following and not self._fanout.closed:
                await self._start()
        return subscription

    async def close(self) -> None:
        if self._fanout.closed:
            return
        self._fanout.close()
        self._stop()
        await asyncio.to_thread(self._feed.close)
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader

    def _check_open(self) -> None:
        if self._fanout.closed:
            raise UsageError("the event bus is closed")

    def _deliver(self, item: ContextEvent | Gap) -> None:
        self._fanout.deliver(item.context_id, item)
        self._fanout.deliver(ALL, item)

    async def _start(self) -> None:
        """Follow the feed from the latest commit: what commits after `subscribe` returns
        is delivered. Own commits announced meanwhile are claimed first (marks cleared)."""
        self._marks.clear()
        self._following = True
        try:
            position = await self._feed.position()
        except LoremasterError as exc:
            log.warning("not following other processes' commits: %s", exc)
            position = None
        if position is None or not self._fanout.mailboxes:
            self._following = False
            return
        self._turn += 1
        turn, loop = self._turn, asyncio.get_running_loop()

        def deliver(entries: Sequence[FeedEntry], skipped: bool) -> None:
            loop.call_soon_threadsafe(self._batches.put_nowait, (turn, entries, skipped))

        self._feed.follow(position, deliver)
        if self._reader is None:
            self._reader = loop.create_task(self._read(), name="loremaster-feed")

    def _stop(self) -> None:
        if self._following:
            self._following = False
            self._turn += 1
            self._feed.pause()

    async def _forget(self, mailbox: Mailbox) -> None:
        self._fanout.remove(mailbox)
        if not self._fanout.mailboxes:
            self._stop()

    async def _read(self) -> None:
        while True:
            turn, entries, skipped = await self._batches.get()
            if turn != self._turn:
                continue
            if skipped:
                self._lost()
            try:
                await self._announce(turn, entries)
            except Exception:  # the feed must go on; followers refill on the gap
                log.exception("announcing other processes' commits failed")
                self._lost()

    def _lost(self) -> None:
        """Entries may have been missed: every subscription reads the table again."""
        self._marks.clear()
        for context_id, mailboxes in list(self._fanout.mailboxes.items()):
            for mailbox in list(mailboxes):
                mailbox.put(Gap(context_id, GapReason.RECONNECT))

    async def _announce(self, turn: int, entries: Sequence[FeedEntry]) -> None:
        by_context: dict[str, list[int]] = {}
        for _, context_id, revision in entries:
            by_context.setdefault(context_id, []).append(revision)
        fresh = {
            context_id: new
            for context_id, revisions in by_context.items()
            if (new := self._marks.reach(context_id, revisions))
        }
        everyone = ALL in self._fanout.mailboxes
        for context_id, revisions in fresh.items():
            if everyone or context_id in self._fanout.mailboxes:
                await self._announce_context(turn, context_id, revisions)

    async def _announce_context(self, turn: int, context_id: str, revisions: list[int]) -> None:
        first, last = revisions[0], revisions[-1]
        try:
            events = await self._load_events(context_id, first - 1, last - first + 1)
        except LoremasterError as exc:
            log.warning("the events of %s could not be read: %s", context_id, exc)
            if turn == self._turn:
                self._deliver(Gap(context_id, GapReason.RECONNECT))
            return
        if turn != self._turn:
            return
        found = {event.revision: event for event in events}
        for revision in revisions:
            event = found.get(revision)
            self._deliver(
                event if event is not None else Gap(context_id, GapReason.NOT_SHIPPED, revision)
            )
