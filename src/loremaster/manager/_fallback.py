"""Graceful degradation: while the database is unavailable, reads serve what this process
has seen, marked stale, instead of failing (CONTEXT_CACHE_FALLBACK).

Rows come from the row caches (here and the Redis L2); this module keeps what else a read
needs: the messages of the views read lately and the versions rebuilt lately. A read with
an answer at hand waits for the database as long as it takes while the database answers
(a slow answer is still the true one), and at most `_PATIENCE` seconds while storage is
failing to reach it; once it has failed, reads do not try it again for `_RETRY_AFTER`
seconds, so stale answers come quickly.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable
from typing import Any, Generic, TypeVar

from ..errors import BackendUnavailable

__all__ = ["Fallback", "Served"]

T = TypeVar("T")

_PATIENCE = 1.0
"""Seconds a read with a cached answer waits for the database before serving it."""
_RETRY_AFTER = 1.0
"""Seconds after a failure during which reads serve cached answers without trying."""
_MESSAGES_KEPT = 50_000
"""Messages kept for fallback reads, in all (least recently read go first)."""
_VERSIONS_KEPT = 256


class Served(Generic[T]):
    """A read's answer, and whether it came from a cache while the database was down."""

    __slots__ = ("stale", "value")

    def __init__(self, value: T, stale: bool) -> None:
        self.value = value
        self.stale = stale


class _Kept:
    """An LRU of answers, bounded by their total weight."""

    def __init__(self, capacity: int) -> None:
        self._capacity = capacity
        self._weight = 0
        self._entries: OrderedDict[Hashable, tuple[int, Any]] = OrderedDict()

    def get(self, key: Hashable) -> Any | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        self._entries.move_to_end(key)
        return entry[1]

    def put(self, key: Hashable, value: Any, weight: int) -> None:
        if weight > self._capacity:
            return
        previous = self._entries.pop(key, None)
        if previous is not None:
            self._weight -= previous[0]
        self._entries[key] = (weight, value)
        self._weight += weight
        while self._weight > self._capacity:
            _, (dropped, _) = self._entries.popitem(last=False)
            self._weight -= dropped


class _Watch:
    """Every `_PATIENCE` seconds of a read, a look at storage: while it is retrying to
    reach the database, the read's `deadline` is moved to now (it ends in TimeoutError);
    while the database answers, however slowly, the read goes on. A timer, not a task:
    reads that answer in time (nearly all) cost one timer handle."""

    def __init__(self, deadline: asyncio.Timeout, trouble: Callable[[], str | None]) -> None:
        self._deadline = deadline
        self._trouble = trouble
        self._loop = asyncio.get_running_loop()
        self._timer = self._loop.call_later(_PATIENCE, self._look)

    def _look(self) -> None:
        if self._trouble() is None:
            self._timer = self._loop.call_later(_PATIENCE, self._look)
        else:
            self._deadline.reschedule(self._loop.time())

    def stop(self) -> None:
        self._timer.cancel()


class Fallback:
    """What reads fall back on while the database is unavailable."""

    def __init__(self, enabled: bool, trouble: Callable[[], str | None]) -> None:
        """`trouble()`: why storage fails to reach the database now (None: it does not)."""
        self.enabled = enabled
        self._trouble = trouble
        self.stale_serves = 0
        self.reason: str | None = None
        """Why the database was last found unavailable (None: it answers)."""
        self._down_until = 0.0
        self.messages = _Kept(_MESSAGES_KEPT if enabled else 0)
        self.versions = _Kept(_VERSIONS_KEPT if enabled else 0)

    async def read(self, load: Callable[[], Awaitable[T]], cached: T | None) -> Served[T]:
        """`load()`'s answer; or, with a `cached` one at hand while the database is
        unavailable (or does not answer within `_PATIENCE` seconds), that one, stale."""
        down = time.monotonic() < self._down_until
        if self.enabled and down:
            if cached is None:  # nothing to serve, and no point waiting on the database
                raise BackendUnavailable(f"the database is unavailable: {self.reason}")
            return self._stale(cached)
        if not self.enabled or cached is None:
            return Served(await self._noting(load), stale=False)
        deadline = asyncio.timeout(None)
        try:
            async with deadline:
                watch = _Watch(deadline, self._trouble)
                try:
                    return Served(await self._noting(load), stale=False)
                finally:
                    watch.stop()
        except TimeoutError:
            if not deadline.expired():
                raise
            # the watch found storage retrying to reach the database
            self._failed(BackendUnavailable(self._trouble() or "no answer"))
            return self._stale(cached)
        except BackendUnavailable:
            return self._stale(cached)

    async def _noting(self, load: Callable[[], Awaitable[T]]) -> T:
        try:
            value = await load()
        except BackendUnavailable as exc:
            self._failed(exc)
            raise
        self.reason = None
        return value

    def _failed(self, exc: BaseException) -> None:
        self.reason = str(exc) or "the database did not answer in time"
        self._down_until = time.monotonic() + _RETRY_AFTER

    def _stale(self, cached: T) -> Served[T]:
        self.stale_serves += 1
        return Served(cached, stale=True)
