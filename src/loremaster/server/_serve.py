"""Running the application on uvicorn: one process or `workers`, shut down gracefully
(in-flight requests finish; streams and sockets are told first)."""

from __future__ import annotations

import ipaddress
import os
import signal
from types import FrameType

import uvicorn

from ..errors import ConfigurationError
from ._settings import ServerSettings, load_server_settings

__all__ = ["is_loopback", "serve"]

APP_FACTORY = "loremaster.server._app:create_app"
GRACEFUL_SECONDS = 10


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _stopped(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(0)


def serve(
    host: str = "127.0.0.1",
    port: int = 8700,
    *,
    database_url: str | None = None,
    redis_url: str | None = None,
    workers: int = 1,
    settings: ServerSettings | None = None,
) -> None:
    """Serve until stopped (SIGINT or SIGTERM). With no API keys and no JWT secret the
    server is single-user and local: it refuses a host other than loopback."""
    settings = settings or load_server_settings()
    if settings.local_mode and not is_loopback(host):
        raise ConfigurationError(
            f"refusing to serve on {host} without authentication: set LOREMASTER_API_KEYS "
            "or LOREMASTER_JWT_SECRET, or bind to 127.0.0.1"
        )
    if workers < 1:
        raise ConfigurationError("workers must be at least 1")
    if database_url is not None:
        os.environ["CONTEXT_DATABASE_URL"] = database_url
    if redis_url is not None:
        os.environ["CONTEXT_REDIS_URL"] = redis_url
    # uvicorn raises SIGTERM again once it has shut down gracefully: a stop asked for is
    # a clean exit (0), not a death by the signal.
    signal.signal(signal.SIGTERM, _stopped)
    uvicorn.run(
        APP_FACTORY,
        factory=True,
        host=host,
        port=port,
        workers=workers,
        timeout_graceful_shutdown=GRACEFUL_SECONDS,
        log_level="info",
    )
