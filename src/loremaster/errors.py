"""Every error loremaster raises on purpose.

Runtime failures a caller can handle derive from `LoremasterError`; the server maps each
branch to one HTTP status and the CLI to a one-line message with exit code 1::

    LoremasterError
    ├── ContextNotFound          404  no such context (or it was deleted)
    │   ├── VersionNotFound               no such version of the context
    │   └── BranchNotFound                no such branch of the context
    ├── PermissionDenied         403  the user may not do this
    ├── RevisionConflict         409  expected_revision is stale
    ├── LockHeld                 423  another user holds the edit lock
    │   └── LockLost                      the caller's own lock expired or was taken over
    ├── ValidationFailed         422  the input is not a valid context, message or patch
    ├── IdempotencyInProgress    409  another request holds the idempotency key, unfinished
    ├── IdempotencyMismatch      422  the idempotency key was used for a different request
    ├── PayloadTooLarge          413  the write would exceed CONTEXT_MAX_SIZE_MB
    ├── UnsupportedFormat        415  a URL scheme, file or blob loremaster cannot read
    │   └── UntrustedPayload          a pickle without a valid signature: never loaded
    ├── DataCorrupted            422  stored bytes fail their checksum or do not decode
    ├── BackendUnavailable       503  the database (or Redis) cannot be reached
    ├── ReadOnlyDatabase         403  a write to a database opened read-only: never retried
    └── ConfigurationError       --   a setting or constructor argument is invalid
        └── DatabaseNotFound              opened not to create: no such database file

Mistakes of the programmer are kept apart, under `RuntimeError`::

    UsageError
    └── NotInitialized           a manager used before `initialize()` / `async with`

Errors of the libraries underneath (sqlite3, pydantic, jsonpatch) are translated at the
boundary with ``raise OurError(...) from exc``; they never leak out of the public API.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

__all__ = [
    "BackendUnavailable",
    "BranchNotFound",
    "ConfigurationError",
    "ContextNotFound",
    "DataCorrupted",
    "DatabaseNotFound",
    "IdempotencyInProgress",
    "IdempotencyMismatch",
    "Issue",
    "LockHeld",
    "LockLost",
    "LoremasterError",
    "NotInitialized",
    "PayloadTooLarge",
    "PermissionDenied",
    "ReadOnlyDatabase",
    "RevisionConflict",
    "UnsupportedFormat",
    "UntrustedPayload",
    "UsageError",
    "ValidationFailed",
    "VersionNotFound",
]


class LoremasterError(Exception):
    """Base class of every runtime error loremaster raises."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ContextNotFound(LoremasterError):
    def __init__(self, context_id: str) -> None:
        super().__init__(f"context {context_id} not found")
        self.context_id = context_id


class VersionNotFound(ContextNotFound):
    def __init__(self, context_id: str, version_id: str) -> None:
        LoremasterError.__init__(self, f"version {version_id} of context {context_id} not found")
        self.context_id = context_id
        self.version_id = version_id


class BranchNotFound(ContextNotFound):
    def __init__(self, context_id: str, branch: str) -> None:
        LoremasterError.__init__(self, f"branch {branch!r} of context {context_id} not found")
        self.context_id = context_id
        self.branch = branch


class PermissionDenied(LoremasterError):
    """The user lacks the permission; the message never reveals the context's content."""

    def __init__(self, user_id: str, action: str, context_id: str) -> None:
        super().__init__(f"user {user_id!r} may not {action} context {context_id}")
        self.user_id = user_id
        self.action = action
        self.context_id = context_id


class RevisionConflict(LoremasterError):
    """The context is not at the revision the write expected; `paths` are the fields a
    stale update and the changes since both set differently, when settling found some."""

    def __init__(
        self, context_id: str, expected: int, actual: int, paths: Sequence[str] = ()
    ) -> None:
        message = f"context {context_id} is at revision {actual}, not the expected {expected}"
        if paths:
            message += f"; conflicting paths: {', '.join(p or '/' for p in paths)}"
        super().__init__(message)
        self.context_id = context_id
        self.expected_revision = expected
        self.actual_revision = actual
        self.paths: tuple[str, ...] = tuple(paths)


class LockHeld(LoremasterError):
    def __init__(self, context_id: str, holder: str) -> None:
        super().__init__(f"context {context_id} is locked by {holder!r}")
        self.context_id = context_id
        self.holder = holder


class LockLost(LockHeld):
    """The caller held the lock, but its lease expired (or another took it over since):
    the write is refused even though the caller believed it still held the lock."""

    def __init__(self, context_id: str, holder: str, token: int) -> None:
        LoremasterError.__init__(
            self, f"{holder!r} no longer holds the lock on context {context_id} (token {token})"
        )
        self.context_id = context_id
        self.holder = holder
        self.token = token


@dataclass(frozen=True)
class Issue:
    """One problem found in an input: where (a JSON pointer), what, and its stable code
    when validation found it (see docs/validation.md)."""

    path: str
    message: str
    code: str = ""


class ValidationFailed(LoremasterError):
    """The input is not valid; `issues` says where and why, one entry per problem."""

    def __init__(self, message: str, issues: Sequence[Issue] = ()) -> None:
        details = "; ".join(f"{i.path or '/'}: {i.message}" for i in issues[:5])
        super().__init__(f"{message}: {details}" if details else message)
        self.issues: tuple[Issue, ...] = tuple(issues)


class IdempotencyInProgress(LoremasterError):
    """Another request claimed the idempotency key and has not finished: try again later.
    A claim whose process died answers so until the key expires, so that a retry never
    writes twice."""

    def __init__(self, key: str) -> None:
        super().__init__(f"a request with idempotency key {key!r} is still in progress")
        self.key = key


class IdempotencyMismatch(LoremasterError):
    """The idempotency key was first used for a request with another fingerprint."""

    def __init__(self, key: str) -> None:
        super().__init__(f"idempotency key {key!r} was used for a different request")
        self.key = key


class PayloadTooLarge(LoremasterError):
    def __init__(self, size_bytes: int, limit_bytes: int) -> None:
        super().__init__(
            f"the write would make the context {size_bytes:,} bytes, "
            f"over the limit of {limit_bytes:,} bytes (CONTEXT_MAX_SIZE_MB)"
        )
        self.size_bytes = size_bytes
        self.limit_bytes = limit_bytes


class UnsupportedFormat(LoremasterError):
    pass


class UntrustedPayload(UnsupportedFormat):
    pass


class DataCorrupted(LoremasterError):
    pass


class BackendUnavailable(LoremasterError):
    pass


class ReadOnlyDatabase(LoremasterError):
    """The database only reads (a ``?mode=ro`` or ``?immutable=1`` SQLite URL, a file or
    folder this process may not write, a PostgreSQL standby): every write is refused at
    once, without retrying; reads work."""


class ConfigurationError(LoremasterError):
    pass


class DatabaseNotFound(ConfigurationError):
    """The database URL names no database, and the manager was told not to create one
    (``initialize(create=False)``; PostgreSQL never creates databases)."""


class UsageError(RuntimeError):
    """A mistake in the calling code, not a condition to handle at run time."""


class NotInitialized(UsageError):
    def __init__(self) -> None:
        super().__init__(
            "the ContextManager is not initialized: call `await manager.initialize()` "
            "or use `async with ContextManager(...) as manager`"
        )
