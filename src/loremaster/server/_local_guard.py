"""Local mode trusts every request, so it must only take requests meant for this machine:
a web page elsewhere could otherwise reach the server through the browser of the person
running it — by DNS rebinding (a name of the attacker's that resolves to 127.0.0.1) or a
cross-site WebSocket. The ``Host`` must be a loopback name or address, and a browser's
``Origin``, when it sends one, too."""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

from starlette.types import ASGIApp, Receive, Scope, Send

from ._problems import ApiError, error_response

__all__ = ["LocalOnly", "is_loopback"]


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _host_name(authority: str) -> str:
    """The host of ``host[:port]`` (IPv6 in brackets)."""
    try:
        return urlsplit(f"//{authority}").hostname or ""
    except ValueError:
        return ""


def _origin_is_local(origin: str) -> bool:
    try:
        host = urlsplit(origin).hostname
    except ValueError:
        return False
    return host is not None and is_loopback(host)


class LocalOnly:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket") and not self._local(scope):
            if scope["type"] == "websocket":
                await send({"type": "websocket.close", "code": 1008})
                return
            error = ApiError(403, "not_local", "local mode serves only requests to this machine")
            await error_response(error)(scope, receive, send)
            return
        await self.app(scope, receive, send)

    @staticmethod
    def _local(scope: Scope) -> bool:
        headers = dict(scope["headers"])
        host = headers.get(b"host", b"").decode("latin-1")
        if not is_loopback(_host_name(host)):
            return False
        origin = headers.get(b"origin")
        return origin is None or _origin_is_local(origin.decode("latin-1"))
