"""The live side of a manager: the event bus it publishes committed changes on, the
followers it hands out, presence, and keeping its row cache coherent with other processes.

With Redis every process hears every committed change (one pattern subscription), so a
cached row is dropped as soon as anyone changes it and reads may be served from memory;
without Redis, every cached read is checked against storage instead (see `RecordCache`),
and subscribers hear other processes on the same SQLite file through its commit feed
(`WatchedBus`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterable, Iterable, Mapping
from typing import Any

from ..bus import (
    ALL,
    CommitFeed,
    EventBus,
    Gap,
    GapReason,
    MemoryBus,
    RedisBus,
    WatchedBus,
    redis_client,
)
from ..config import Settings
from ..errors import BackendUnavailable
from ..models import ContextEvent
from ._cache import RecordCache
from ._follow import EventStream, LoadEvents, LoadSnapshot, follow
from ._presence import MemoryPresence, PresenceTracker
from ._redis_presence import RedisPresence
from ._shared_rows import SharedRows

__all__ = ["Live"]

log = logging.getLogger("loremaster.sync")

_PUBLISH_TIMEOUT = 5.0
"""Seconds at most that a write, already committed, waits for Redis to take its events;
the same bound serves each presence call and each wait for a subscription."""
_CACHE_TIMEOUT = 1.0
"""Seconds at most for one call to the shared row cache: one slower than the database is
no cache, and a write stores its rows there after its commit."""


class Live:
    def __init__(self, settings: Settings, cache: RecordCache) -> None:
        self._settings = settings
        self._cache = cache
        url = settings.redis_url
        self._publish_timeout = min(settings.sync_timeout, _PUBLISH_TIMEOUT)
        self.bus: EventBus = (
            MemoryBus() if url is None else RedisBus(url, timeout=self._publish_timeout)
        )
        self.presence: PresenceTracker = (
            MemoryPresence() if url is None else RedisPresence(url, timeout=self._publish_timeout)
        )
        self.rows: SharedRows | None = None
        if url is not None and settings.cache_l2:
            timeout = min(settings.sync_timeout, _CACHE_TIMEOUT)
            client = redis_client(url, timeout=timeout, client_name="loremaster-rows")
            self.rows = SharedRows(client, ttl_seconds=settings.cache_ttl)
        self._watcher: asyncio.Task[None] | None = None
        self._heard_epoch = -1
        """The bus's epoch once the cache had dropped what a lost connection may hide."""

    def health(self) -> dict[str, Any]:
        if isinstance(self.bus, WatchedBus):
            feed = "following" if self.bus.following else "idle"
            return {"transport": "in-process", "connected": True, "commit_feed": feed}
        if not isinstance(self.bus, RedisBus):
            return {"transport": "in-process", "connected": True}
        return {
            "transport": "redis",
            "connected": self.bus.connected,
            "reconnects": self.bus.epoch,
            "cache_trusted": self.cache_trusted,
        }

    async def start(self, feed: CommitFeed | None, load_events: LoadEvents) -> None:
        """With Redis: start following every context's changes to keep the cache true.
        Without, given the database's commit feed: hear other processes through it."""
        if not self._settings.enable_real_time_sync:
            return
        if isinstance(self.bus, MemoryBus) and feed is not None:
            self.bus = WatchedBus(feed, load_events)  # nothing subscribes before the start
        if isinstance(self.bus, RedisBus):
            subscription = await self.bus.subscribe(ALL)
            if self.bus.connected:
                self._heard_epoch = self.bus.epoch
            self._watcher = asyncio.create_task(self._watch(subscription), name="loremaster-cache")

    @property
    def cache_trusted(self) -> bool:
        """Whether cached rows are known to be current: every change is being heard."""
        return (
            self._watcher is not None
            and not self._watcher.done()
            and isinstance(self.bus, RedisBus)
            and self.bus.connected
            and self.bus.epoch == self._heard_epoch
        )

    async def _watch(self, subscription: AsyncIterable[ContextEvent | Gap]) -> None:
        async for item in subscription:
            if isinstance(item, Gap) and item.reason is GapReason.QUIET:
                self._forget(item.context_id, item.revision)
            elif isinstance(item, Gap):
                self._cache.clear()
                if isinstance(self.bus, RedisBus) and self.bus.connected:
                    self._heard_epoch = self.bus.epoch
            else:
                self._cache.invalidate(item.context_id, item.revision)

    def _forget(self, context_id: str, revision: int | None) -> None:
        if revision is None:
            self._cache.discard(context_id)
        else:
            self._cache.invalidate(context_id, revision)

    async def publish_quiet(self, changed: Mapping[str, int | None]) -> None:
        """Tell other processes' caches of changes not announced (`sync=False`) and of
        contexts gone (revision None); a failure is logged, as for `publish`."""
        if not self._settings.enable_real_time_sync:
            return
        for context_id, revision in changed.items():
            try:
                async with asyncio.timeout(self._publish_timeout):
                    await self.bus.publish_quiet(context_id, revision)
            except (BackendUnavailable, TimeoutError) as exc:
                log.warning("change of %s not announced to caches: %s", context_id, exc)

    async def publish(self, events: Iterable[ContextEvent]) -> None:
        """Announce committed changes, all within `_PUBLISH_TIMEOUT` (or `sync_timeout`, if
        shorter); an event the bus does not take by then is logged, not raised: the change
        is committed and followers find it in the events table."""
        if not self._settings.enable_real_time_sync:
            return
        deadline = asyncio.get_running_loop().time() + self._publish_timeout
        for event in events:
            try:
                async with asyncio.timeout_at(deadline):
                    await self.bus.publish(event)
                continue
            except BackendUnavailable as exc:
                reason = str(exc)
            except TimeoutError:
                reason = f"no answer within {self._publish_timeout:g} s"
            log.warning("event %s@%s not published: %s", event.context_id, event.revision, reason)

    def follow(
        self,
        context_id: str,
        *,
        after_revision: int,
        load_events: LoadEvents,
        load_snapshot: LoadSnapshot,
        refill_interval: float,
    ) -> EventStream:
        return follow(
            self.bus,
            context_id,
            load_events=load_events,
            load_snapshot=load_snapshot,
            after_revision=after_revision,
            refill_interval=refill_interval,
        )

    async def close(self) -> None:
        watcher, self._watcher = self._watcher, None
        if watcher is not None:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher
        await self.bus.close()
        await self.presence.close()
        if self.rows is not None:
            await self.rows.close()
