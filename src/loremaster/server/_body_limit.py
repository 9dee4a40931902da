"""Bodies over the size limit are refused with 413 before they are read whole: at once
when ``Content-Length`` says so, else as soon as the bytes received pass the limit."""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ._problems import ApiError, error_response

__all__ = ["BodyLimit"]

_SLACK = 64 * 1024
"""Room for the JSON around a context of the largest size allowed."""


def _too_large(limit: int) -> str:
    return f"the body is over the limit of {limit:,} bytes (CONTEXT_MAX_SIZE_MB)"


class BodyLimit:
    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes + _SLACK

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_bytes):
            await self._refuse(scope, receive, send)
            return
        received = 0

        async def counted_receive() -> Message:
            # Raised as an HTTPException, which FastAPI's body parsing passes on as is.
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise HTTPException(413, _too_large(self.max_bytes), {"Connection": "close"})
            return message

        await self.app(scope, counted_receive, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = {"Connection": "close"}
        error = ApiError(413, "payload_too_large", _too_large(self.max_bytes), headers=headers)
        await error_response(error)(scope, receive, send)
