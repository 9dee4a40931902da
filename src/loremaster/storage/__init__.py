"""Persistence: the `Storage` protocol and its backends, chosen by database URL."""

from __future__ import annotations

from urllib.parse import unquote, urlsplit

from ..errors import ConfigurationError, UnsupportedFormat
from ._migrations import MigrationStatus
from ._protocol import Storage
from ._types import (
    BranchPlan,
    BranchRecord,
    ContextRecord,
    Coordination,
    EventRecord,
    Lease,
    MessageRecord,
    Mutation,
    NewContext,
    NotModified,
    Piece,
    Plan,
    RecordQuery,
    SearchRecord,
    StorageHealth,
    VersionRecord,
    VersionState,
    search_words,
)
from .postgres import PostgresStorage
from .sqlite import SQLiteStorage

__all__ = [
    "BranchPlan",
    "BranchRecord",
    "ContextRecord",
    "Coordination",
    "EventRecord",
    "Lease",
    "MessageRecord",
    "MigrationStatus",
    "Mutation",
    "NewContext",
    "NotModified",
    "Piece",
    "Plan",
    "PostgresStorage",
    "RecordQuery",
    "SQLiteStorage",
    "SearchRecord",
    "Storage",
    "StorageHealth",
    "VersionRecord",
    "VersionState",
    "open_storage",
    "search_words",
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


def open_storage(
    url: str, *, deadline: float, pool_size: int = 10, max_overflow: int = 10
) -> Storage:
    """The backend for `url`; not yet connected (call ``open()``).

    `deadline` is how long an operation may wait for the database before
    ``BackendUnavailable``; the pool settings apply to PostgreSQL.
    """
    scheme = urlsplit(url).scheme
    if scheme == "sqlite":
        return SQLiteStorage(sqlite_path(url), write_timeout=deadline)
    if scheme in {"postgresql", "postgres"}:
        return PostgresStorage(
            url, deadline=deadline, pool_size=pool_size, max_overflow=max_overflow
        )
    raise UnsupportedFormat(
        f"unsupported database URL scheme {scheme!r} (use sqlite:/// or postgresql://)"
    )
