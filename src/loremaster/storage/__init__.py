"""Persistence: the `Storage` protocol and its backends, chosen by database URL."""

from __future__ import annotations

from urllib.parse import urlsplit

from ..config import POSTGRES_SCHEMES, check_database_url, sqlite_file
from ..errors import ConfigurationError
from ._compact import message_fields, pack_message
from ._protocol import Storage
from ._schema import MigrationStatus
from ._types import (
    BranchPlan,
    BranchRecord,
    ContextRecord,
    ContextRows,
    Coordination,
    EventRecord,
    IdempotencyRecord,
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
    "ContextRows",
    "Coordination",
    "EventRecord",
    "IdempotencyRecord",
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
    "message_fields",
    "open_storage",
    "pack_message",
    "search_words",
    "sqlite_path",
]


def sqlite_path(url: str) -> str:
    """The file of a ``sqlite:///relative/path`` or ``sqlite:////absolute/path`` URL."""
    try:
        return sqlite_file(url).path
    except ValueError as exc:
        raise ConfigurationError(str(exc)) from exc


def open_storage(
    url: str, *, deadline: float, pool_size: int = 10, max_overflow: int = 10
) -> Storage:
    """The backend for `url`; not yet connected (call ``open()``).

    `deadline` is how long an operation may wait for the database before
    ``BackendUnavailable``; the pool settings apply to PostgreSQL. A SQLite URL may say
    ``?mode=ro`` or ``?immutable=1`` to open the file read-only.
    """
    try:
        check_database_url(url)  # UnsupportedFormat for another kind of database
        if urlsplit(url).scheme in POSTGRES_SCHEMES:
            return PostgresStorage(
                url, deadline=deadline, pool_size=pool_size, max_overflow=max_overflow
            )
        target = sqlite_file(url)
    except ValueError as exc:
        raise ConfigurationError(str(exc)) from exc
    return SQLiteStorage(
        target.path, write_timeout=deadline, read_only=target.read_only, immutable=target.immutable
    )
