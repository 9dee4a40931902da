"""The MCP bridge: loremaster as the memory of any assistant that speaks the Model Context
Protocol, built on the official ``mcp`` SDK (docs/mcp.md).

    from loremaster.mcp import serve_stdio

    async with ContextManager("sqlite:///campaign.db") as cm:
        await serve_stdio(cm, user_id="dm")      # `loremaster mcp --user dm`

Tools named after the library's methods, resources ``loremaster://contexts/{id}`` (with
``/messages`` and ``/history``) a client may subscribe to, and two prompts. Every change
an agent makes is one revision whose event names the tool (``mcp:update_context``), so a
rollback or a branch undoes it. `asgi_app` serves it over streamable HTTP inside another
ASGI app; `serve_http` alone on a loopback port.
"""

from ._bridge import Bridge
from ._prompts import PROMPTS, Prompt
from ._server import BridgeServer
from ._tools import TOOLS, Tool
from ._transports import (
    McpApp,
    asgi_app,
    build_server,
    check_loopback,
    serve_http,
    serve_stdio,
)

__all__ = [
    "PROMPTS",
    "TOOLS",
    "Bridge",
    "BridgeServer",
    "McpApp",
    "Prompt",
    "Tool",
    "asgi_app",
    "build_server",
    "check_loopback",
    "serve_http",
    "serve_stdio",
]
