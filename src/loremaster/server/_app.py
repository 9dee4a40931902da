"""The ASGI application: one `ContextManager` behind HTTP, SSE and WebSocket routes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from ..__about__ import __version__
from ..manager import ContextManager
from . import _contexts, _inspection, _inspector, _operations, _routes, _socket, _stream
from ._auth import Authenticator
from ._body_limit import BodyLimit
from ._idempotency import install_idempotency
from ._local_guard import LocalOnly
from ._problems import install_error_handlers
from ._service import Service
from ._settings import ServerSettings, load_server_settings
from ._shutdown import on_exit_signals

__all__ = ["create_app"]

_DESCRIPTION = """\
Contexts for LLM applications — conversations, sessions and shared rooms — durable,
versioned, synchronized live and portable between providers. Every error has the shape
`{"error": {"code", "message", "details"}}`. See docs/server.md."""


def create_app(
    manager: ContextManager | None = None, settings: ServerSettings | None = None
) -> FastAPI:
    """The server's application over `manager` (default: a manager from the ``CONTEXT_*``
    settings). The application opens the manager on startup if it is not open, and
    closes on shutdown only the manager it made."""
    settings = settings or load_server_settings()
    owned = manager is None
    manager = manager or ContextManager()
    service = Service(manager, settings, Authenticator(settings))

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await manager.initialize()
        on_exit_signals(service.closing.set)
        try:
            yield
        finally:
            service.closing.set()
            if owned:
                await manager.close()

    app = FastAPI(
        title="loremaster",
        version=__version__,
        description=_DESCRIPTION,
        lifespan=lifespan,
        openapi_url="/openapi.json",
        docs_url="/docs",
        redoc_url=None,
    )
    app.state.service = service
    install_error_handlers(app)
    for module in (_operations, _contexts, _routes, _stream, _socket, _inspection, _inspector):
        app.include_router(module.router)
    install_idempotency(app)
    app.add_middleware(BodyLimit, max_bytes=manager.settings.max_size_bytes)
    if settings.local_mode:
        app.add_middleware(LocalOnly)
    _operations.install_operations(app, service)
    return app
