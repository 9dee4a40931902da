"""``Idempotency-Key`` on every POST and PATCH: a retry with the same key (same user,
24 hours) gets the first answer again and writes nothing twice, whichever server process
takes it, for the keys live in the database (`ContextManager.idempotency`).

The key is claimed with a fingerprint of the request (method, path, query, media type,
body): the same key with another request is refused (422), a key whose first request is
still running too (409). An answer that says nothing was written (4xx, 503) gives the key
back, so that a retry runs; any other is kept and replayed, with
``Idempotent-Replayed: true``."""

from __future__ import annotations

import asyncio
import hashlib
import logging
from typing import Any

from fastapi import FastAPI
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.requests import HTTPConnection
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..errors import LoremasterError
from ..manager import Idempotency as KeyStore
from ..manager import StoredResponse
from ._http import JSON
from ._problems import ApiError, error_response, from_library
from ._service import caller_of, service_of

__all__ = ["IDEMPOTENCY_HEADER", "REPLAYED_HEADER", "fingerprint", "install_idempotency"]

log = logging.getLogger("loremaster.server")

IDEMPOTENCY_HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
_METHODS = frozenset({"POST", "PATCH"})
_KEPT_HEADERS = ("content-type", "etag", "location")
_LONGEST_KEY = 255


def _wrote_nothing(status: int) -> bool:
    return 400 <= status < 500 or status == 503


def _valid_key(key: str) -> bool:
    return 0 < len(key) <= _LONGEST_KEY and key.isascii() and key.isprintable()


def fingerprint(method: str, path: bytes, query: bytes, media_type: str, body: bytes) -> str:
    """What makes two requests the same one: SHA-256 over method, raw path, query string,
    ``Content-Type`` and body."""
    digest = hashlib.sha256()
    for part in (method.encode(), path, query, media_type.encode("latin-1")):
        digest.update(len(part).to_bytes(8, "big") + part)
    digest.update(body)
    return digest.hexdigest()


def _fingerprint_of(scope: Scope, body: bytes) -> str:
    return fingerprint(
        scope["method"],
        scope.get("raw_path") or scope["path"].encode(),
        scope.get("query_string", b""),
        Headers(scope=scope).get("content-type", ""),
        body,
    )


async def _send_error(error: ApiError, scope: Scope, receive: Receive, send: Send) -> None:
    await error_response(error)(scope, receive, send)


async def _whole_body(receive: Receive) -> bytes:
    """The request's body (`ApiError` 413 once it passes the body limit, which counts
    what is received; 400 if the client goes away first)."""
    chunks = []
    while True:
        try:
            message = await receive()
        except HTTPException as exc:
            raise ApiError(413, "payload_too_large", exc.detail, headers=exc.headers) from exc
        if message["type"] == "http.disconnect":
            raise ApiError(400, "incomplete_body", "the client went away before the whole body")
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


def _replaying(body: bytes, receive: Receive) -> Receive:
    """A receive that gives the body already read, then the client's later messages."""
    given = False

    async def replay() -> Message:
        nonlocal given
        if given:
            return await receive()
        given = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replay


class _Recorder:
    """Passes the answer on to the client and keeps what a replay needs of it."""

    def __init__(self, send: Send) -> None:
        self._send = send
        self.status = 500
        self.headers: dict[str, str] = {}
        self.chunks: list[bytes] = []

    async def send(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.status = message["status"]
            for name, value in message.get("headers", []):
                if name.decode("latin-1").lower() in _KEPT_HEADERS:
                    self.headers[name.decode("latin-1").lower()] = value.decode("latin-1")
        elif message["type"] == "http.response.body":
            self.chunks.append(message.get("body", b""))
        await self._send(message)

    def response(self) -> StoredResponse:
        return StoredResponse(self.status, b"".join(self.chunks), dict(self.headers))


async def _replay(stored: StoredResponse, scope: Scope, receive: Receive, send: Send) -> None:
    headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in stored.headers.items()]
    headers.append((REPLAYED_HEADER.lower().encode(), b"true"))
    headers.append((b"content-length", str(len(stored.body)).encode()))
    await send({"type": "http.response.start", "status": stored.status, "headers": headers})
    await send({"type": "http.response.body", "body": stored.body})


class Idempotency:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in _METHODS:
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        key = headers.get(IDEMPOTENCY_HEADER)
        if key is None:
            await self.app(scope, receive, send)
            return
        connection = HTTPConnection(scope)
        try:
            user = caller_of(connection).name
        except ApiError:  # the route refuses it as it would without a key
            await self.app(scope, receive, send)
            return
        if not _valid_key(key):
            message = f"{IDEMPOTENCY_HEADER} is 1 to {_LONGEST_KEY} printable ASCII characters"
            await _send_error(ApiError(400, "bad_idempotency_key", message), scope, receive, send)
            return
        await self._once(scope, receive, send, user, key)

    async def _once(self, scope: Scope, receive: Receive, send: Send, user: str, key: str) -> None:
        try:
            body = await _whole_body(receive)
        except ApiError as error:
            await _send_error(error, scope, receive, send)
            return
        store = service_of(HTTPConnection(scope)).manager.idempotency
        try:
            stored = await store.claim(user, key, _fingerprint_of(scope, body))
        except LoremasterError as exc:
            await _send_error(from_library(exc), scope, receive, send)
            return
        if stored is not None:
            await _replay(stored, scope, receive, send)
            return
        recorder = _Recorder(send)
        try:
            await self.app(scope, _replaying(body, receive), recorder.send)
        except Exception:
            crashed = error_response(ApiError(500, "internal_error", "internal server error"))
            answer = StoredResponse(500, bytes(crashed.body), {"content-type": JSON})
            await _settle(store, user, key, answer)
            raise
        await _settle(store, user, key, recorder.response())


async def _settle(store: KeyStore, user: str, key: str, response: StoredResponse) -> None:
    """Keep the answer for replays, or give the key back if nothing was written; a
    failure here is logged (the answer is sent already)."""
    try:
        if _wrote_nothing(response.status):
            await asyncio.shield(store.release(user, key))
        else:
            await asyncio.shield(store.finish(user, key, response))
    except LoremasterError as exc:
        log.warning("idempotency key %r of %r not settled: %s", key, user, exc)


def _document(app: FastAPI) -> None:
    """Declare the header on every POST and PATCH of the OpenAPI document."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = generate()
        parameter = {
            "name": IDEMPOTENCY_HEADER,
            "in": "header",
            "required": False,
            "description": "a retry with the same key (same user, 24 hours) gets the first "
            "answer again and writes nothing twice",
            "schema": {"type": "string", "minLength": 1, "maxLength": _LONGEST_KEY},
        }
        for operations in schema.get("paths", {}).values():
            for method, operation in operations.items():
                if method.upper() in _METHODS:
                    operation.setdefault("parameters", []).append(parameter)
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def install_idempotency(app: FastAPI) -> None:
    """Idempotency-Key on every POST and PATCH of `app`, documented."""
    app.add_middleware(Idempotency)
    _document(app)
