"""The server: HTTP, SSE and WebSocket over one `ContextManager` (`loremaster serve`).

from loremaster.server import create_app
app = create_app()          # an ASGI application; run it with any ASGI server
"""

from ._app import create_app
from ._serve import serve
from ._settings import ServerSettings, load_server_settings

__all__ = ["ServerSettings", "create_app", "load_server_settings", "serve"]
