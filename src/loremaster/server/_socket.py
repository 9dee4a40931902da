"""The WebSocket ``/v1/ws``: many contexts' changes on one socket, updates with an answer
each, presence both ways (the protocol: docs/protocol.md).

Everything a socket sends goes through one bounded queue, in order; a client that does
not read fills it and is closed with 1013, so a slow client costs the server a bounded
amount of memory, never more."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import orjson
from fastapi import APIRouter, WebSocket
from starlette.websockets import WebSocketDisconnect

from ..document import canonical_id
from ..errors import LoremasterError, RevisionConflict
from ..sync import PresenceEntry
from ._auth import ACT_AS_HEADER, Caller
from ._feed import Ended, Feed, event_fields, open_feed, starting_revision
from ._metrics import EVENTS_DELIVERED, WS_CONNECTIONS
from ._presence import member_fields, presence_watch
from ._problems import ApiError, error_response, from_library
from ._service import Service, service_of
from ._socket_messages import (
    Auth,
    ClientMessage,
    MessageRefused,
    Ping,
    Presence,
    Subscribe,
    Unsubscribe,
    Update,
    read_message,
)

__all__ = ["router"]

log = logging.getLogger("loremaster.server")

router = APIRouter()

GOING_AWAY = 1001
POLICY_VIOLATION = 1008
TRY_AGAIN_LATER = 1013

AUTH_SECONDS = 10.0
"""How long a socket without an ``Authorization`` header has to send its ``auth``."""
CLOSE_SECONDS = 5.0
"""How long closing waits for a client to take the close frame."""
PRESENCE_RENEW_SECONDS = 10.0
"""A third of presence's 30-second lifetime: what a socket said stays true while it is open."""
MAX_SUBSCRIPTIONS = 256
FRAME_SLACK = 64 * 1024
"""Room for the JSON around the largest change allowed (CONTEXT_MAX_SIZE_MB)."""

Message = dict[str, Any]


@router.websocket("/v1/ws")
async def websocket(socket: WebSocket) -> None:
    """Subscriptions, updates and presence over one socket (docs/protocol.md)."""
    service = service_of(socket)
    try:
        caller = _caller_at_connect(socket, service)
    except ApiError as error:
        await socket.send_denial_response(error_response(error))
        return
    await socket.accept()
    WS_CONNECTIONS.inc()
    try:
        await Session(socket, service, caller).run()
    finally:
        WS_CONNECTIONS.dec()


def _caller_at_connect(socket: WebSocket, service: Service) -> Caller | None:
    """The caller its headers name; None when it is to authenticate with a first
    message (a browser cannot set headers on a WebSocket). 401 for a bad token."""
    authenticator = service.authenticator
    authorization = socket.headers.get("authorization")
    if authorization is None and not authenticator.local_mode:
        return None
    act_as = socket.headers.get(ACT_AS_HEADER) or socket.query_params.get("user")
    return authenticator.caller(authorization, act_as)


@dataclass
class _Subscription:
    pump: asyncio.Task[None]
    presence: tuple[tuple[str, str | None, bool], ...] | None = None
    """Who was present when this socket was last told."""


class Session:
    """One open socket: a reader of the client's messages, a writer of the queue, and a
    pump per subscription."""

    def __init__(self, socket: WebSocket, service: Service, caller: Caller | None) -> None:
        self._socket = socket
        self._service = service
        self._manager = service.manager
        self._caller = caller
        self._outbox: asyncio.Queue[Message] = asyncio.Queue(service.settings.ws_queue)
        self._subscriptions: dict[str, _Subscription] = {}
        self._present: dict[str, Presence] = {}
        self._presence = presence_watch(service)
        self._frame_limit = self._manager.settings.max_size_bytes + FRAME_SLACK
        self._ending = asyncio.Event()
        self._close: tuple[int, str] | None = None
        """The close code and reason, once the server decided to close."""
        self._disconnected = False
        self._overflowed = False
        self._handlers: dict[type[ClientMessage], Callable[[Any], Awaitable[None]]] = {
            Auth: self._on_auth,
            Subscribe: self._on_subscribe,
            Unsubscribe: self._on_unsubscribe,
            Update: self._on_update,
            Presence: self._on_presence,
            Ping: self._on_ping,
        }

    async def run(self) -> None:
        sender = asyncio.create_task(self._send_all())
        helpers = [
            asyncio.create_task(self._end_on_shutdown()),
            asyncio.create_task(self._renew_presence()),
            asyncio.create_task(self._ending.wait()),
        ]
        try:
            if await self._authenticated(helpers[-1]):
                await self._read_all(helpers[-1])
        finally:
            for task in helpers:
                task.cancel()
            await asyncio.gather(*helpers, return_exceptions=True)
            await self._drop_all()
            await self._flush(sender)
            await self._send_close()

    def end(self, code: int, reason: str) -> None:
        """Close the socket with `code` (the first reason given wins)."""
        if self._close is None:
            self._close = (code, reason)
            self._ending.set()

    def _put(self, message: Message) -> None:
        """Queue a message. Once the server decided to close, what is queued still goes
        out first (the answer to a write that was in flight at a shutdown, say), unless
        the client is gone or does not read."""
        if self._disconnected or self._overflowed:
            return
        try:
            self._outbox.put_nowait(message)
        except asyncio.QueueFull:
            self._overflowed = True
            log.warning("closing a WebSocket that does not read (%d queued)", self._outbox.qsize())
            self.end(TRY_AGAIN_LATER, "too many messages queued: the client is not reading")

    # -- the writer, and the end ----------------------------------------------------------

    async def _send_all(self) -> None:
        while True:
            message = await self._outbox.get()
            try:
                await self._socket.send_text(orjson.dumps(message).decode())
            except (WebSocketDisconnect, RuntimeError):
                self._disconnected = True
                self._ending.set()
                return
            finally:
                self._outbox.task_done()
            if message["type"] == "event":
                EVENTS_DELIVERED.labels(transport="websocket").inc()

    async def _end_on_shutdown(self) -> None:
        await self._service.closing.wait()
        self.end(GOING_AWAY, "the server is shutting down")

    async def _flush(self, sender: asyncio.Task[None]) -> None:
        """Let the writer send what is queued (an error explaining the close, events
        committed before a shutdown), unless the client is gone or does not read."""
        if not (self._disconnected or self._overflowed):
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(CLOSE_SECONDS):
                    await self._outbox.join()
        sender.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sender

    async def _send_close(self) -> None:
        if self._disconnected or self._close is None:
            return
        code, reason = self._close
        with contextlib.suppress(TimeoutError, WebSocketDisconnect, RuntimeError):
            async with asyncio.timeout(CLOSE_SECONDS):
                await self._socket.close(code, reason)

    # -- the reader ---------------------------------------------------------------------

    async def _frame(self, ending: asyncio.Task[Any]) -> str | None:
        """The next text frame; None once the client left or the socket is ending. A
        binary frame or one over the size limit is answered with an error."""
        while True:
            receiving = asyncio.ensure_future(self._socket.receive())
            try:
                await asyncio.wait({receiving, ending}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                receiving.cancel()  # nothing, once it is done
            if not receiving.done():
                return None
            frame = receiving.result()
            if frame["type"] == "websocket.disconnect":
                self._disconnected = True
                return None
            text = frame.get("text")
            if text is None:
                self._refuse(415, "unsupported_media_type", "messages are JSON in text frames")
            elif len(text) > self._frame_limit:
                limit = f"{self._frame_limit:,}"
                self._refuse(413, "payload_too_large", f"a message is at most {limit} characters")
            else:
                return str(text)

    def _refuse(self, status: int, code: str, message: str) -> None:
        self._put(_error(ApiError(status, code, message), None))

    async def _authenticated(self, ending: asyncio.Task[Any]) -> bool:
        """Whether the socket has a caller: from its headers, else from a first message
        ``{"type": "auth", "access_token": ...}``."""
        if self._caller is not None:
            return True
        text = None
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(AUTH_SECONDS):
                text = await self._frame(ending)
        if text is None:
            self.end(POLICY_VIOLATION, "no auth message")
            return False
        try:
            message = read_message(text)
            if not isinstance(message, Auth):
                raise ApiError(401, "unauthorized", "the first message must be auth")
            self._caller = self._service.authenticator.caller(f"Bearer {message.access_token}")
        except ApiError as error:
            self._put(_error(error, getattr(error, "request_id", None)))
            self.end(POLICY_VIOLATION, error.message)
            return False
        self._put(_answer(message, type="authenticated", user_id=self._caller.user_id))
        return True

    async def _read_all(self, ending: asyncio.Task[Any]) -> None:
        while (text := await self._frame(ending)) is not None:
            try:
                message = read_message(text)
            except MessageRefused as refused:
                self._put(_error(refused, refused.request_id))
                continue
            await self._handle(message)

    async def _handle(self, message: ClientMessage) -> None:
        handler = self._handlers[type(message)]
        try:
            await handler(message)
        except ApiError as error:
            self._put(_error(error, message.request_id))
        except LoremasterError as exc:
            self._put(_error(from_library(exc), message.request_id))
        except Exception:
            log.exception("WebSocket message %s failed", message.type)
            unexpected = ApiError(500, "internal_error", "internal server error")
            self._put(_error(unexpected, message.request_id))

    @property
    def _user_id(self) -> str | None:
        assert self._caller is not None
        return self._caller.user_id

    # -- the messages -------------------------------------------------------------------

    async def _on_auth(self, message: Auth) -> None:
        raise ApiError(400, "bad_request", "this socket is authenticated already")

    async def _on_ping(self, message: Ping) -> None:
        self._put(_answer(message, type="pong"))

    async def _on_subscribe(self, message: Subscribe) -> None:
        if len(self._subscriptions) >= MAX_SUBSCRIPTIONS:
            raise ApiError(
                429, "too_many_subscriptions", f"a socket follows {MAX_SUBSCRIPTIONS} at most"
            )
        if canonical_id(message.context_id) in self._subscriptions:
            raise ApiError(409, "already_subscribed", f"already subscribed to {message.context_id}")
        context_id, after = await starting_revision(
            self._manager, message.context_id, self._user_id, message.since_revision
        )
        feed = await open_feed(self._manager, context_id, self._user_id, after)
        self._put(_answer(message, type="subscribed", context_id=context_id, revision=after))
        pump = asyncio.create_task(self._pump(feed), name=f"loremaster-ws-{context_id}")
        self._subscriptions[context_id] = _Subscription(pump)
        self._presence.watch(context_id, self._on_members)

    async def _on_unsubscribe(self, message: Unsubscribe) -> None:
        context_id = canonical_id(message.context_id)
        if context_id not in self._subscriptions:
            raise ApiError(404, "not_subscribed", f"not subscribed to {message.context_id}")
        await self._drop(context_id)
        self._put(_answer(message, type="unsubscribed", context_id=context_id, reason="requested"))

    async def _on_update(self, message: Update) -> None:
        try:
            context = await self._manager.update_context(
                message.context_id,
                message.changes,
                self._user_id,
                message.expected_revision,
                branch=message.branch,
                strategy=message.strategy,
                settle=message.strategy is not None,
                lock_token=message.lock_token,
            )
        except RevisionConflict as exc:
            if message.strategy is not None:
                raise
            raise _precondition_failed(exc) from exc
        self._put(_answer(message, type="ack", revision=context.revision))

    async def _on_presence(self, message: Presence) -> None:
        assert self._caller is not None
        context_id = canonical_id(message.context_id)
        await self._manager.update_presence(
            context_id, self._caller.name, message.viewing, message.typing
        )
        self._present[context_id] = message
        self._presence.poke(context_id)
        if message.request_id is not None:
            self._put(_answer(message, type="ack"))

    # -- subscriptions ------------------------------------------------------------------

    async def _pump(self, feed: Feed) -> None:
        context_id = feed.context_id
        try:
            while True:
                event = await feed.next()
                self._put({"type": "event", **event_fields(event)})
                if event.op in ("join", "leave"):
                    self._presence.poke(context_id)
        except Ended as end:
            self._end_subscription(context_id, end.reason)
        except Exception:
            log.exception("following %s for a WebSocket failed", context_id)
            self._end_subscription(context_id, "error")
        finally:
            await feed.close()

    def _end_subscription(self, context_id: str, reason: str) -> None:
        self._forget(context_id)
        self._put({"type": "unsubscribed", "context_id": context_id, "reason": reason})

    def _on_members(self, context_id: str, members: list[PresenceEntry]) -> None:
        subscription = self._subscriptions.get(context_id)
        if subscription is None:
            return
        seen = tuple((m.user_id, m.viewing, m.typing) for m in members)
        if seen == subscription.presence:
            return
        subscription.presence = seen
        fields = [member_fields(m) for m in members]
        self._put({"type": "presence", "context_id": context_id, "members": fields})

    def _forget(self, context_id: str) -> _Subscription | None:
        self._presence.unwatch(context_id, self._on_members)
        return self._subscriptions.pop(context_id, None)

    async def _drop(self, context_id: str) -> None:
        subscription = self._forget(context_id)
        if subscription is not None:
            subscription.pump.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await subscription.pump

    async def _drop_all(self) -> None:
        for context_id in list(self._subscriptions):
            await self._drop(context_id)

    async def _renew_presence(self) -> None:
        while True:
            await asyncio.sleep(PRESENCE_RENEW_SECONDS)
            for context_id, message in list(self._present.items()):
                try:
                    await self._on_presence(message.model_copy(update={"request_id": None}))
                except LoremasterError:
                    del self._present[context_id]


def _precondition_failed(exc: RevisionConflict) -> ApiError:
    """A stale `expected_revision` with no strategy named: 412 over HTTP."""
    details = {"expected_revision": exc.expected_revision, "actual_revision": exc.actual_revision}
    return ApiError(412, "precondition_failed", exc.message, details)


def _answer(message: ClientMessage, **fields: Any) -> Message:
    """An answer to `message`, echoing its request id if it had one."""
    if message.request_id is not None:
        fields["request_id"] = message.request_id
    return fields


def _error(error: ApiError, request_id: str | int | None) -> Message:
    answer: Message = {"type": "error", "code": error.code, "message": error.message}
    if error.details:
        answer["details"] = error.details
    if request_id is not None:
        answer["request_id"] = request_id
    return answer
