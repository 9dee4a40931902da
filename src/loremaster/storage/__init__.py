"""Persistence: the `Storage` protocol and its backends, chosen by database URL."""

from __future__ import annotations

from urllib.parse import unquote, urlsplit

from ..errors import ConfigurationError, UnsupportedFormat
from ._protocol import Storage
from ._types import (
    ContextRecord,
    EventRecord,
    MessageRecord,
    Mutation,
    NotModified,
    Plan,
    RecordQuery,
    SearchRecord,
    StorageHealth,
)
from .sqlite import SQLiteStorage

__all__ = [
    "ContextRecord",
    "EventRecord",
    "MessageRecord",
    "Mutation",
    "NotModified",
    "Plan",
    "RecordQuery",
    "SQLiteStorage",
    "SearchRecord",
    "Storage",
    "StorageHealth",
    "open_storage",
    "sqlite_path",
]


def sqlite_path(url: str) -> str:
    """The file of a ``sqlite:///relative/path`` or ``sqlite:////absolute/path`` URL."""
    parts = urlsplit(url)
    if parts.scheme != "sqlite" or parts.netloc or not parts.path.startswith("/"):
        raise ConfigurationError(
            f"not a SQLite URL: {url!r} (use sqlite:///relative.db or sqlite:////abs/path.db)"
        )
    path = unquote(parts.path[1:])
    if not path or path == ":memory:":
        raise ConfigurationError("SQLite storage needs a file path, not an in-memory database")
    return path


def open_storage(url: str, *, write_timeout: float) -> Storage:
    """The backend for `url`; not yet connected (call ``open()``)."""
    scheme = urlsplit(url).scheme
    if scheme == "sqlite":
        return SQLiteStorage(sqlite_path(url), write_timeout=write_timeout)
    if scheme in {"postgresql", "postgres"}:
        raise UnsupportedFormat(
            "the PostgreSQL backend is not part of this release yet; use a sqlite:/// URL"
        )
    raise UnsupportedFormat(f"unsupported database URL scheme {scheme!r} in {url!r}")
