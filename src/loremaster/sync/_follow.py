"""Following a context: each revision exactly once, in order, from a bus and the events
table together.

The rule (DESIGN.md, Synchronization): subscribe first, then replay the backlog from the
table; track the last revision; on a gap, a jump or a reconnect, refill from the table;
when the table no longer reaches back to the position, take a snapshot.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable
from datetime import datetime
from types import TracebackType
from typing import Any

from ..bus import EventBus, LoadEvents, Subscription
from ..errors import DataCorrupted
from ..models import ContextEvent, utc_now

__all__ = ["SNAPSHOT_OP", "EventStream", "LoadEvents", "LoadSnapshot", "follow", "snapshot_event"]

LoadSnapshot = Callable[[str], Awaitable[ContextEvent]]
"""``(context_id)``: the context as it is now, as a `snapshot_event`."""

SNAPSHOT_OP = "snapshot"


def snapshot_event(
    context_id: str, revision: int, document: Any, created_at: datetime | None = None
) -> ContextEvent:
    """The whole document at `revision` as one event: op ``snapshot``, whose changes are
    the JSON Patch ``[{"op": "replace", "path": "", "value": document}]``, so a follower
    applies it like any other event."""
    return ContextEvent(
        context_id=context_id,
        revision=revision,
        op=SNAPSHOT_OP,
        changes=[{"op": "replace", "path": "", "value": document}],
        user_id=None,
        created_at=created_at or utc_now(),
    )


def follow(
    bus: EventBus,
    context_id: str,
    *,
    load_events: LoadEvents,
    load_snapshot: LoadSnapshot,
    after_revision: int = 0,
    batch_size: int = 500,
    refill_interval: float | None = 30.0,
) -> EventStream:
    """Every change of `context_id` after `after_revision`: what the table holds first,
    then what is published, each revision once and in order.

    Where the table was trimmed past the position, the stream yields one snapshot event
    (op ``snapshot``) for what it cannot replay, and continues from its revision. With no
    message for `refill_interval` seconds it reads the table anyway, which also picks up
    events whose publication was lost, and writers in processes the bus does not reach.
    """
    return EventStream(
        bus,
        context_id,
        load_events=load_events,
        load_snapshot=load_snapshot,
        after_revision=after_revision,
        batch_size=batch_size,
        refill_interval=refill_interval,
    )


class EventStream:
    """An async iterator of `ContextEvent`; close it, or use it in ``async with``.

    ``revision`` is the last revision yielded (at first, the starting point). Waiting on
    it can be cancelled (``asyncio.timeout``, ``wait_for``) without losing anything; an
    error of a loader propagates, and the next ``anext`` tries again from where it was.
    """

    def __init__(
        self,
        bus: EventBus,
        context_id: str,
        *,
        load_events: LoadEvents,
        load_snapshot: LoadSnapshot,
        after_revision: int,
        batch_size: int,
        refill_interval: float | None,
    ) -> None:
        self.context_id = context_id
        self.revision = after_revision
        self._bus = bus
        self._load_events = load_events
        self._load_snapshot = load_snapshot
        self._batch_size = batch_size
        self._refill_interval = refill_interval
        self._subscription: Subscription | None = None
        self._ready: deque[ContextEvent] = deque()
        self._position = after_revision
        """The last revision taken into `_ready`."""
        self._refill = True
        self._closed = False

    def __aiter__(self) -> EventStream:
        return self

    async def __anext__(self) -> ContextEvent:
        while not self._ready:
            if self._closed:
                raise StopAsyncIteration
            await self._step()
        event = self._ready.popleft()
        self.revision = event.revision
        return event

    async def close(self) -> None:
        self._closed = True
        self._ready.clear()
        if self._subscription is not None:
            await self._subscription.close()

    async def __aenter__(self) -> EventStream:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

    async def _step(self) -> None:
        """One wait, then a change of state: cancelled at the wait, nothing changed."""
        if self._subscription is None:
            self._subscription = await self._bus.subscribe(self.context_id)
        elif self._refill:
            await self._refill_once()
        else:
            try:
                async with asyncio.timeout(self._refill_interval):
                    item = await anext(self._subscription)
            except TimeoutError:
                self._refill = True
            except StopAsyncIteration:
                await self.close()
            else:
                if isinstance(item, ContextEvent) and item.revision <= self._position + 1:
                    if item.revision == self._position + 1:
                        self._take(item)
                else:
                    self._refill = True

    async def _refill_once(self) -> None:
        batch = await self._load_events(self.context_id, self._position, self._batch_size)
        for event in batch:
            if event.revision != self._position + 1:
                snapshot = await self._load_snapshot(self.context_id)
                if snapshot.revision <= self._position:
                    raise DataCorrupted(
                        f"the events of context {self.context_id} skip past revision "
                        f"{self._position}, and its snapshot is at revision "
                        f"{snapshot.revision}"
                    )
                self._take(snapshot)
                return
            self._take(event)
        if len(batch) < self._batch_size:
            self._refill = False

    def _take(self, event: ContextEvent) -> None:
        self._position = event.revision
        self._ready.append(event)
