"""Streams and sockets hear of a shutdown when the signal arrives, not after: uvicorn
waits for open connections to end before the application's own shutdown runs, and a
stream would never end by itself."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable
from types import FrameType
from typing import Any

__all__ = ["on_exit_signals"]

_EXIT_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def _chained(
    previous: Callable[[int, FrameType | None], Any],
    loop: asyncio.AbstractEventLoop,
    tell: Callable[[], None],
) -> Callable[[int, FrameType | None], None]:
    def handler(signum: int, frame: FrameType | None) -> None:
        loop.call_soon_threadsafe(tell)
        previous(signum, frame)

    return handler


def on_exit_signals(tell: Callable[[], None]) -> None:
    """Call `tell` (in the running loop) when SIGINT or SIGTERM arrives, before the
    handler the server installed. Nothing happens outside the main thread (an
    application run by a test client)."""
    loop = asyncio.get_running_loop()
    for sig in _EXIT_SIGNALS:
        previous = signal.getsignal(sig)
        if not callable(previous):
            continue
        try:
            signal.signal(sig, _chained(previous, loop, tell))
        except ValueError:
            return
