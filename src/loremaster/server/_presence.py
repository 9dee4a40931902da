"""Presence changes pushed to sockets. The library keeps presence as heartbeats that expire
and announces no change (no event, no revision), so a process polls it: once per
interval per context that any of its sockets follows, however many sockets do, and at
once when a heartbeat, a join or a leave passes through this process."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import weakref
from collections.abc import Callable
from typing import Any

from ..errors import LoremasterError
from ..manager import ContextManager
from ..sync import PresenceEntry
from ._service import Service

__all__ = ["POLL_SECONDS", "PresenceWatch", "member_fields", "presence_watch"]

log = logging.getLogger("loremaster.server")

POLL_SECONDS = 1.0
"""How stale a presence change heard from another process may be."""

Listener = Callable[[str, list[PresenceEntry]], None]


def member_fields(entry: PresenceEntry) -> dict[str, Any]:
    return {
        "user_id": entry.user_id,
        "viewing": entry.viewing,
        "typing": entry.typing,
        "last_seen": entry.last_seen.isoformat().replace("+00:00", "Z"),
        "expires_at": entry.expires_at.isoformat().replace("+00:00", "Z"),
    }


class PresenceWatch:
    """Polls the presence of watched contexts and hands each listener what it finds."""

    def __init__(self, manager: ContextManager, interval: float = POLL_SECONDS) -> None:
        self._manager = manager
        self._interval = interval
        self._listeners: dict[str, set[Listener]] = {}
        self._wake: dict[str, asyncio.Event] = {}
        self._pollers: dict[str, asyncio.Task[None]] = {}

    def watch(self, context_id: str, listener: Listener) -> None:
        self._listeners.setdefault(context_id, set()).add(listener)
        if context_id not in self._pollers:
            self._wake[context_id] = asyncio.Event()
            self._pollers[context_id] = asyncio.create_task(
                self._poll(context_id), name=f"loremaster-presence-{context_id}"
            )
        self.poke(context_id)

    def unwatch(self, context_id: str, listener: Listener) -> None:
        listeners = self._listeners.get(context_id, set())
        listeners.discard(listener)
        if not listeners:
            self._listeners.pop(context_id, None)
            self._wake.pop(context_id, None)
            poller = self._pollers.pop(context_id, None)
            if poller is not None:
                poller.cancel()

    def poke(self, context_id: str) -> None:
        """Poll `context_id` now (its presence changed, or someone new listens)."""
        wake = self._wake.get(context_id)
        if wake is not None:
            wake.set()

    async def _poll(self, context_id: str) -> None:
        wake = self._wake[context_id]
        while True:
            wake.clear()
            try:
                members = await self._manager.get_presence(context_id)
            except LoremasterError as exc:
                log.info("presence of %s not read: %s", context_id, exc)
            else:
                for listener in list(self._listeners.get(context_id, ())):
                    listener(context_id, members)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._interval):
                    await wake.wait()


_WATCHES: weakref.WeakKeyDictionary[Service, PresenceWatch] = weakref.WeakKeyDictionary()


def presence_watch(service: Service) -> PresenceWatch:
    """The one watch of a server's sockets."""
    watch = _WATCHES.get(service)
    if watch is None:
        watch = _WATCHES[service] = PresenceWatch(service.manager)
    return watch
