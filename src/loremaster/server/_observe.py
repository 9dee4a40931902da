"""Every request observed: a request id (the client's ``X-Request-ID`` when well formed,
else a new one) echoed in the answer and carried by every log line written while the
request runs; its latency in the histogram of its route template; and one JSON access
log line, a warning when the request was denied (401, 403, 429)."""

from __future__ import annotations

import datetime as dt
import logging
import random
import re
import time
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

import orjson
from starlette.routing import compile_path
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ._auth import Caller
from ._metrics import REQUEST_SECONDS

__all__ = ["REQUEST_ID_HEADER", "JsonFormatter", "Observe", "route_template"]

REQUEST_ID_HEADER = "X-Request-ID"
_REQUEST_ID = REQUEST_ID_HEADER.lower().encode()
_WELL_FORMED = re.compile(r"[A-Za-z0-9._:@/+=-]{1,128}")
DENIED = frozenset({401, 403, 429})
UNMATCHED = "unmatched"
"""The route label of a path no route serves (a bounded label, not the raw path)."""

access_log = logging.getLogger("loremaster.access")


@dataclass(frozen=True, slots=True)
class _Request:
    request_id: str
    method: str
    state: dict[str, Any]
    """The connection's state: `caller_of` leaves the authenticated caller there."""

    @property
    def user(self) -> str | None:
        caller = self.state.get("caller")
        return caller.name if isinstance(caller, Caller) else None


_current: ContextVar[_Request | None] = ContextVar("loremaster_request", default=None)


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time, level, logger, message, and while a request runs its
    request_id, method and user; an access line adds route, path, status and
    duration_ms."""

    FIELDS = ("route", "path", "status", "duration_ms", "client")

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        request = _current.get()
        if request is not None:
            entry |= {
                "request_id": request.request_id,
                "method": request.method,
                "user": request.user,
            }
        entry |= {key: record.__dict__[key] for key in self.FIELDS if key in record.__dict__}
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(entry, default=str).decode()


def _request_id(scope: Scope) -> str:
    for name, value in scope["headers"]:
        if name == _REQUEST_ID:
            given: str = value.decode("latin-1")
            if _WELL_FORMED.fullmatch(given):
                return given
    # Not uuid4: its urandom call is a system call, and an id needs no secrecy. `random`
    # is seeded afresh in every process (and again after a fork).
    return f"{random.getrandbits(128):032x}"


def _templates(app: Any) -> list[tuple[re.Pattern[str], str]]:
    """The path templates of the OpenAPI document, in routing order, as patterns."""
    known: list[tuple[re.Pattern[str], str]] | None = getattr(app.state, "templates", None)
    if known is None:
        known = [(compile_path(path)[0], path) for path in app.openapi()["paths"]]
        app.state.templates = known
    return known


def route_template(scope: Scope) -> str:
    """The template of the route serving `scope` (``/v1/contexts/{context_id}``); for a
    request answered before routing (429, 413), the documented route it was for."""
    path = getattr(scope.get("route"), "path", None)
    if isinstance(path, str):
        return path
    templates = _templates(scope["app"])
    return next((t for pattern, t in templates if pattern.match(scope["path"])), UNMATCHED)


def _with_request_id(message: Message, request_id: str) -> Message:
    headers = [*message.get("headers", ()), (_REQUEST_ID, request_id.encode())]
    return {**message, "headers": headers}


class Observe:
    """The outermost middleware: request id, latency histogram, access log."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self.app(scope, receive, send)
            return
        request = _Request(
            _request_id(scope), scope.get("method", "WEBSOCKET"), scope.setdefault("state", {})
        )
        status = 0

        async def observed_send(message: Message) -> None:
            nonlocal status
            kind = message["type"]
            if kind in ("http.response.start", "websocket.http.response.start"):
                status = message["status"]
                message = _with_request_id(message, request.request_id)
            elif kind == "websocket.accept":
                status = 101
                message = _with_request_id(message, request.request_id)
            elif kind == "websocket.close" and status == 0:
                status = 403  # refused before the handshake completed
            await send(message)

        token = _current.set(request)
        started = time.perf_counter()
        try:
            await self.app(scope, receive, observed_send)
        except BaseException:
            status = status or 500
            raise
        finally:
            self._record(scope, request, status, time.perf_counter() - started)
            _current.reset(token)

    @staticmethod
    def _record(scope: Scope, request: _Request, status: int, seconds: float) -> None:
        route = route_template(scope)
        if scope["type"] == "http":
            REQUEST_SECONDS.labels(route, request.method, str(status)).observe(seconds)
        denied = status in DENIED
        level = logging.ERROR if status >= 500 else logging.WARNING if denied else logging.INFO
        if not access_log.isEnabledFor(level):
            return
        client = scope.get("client")
        access_log.log(
            level,
            "%s %s %d%s",
            request.method,
            route,
            status,
            " denied" if denied else "",
            extra={
                "route": route,
                "path": scope["path"],
                "status": status,
                "duration_ms": round(seconds * 1000, 3),
                "client": client[0] if client else None,
            },
        )
