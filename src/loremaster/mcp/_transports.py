"""Serving the bridge: over standard input and output (what an assistant starts), or over
streamable HTTP, alone on a loopback port or mounted in another ASGI app."""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager

import uvicorn
from mcp.server.stdio import stdio_server
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from mcp.server.transport_security import TransportSecuritySettings
from starlette.applications import Starlette
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from ..errors import ConfigurationError
from ..manager import ContextManager
from ._bridge import Bridge
from ._server import BridgeServer

__all__ = ["McpApp", "asgi_app", "build_server", "check_loopback", "serve_http", "serve_stdio"]

PATH = "/mcp"
"""Where `serve_http` answers (and where `loremaster serve` mounts it)."""


def build_server(
    manager: ContextManager, user_id: str | None = None, *, track_session: bool = False
) -> BridgeServer:
    """The MCP server over an initialized `manager`, acting as `user_id` (None: trusted);
    with `track_session`, each connection is recorded as a SessionContext."""
    return BridgeServer(Bridge(manager, user_id, track_session))


async def serve_stdio(
    manager: ContextManager, user_id: str | None = None, *, track_session: bool = False
) -> None:
    """Serve one client on standard input and output until it closes them."""
    server = build_server(manager, user_id, track_session=track_session)
    async with stdio_server() as (read_stream, write_stream):
        await server.run(read_stream, write_stream, server.create_initialization_options())


class McpApp:
    """The bridge over streamable HTTP as an ASGI app, answering at whatever path it is
    mounted on. Its session manager runs in `lifespan()`: the host app enters it in its
    own lifespan (once: an app serves one lifespan)."""

    def __init__(self, server: BridgeServer, allowed_hosts: Sequence[str] | None) -> None:
        security = None
        if allowed_hosts is not None:
            security = TransportSecuritySettings(
                enable_dns_rebinding_protection=True,
                allowed_hosts=list(allowed_hosts),
                allowed_origins=[f"http://{host}" for host in allowed_hosts],
            )
        self._sessions = StreamableHTTPSessionManager(server, security_settings=security)

    def lifespan(self) -> AbstractAsyncContextManager[None]:
        return self._sessions.run()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self._sessions.handle_request(scope, receive, send)


def asgi_app(
    manager: ContextManager,
    user_id: str | None = None,
    *,
    track_session: bool = False,
    allowed_hosts: Sequence[str] | None = None,
) -> McpApp:
    """The bridge as a mountable ASGI app (``app.mount("/mcp", mcp_app)``; run
    ``mcp_app.lifespan()`` inside the host's lifespan). `allowed_hosts` (``"host:port"``,
    ``"host:*"``) turns on the SDK's DNS rebinding protection; leave it None when the
    host app checks Host and Origin itself."""
    return McpApp(build_server(manager, user_id, track_session=track_session), allowed_hosts)


def check_loopback(host: str) -> None:
    """`ConfigurationError` unless `host` is a loopback address (or ``localhost``)."""
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise ConfigurationError(
            f"{host} is not a loopback address: `loremaster mcp --http` has no "
            "authentication and serves this machine only"
        )


def _listen(host: str, port: int) -> socket.socket:
    """A socket listening on `host` and `port` (0: any free port): connections that come
    before the server starts wait in its backlog."""
    family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(128)
    except OSError as exc:
        sock.close()
        raise ConfigurationError(f"cannot listen on {host}:{port}: {exc.strerror}") from exc
    return sock


async def serve_http(
    manager: ContextManager,
    host: str = "127.0.0.1",
    port: int = 8765,
    user_id: str | None = None,
    *,
    track_session: bool = False,
    ready: Callable[[str], None] | None = None,
) -> None:
    """Serve streamable HTTP at ``http://host:port/mcp`` until interrupted; `ready` is
    told the URL once the port is bound (with port 0, the one chosen). It has no
    authentication, so it listens on loopback only; requests must name a loopback host
    (DNS rebinding protection)."""
    check_loopback(host)
    allowed = [f"{host}:*", "127.0.0.1:*", "localhost:*", "[::1]:*"]
    app = asgi_app(manager, user_id, track_session=track_session, allowed_hosts=allowed)
    site = Starlette(routes=[Route(PATH, endpoint=app)], lifespan=lambda _: app.lifespan())
    sock = _listen(host, port)
    bound = sock.getsockname()[1]
    shown = f"[{host}]" if ":" in host else host
    server = uvicorn.Server(uvicorn.Config(site, log_level="warning", lifespan="on"))
    if ready is not None:
        ready(f"http://{shown}:{bound}{PATH}")
    try:
        await server.serve(sockets=[sock])
    finally:
        sock.close()
