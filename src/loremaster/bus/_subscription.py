"""What a subscriber receives: events, and gaps where some may have been missed; its
bounded queue; the subscription around it."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import StrEnum
from types import TracebackType

from ..models import ContextEvent

__all__ = ["Gap", "GapReason", "Mailbox", "Subscription"]


class GapReason(StrEnum):
    OVERFLOW = "overflow"
    """The subscriber fell behind and its queue was dropped."""
    RECONNECT = "reconnect"
    """The transport was cut off, or the subscription was not yet in place, for a while."""
    NOT_SHIPPED = "not_shipped"
    """An event too large (or unreadable) to ship was committed; `revision` says which."""
    QUIET = "quiet"
    """A change committed without announcing its event (`revision`), or, with no revision,
    a context removed for good: caches drop the row. Only `ALL` subscriptions (the cache
    watchers) receive it."""


@dataclass(frozen=True)
class Gap:
    """Events of the context may have been missed before this point: read them from the
    events table. What is published after the gap is delivered again."""

    context_id: str
    reason: GapReason
    revision: int | None = None


class Mailbox:
    """A queue of at most `capacity` items that never blocks the producer.

    An item that does not fit replaces itself and everything queued with one `Gap` of
    reason OVERFLOW: the subscriber reads what it missed from the events table instead of
    from memory.
    """

    def __init__(self, context_id: str, capacity: int) -> None:
        self.context_id = context_id
        self._capacity = capacity
        self._items: deque[ContextEvent | Gap] = deque()
        self._ready = asyncio.Event()
        self._closed = False

    def put(self, item: ContextEvent | Gap) -> None:
        if self._closed:
            return
        if len(self._items) >= self._capacity:
            self._items.clear()
            item = Gap(self.context_id, GapReason.OVERFLOW)
        self._items.append(item)
        self._ready.set()

    def close(self) -> None:
        self._closed = True
        self._items.clear()
        self._ready.set()

    async def get(self) -> ContextEvent | Gap | None:
        """The next item, waiting for one; None once closed. Safe to cancel."""
        while not self._items:
            if self._closed:
                return None
            self._ready.clear()
            await self._ready.wait()
        return self._items.popleft()


class Subscription:
    """The events of one context as they are published, with a `Gap` wherever some may
    have been missed. Iterate it with ``async for``; close it (or leave its ``async
    with``) when done. Iteration ends when the subscription or its bus is closed."""

    def __init__(self, mailbox: Mailbox, on_close: Callable[[Mailbox], Awaitable[None]]) -> None:
        self._mailbox = mailbox
        self._on_close = on_close
        self._closed = False

    @property
    def context_id(self) -> str:
        return self._mailbox.context_id

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> ContextEvent | Gap:
        item = await self._mailbox.get()
        if item is None:
            raise StopAsyncIteration
        return item

    async def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._mailbox.close()
            await self._on_close(self._mailbox)

    async def __aenter__(self) -> Subscription:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()
