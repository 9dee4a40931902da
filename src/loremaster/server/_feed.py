"""A caller's feed of one context's events, shared by the SSE stream and the WebSocket:
the manager's `subscribe` (each revision once, in order, across processes), authorized at
the start and again whenever an event changes who may read the context."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from ..errors import BackendUnavailable, ContextNotFound, LoremasterError, ValidationFailed
from ..manager import ContextManager
from ..models import ContextEvent
from ..sync import SNAPSHOT_OP, EventStream

__all__ = ["Ended", "Feed", "ended_by", "event_fields", "open_feed", "starting_revision"]

log = logging.getLogger("loremaster.server")

ACCESS_PATHS = ("/owner_id", "/collaborators", "/permissions")
"""Where a change decides who may read a context."""

_CATCH_UP_SECONDS = 2.0
"""How long a recheck waits for this process to read the revision that changed access (a
cached row may lag an event heard from another process by a moment)."""


class Ended(Exception):
    """The feed is over; `reason` says why: ``forbidden`` (the caller may no longer read
    the context), ``unavailable`` (storage cannot be reached: resume later), ``error``,
    ``shutdown``."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def event_fields(event: ContextEvent) -> dict[str, Any]:
    """An event as the WebSocket sends it (``time`` is when it was committed)."""
    return {
        "context_id": event.context_id,
        "revision": event.revision,
        "op": event.op,
        "changes": event.changes,
        "user_id": event.user_id,
        "time": event.created_at.isoformat().replace("+00:00", "Z"),
        "branch": event.branch,
        "provider": event.provider,
    }


def changes_access(event: ContextEvent) -> bool:
    if event.op == SNAPSHOT_OP:
        return True
    paths = (str(change.get("path", "")) for change in event.changes)
    return any(path == p or path.startswith(p + "/") for path in paths for p in ACCESS_PATHS)


async def starting_revision(
    manager: ContextManager, context_id: str, user_id: str | None, since_revision: int | None
) -> tuple[str, int]:
    """The context's id as stored and the revision a follower starts after: `since_revision`,
    or the current revision. `ContextNotFound` for a caller who may not read it;
    `ValidationFailed` for a revision the context has not reached."""
    context = await manager.get_context(
        context_id, user_id, include_messages=False, include_deleted=True
    )
    if since_revision is None:
        return context.context_id, context.revision
    if since_revision > context.revision:
        raise ValidationFailed(
            f"since_revision {since_revision} is ahead of the context (revision {context.revision})"
        )
    return context.context_id, since_revision


async def open_feed(
    manager: ContextManager, context_id: str, user_id: str | None, after_revision: int
) -> Feed:
    """Follow `context_id` after `after_revision` (checked by `starting_revision`)."""
    stream = await manager.subscribe(context_id, user_id, after_revision)
    return Feed(manager, stream, user_id)


class Feed:
    """Each revision once and in order; `next` raises `Ended` when the feed is over."""

    def __init__(self, manager: ContextManager, stream: EventStream, user_id: str | None) -> None:
        self._manager = manager
        self._stream = stream
        self._user_id = user_id
        self.context_id = stream.context_id

    @property
    def revision(self) -> int:
        """The last revision delivered (at first, where the feed starts)."""
        return self._stream.revision

    async def next(self) -> ContextEvent:
        """The next event (cancelling the wait loses nothing)."""
        try:
            event = await anext(self._stream)
        except StopAsyncIteration:
            raise Ended("shutdown") from None
        except LoremasterError as exc:
            raise ended_by(exc, self.context_id) from exc
        if self._user_id is not None and changes_access(event):
            await self._check_access(event.revision)
        return event

    async def _check_access(self, revision: int) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + _CATCH_UP_SECONDS
        try:
            while True:
                context = await self._manager.get_context(
                    self.context_id, self._user_id, include_messages=False, include_deleted=True
                )
                if context.revision >= revision or loop.time() >= deadline:
                    return
                await asyncio.sleep(0.02)
        except LoremasterError as exc:
            raise ended_by(exc, self.context_id) from exc

    async def close(self) -> None:
        await self._stream.close()


def ended_by(exc: LoremasterError, context_id: str) -> Ended:
    """Why a feed of `context_id` ends on a library error."""
    if isinstance(exc, ContextNotFound):
        return Ended("forbidden")
    if isinstance(exc, BackendUnavailable):
        return Ended("unavailable")
    log.warning("following %s failed: %s", context_id, exc)
    return Ended("error")
