"""One client connection: its resource subscriptions, the list-changed notices, and (with
``--track-session``) the session context that records it."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
from anyio.abc import TaskGroup
from mcp import types
from mcp.server.session import ServerSession
from pydantic import AnyUrl, ValidationError

from ..bus import Gap
from ..errors import LoremasterError
from ..models import ContextState, SessionContext, utc_now
from ._bridge import Bridge

__all__ = ["Connection"]

log = logging.getLogger("loremaster.mcp")

_LISTED_OPS = frozenset({"create", "delete", "restore"})
"""Changes after which the list of resources differs."""
_CLOSING_SECONDS = 5.0
"""How long closing a session context may take once the client is gone."""
_REFILL_SECONDS = 30.0
"""A subscription reads the event log after this long without news (changes are heard at
once: the bus carries them, between processes too)."""

_CLIENT_CHARS = 200
"""What is kept of the name and the version a client gives (a title holds 1,000)."""

_GONE = (anyio.ClosedResourceError, anyio.BrokenResourceError)
"""What sending to a client that has left raises."""


class Connection:
    """What one connection to the bridge holds, from `opened` to `close`."""

    def __init__(self, bridge: Bridge, tasks: TaskGroup) -> None:
        self._bridge = bridge
        self._tasks = tasks
        self.session: ServerSession | None = None
        """The MCP session, known from the first request: where notices are sent."""
        self._followed: dict[str, set[str]] = {}
        """context id -> subscribed URIs of it"""
        self._stops: dict[str, anyio.CancelScope] = {}
        self._session_context: str | None = None
        self._calls = 0
        self._tools: dict[str, int] = {}
        self._activity = anyio.Lock()

    # -- the session context ------------------------------------------------------------------

    async def opened(self, client: types.Implementation | None) -> None:
        """The client has initialized: with session tracking, record who it is."""
        self._tasks.start_soon(self._announce_list_changes)
        if not self._bridge.track_session:
            return
        await self._guarded(self._create_session_context(client), "record the session")

    async def _create_session_context(self, client: types.Implementation | None) -> None:
        name = client.name[:_CLIENT_CHARS] if client else "unknown client"
        version = client.version[:_CLIENT_CHARS] if client else ""
        now = utc_now().isoformat()
        session = SessionContext(
            title=f"MCP session: {name} {version}".strip(),
            user_id=self._bridge.user_id,
            metadata={"mcp": {"client": {"name": name, "version": version}}},
            activity_metrics={"connected_at": now, "last_active_at": now, "calls": 0},
        )
        self._session_context = await self._bridge.manager.create_context(
            session, self._bridge.user_id
        )

    async def called(self, tool: str) -> None:
        """A tool call ended: the session context's activity says so."""
        if self._session_context is None:
            return
        async with self._activity:
            self._calls += 1
            self._tools[tool] = self._tools.get(tool, 0) + 1
            activity = {
                "last_active_at": utc_now().isoformat(),
                "calls": self._calls,
                "last_tool": tool,
                "tools": dict(self._tools),
            }
            await self._guarded(self._update({"activity_metrics": activity}), "record activity")

    async def close(self) -> None:
        """The client is gone: stop following, and close its session context."""
        for stop in self._stops.values():
            stop.cancel()
        if self._session_context is None:
            return
        closed: dict[str, Any] = {
            "state": ContextState.ARCHIVED.value,
            "activity_metrics": {"disconnected_at": utc_now().isoformat()},
        }
        with anyio.move_on_after(_CLOSING_SECONDS, shield=True):
            await self._guarded(self._update(closed), "close the session")

    async def _update(self, changes: dict[str, Any]) -> None:
        assert self._session_context is not None
        await self._bridge.manager.update_context(
            self._session_context, changes, self._bridge.user_id
        )

    @staticmethod
    async def _guarded(work: Awaitable[None], what: str) -> None:
        """Bookkeeping never fails a client's call: a failure (what the client said of
        itself not being storable, say) is logged."""
        try:
            await work
        except (LoremasterError, ValidationError) as exc:
            log.warning("could not %s: %s", what, exc)

    # -- subscriptions -------------------------------------------------------------------------

    def subscribe(self, context_id: str, uri: str) -> None:
        uris = self._followed.setdefault(context_id, set())
        uris.add(uri)
        if context_id not in self._stops:
            self._stops[context_id] = stop = anyio.CancelScope()
            self._tasks.start_soon(self._follow, context_id, stop)

    def unsubscribe(self, context_id: str, uri: str) -> None:
        uris = self._followed.get(context_id, set())
        uris.discard(uri)
        if not uris:
            self._followed.pop(context_id, None)
            stop = self._stops.pop(context_id, None)
            if stop is not None:
                stop.cancel()

    async def _follow(self, context_id: str, stop: anyio.CancelScope) -> None:
        """Tell the client of every change to the context, made by anyone, anywhere."""
        with stop:
            await self._safely(f"following {context_id}", self._notify_changes, context_id)

    async def _notify_changes(self, context_id: str) -> None:
        cm = self._bridge.manager
        stream = await cm.subscribe(context_id, self._bridge.user_id, poll_interval=_REFILL_SECONDS)
        async with stream:
            async for _ in stream:
                for uri in sorted(self._followed.get(context_id, ())):
                    await self._send(_updated(AnyUrl(uri)))

    async def _announce_list_changes(self) -> None:
        await self._safely("announcing new contexts", self._notify_list_changes)

    async def _notify_list_changes(self) -> None:
        async with await self._bridge.manager.subscribe_all() as changes:
            async for item in changes:
                # A gap may hide a new context: say the list changed, to be safe.
                if isinstance(item, Gap) or item.op in _LISTED_OPS:
                    await self._send(ServerSession.send_resource_list_changed)

    async def _send(self, notice: Callable[[ServerSession], Awaitable[None]]) -> None:
        if self.session is not None:
            with contextlib.suppress(*_GONE):
                await notice(self.session)

    @staticmethod
    async def _safely(what: str, work: Callable[..., Awaitable[None]], *args: Any) -> None:
        """A watcher that fails stops alone, logged: the connection goes on."""
        try:
            await work(*args)
        except LoremasterError as exc:
            log.warning("%s stopped: %s", what, exc)
        except Exception:
            log.exception("%s failed", what)


def _updated(uri: AnyUrl) -> Callable[[ServerSession], Awaitable[None]]:
    async def send(session: ServerSession) -> None:
        await session.send_resource_updated(uri)

    return send
