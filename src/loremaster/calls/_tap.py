"""Watching a provider's stream go by without slowing it: each item is kept in a list (and
the first one's time noted); what was kept is read once, when the stream ends."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

__all__ = ["StreamEnd", "StreamTap"]

T = TypeVar("T")

StreamEnd = Callable[["StreamTap", BaseException | None, bool], Awaitable[None]]
"""Called once when a stream ends: the tap (its items), the error that ended it, and
whether it ended early (abandoned or broken)."""


class StreamTap:
    """The items of one stream as they went by, and when the first came."""

    def __init__(self, on_end: StreamEnd, hidden: Callable[[Any], bool] | None = None) -> None:
        self.items: list[Any] = []
        self.first_at: float | None = None
        self._on_end = on_end
        self._hidden = hidden
        self._ended = False

    async def watch(self, source: AsyncIterator[T]) -> AsyncIterator[T]:
        """`source`'s items, passed on as they come (but those `hidden`)."""
        keep, hidden = self.items.append, self._hidden
        try:
            async for item in source:
                if self.first_at is None:
                    self.first_at = time.perf_counter()
                keep(item)
                if hidden is None or not hidden(item):
                    yield item
        except BaseException as exc:
            # Closed by its reader (GeneratorExit) is abandoned; anything else broke it.
            await self.end(None if isinstance(exc, GeneratorExit) else exc, partial=True)
            raise
        await self.end(None, partial=False)

    async def end(self, error: BaseException | None, *, partial: bool) -> None:
        """Report the end, once: the first of the stream's own end, its reader closing it
        or the stream object being closed."""
        if self._ended:
            return
        self._ended = True
        await self._on_end(self, error, partial)
