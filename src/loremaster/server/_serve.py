"""Running the application on uvicorn: one process or `workers`, shut down gracefully
(in-flight requests finish; streams and sockets are told first)."""

from __future__ import annotations

import os
import signal
from types import FrameType
from typing import Any

import uvicorn

from ..errors import ConfigurationError
from ._local_guard import is_loopback
from ._settings import ServerSettings, load_server_settings

__all__ = ["serve"]

APP_FACTORY = "loremaster.server._app:create_app"
GRACEFUL_SECONDS = 10

LOG_CONFIG: dict[str, Any] = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"json": {"()": "loremaster.server._observe.JsonFormatter"}},
    "handlers": {
        "json": {
            "class": "logging.StreamHandler",
            "formatter": "json",
            "stream": "ext://sys.stderr",
        }
    },
    "loggers": {
        name: {"handlers": ["json"], "level": "INFO", "propagate": False}
        for name in ("uvicorn", "uvicorn.access", "loremaster")
    },
}
"""Every log line one JSON object, on stderr (docs/server.md#logs). uvicorn's own access
log is off: `loremaster.access` writes one line a request with its route, user and
duration."""


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
        log_config=LOG_CONFIG,
        access_log=False,
    )
