"""What a `ContextManager` does to run its database, apart from its contexts: its
lifecycle, moving a whole database, retention, statistics, health and dictionaries.
`ContextManager` inherits it; like the rest of the facade, each method hands the call on.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator, Iterable
from types import TracebackType
from typing import Any, Self

from ..models import CleanupReport
from ..storage import MigrationStatus, Storage
from ._admin import Admin
from ._metrics import measured
from ._transfer import ImportReport, Progress
from ._wiring import Core

__all__ = ["Running"]


class Running:
    """The lifecycle and the administration of a manager (see `ContextManager`)."""

    _core: Core
    _admin: Admin

    async def initialize(self, *, migrate: bool = True, create: bool = True) -> None:
        """Connect to storage, apply pending schema migrations (unless ``migrate=False``:
        then check `migration_status()` before relying on the schema) and start the
        background maintenance task (not on a read-only database). With ``create=False``
        a SQLite file that does not exist is ``DatabaseNotFound`` rather than made.
        Idempotent."""
        await self._core.open(migrate=migrate, create=create)

    async def close(self) -> None:
        """Stop the background task and close the storage connections. Idempotent."""
        await self._core.close()

    async def __aenter__(self) -> Self:
        await self.initialize()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

    @property
    def storage(self) -> Storage:
        return self._core.storage

    def export_full(
        self, user_id: str | None = None, *, progress: Progress | None = None
    ) -> AsyncIterator[bytes]:
        """Every context with everything stored of it — the row as stored, the messages
        of every branch, every branch, version and event — as the lines of a full dump
        (JSON Lines, each ending in a newline; see docs/cli.md), read one context at a
        time. `progress` is called after each context with the contexts and bytes so
        far. An administrator's operation: `PermissionDenied` for any `user_id`."""
        return self._admin.export_full(user_id, progress)

    @measured
    async def import_full(
        self,
        lines: Iterable[bytes] | AsyncIterable[bytes],
        user_id: str | None = None,
        *,
        skip_existing: bool = False,
        progress: Progress | None = None,
    ) -> ImportReport:
        """Store every context of a full dump (the lines `export_full` wrote, read one at
        a time) exactly as it was exported: each context in one transaction, checked
        (digest, checksums, every version rebuilt) before it is written and read back
        after. A context whose id exists stops the import (`ValidationFailed`) unless
        `skip_existing`. An administrator's operation: `PermissionDenied` for any
        `user_id`."""
        return await self._admin.import_full(lines, user_id, skip_existing, progress)

    async def get_performance_stats(self, *, max_age: float | None = None) -> dict[str, Any]:
        """Counts and latency percentiles per operation, the cache's hit rate, and the
        storage statistics (contexts, sizes and messages by type and state), at most
        `max_age` seconds old (default: one CONTEXT_STATISTICS_REFRESH_SECONDS and
        poll; 0 counts them now). PostgreSQL reads its statistics view while the view is
        that fresh, and counts the contexts table when it is not."""
        return await self._admin.stats(max_age)

    async def refresh_statistics(self) -> dict[str, Any]:
        """Recompute the storage statistics now (PostgreSQL refreshes its materialized
        view; the background task also does so every CONTEXT_STATISTICS_REFRESH_SECONDS)."""
        return await self.storage.statistics(refresh=True)

    @measured
    async def run_cleanup(self, dry_run: bool = False) -> CleanupReport:
        """One retention pass now: archive contexts idle for CONTEXT_AUTO_ARCHIVE_DAYS,
        remove soft-deleted ones past CONTEXT_DELETED_RETENTION_DAYS, trim events older
        than CONTEXT_EVENT_RETENTION_DAYS (each context keeps its latest)."""
        return await self._admin.cleanup(dry_run)

    async def run_due_maintenance(self) -> list[str]:
        """What the background task does each poll: refresh statistics and run retention
        when due, unless another process holds the lease. Returns what it ran."""
        return await self._admin.run_due()

    @measured
    async def train_dictionary(
        self, context_type: str = "conversation", samples: int = 2000, size: int = 16 * 1024
    ) -> int:
        """Train a zstd dictionary on up to `samples` stored message bodies, store it and
        use it from now on for bodies stored through the codec; returns its id. Blobs keep
        naming the dictionary they were made with, so older ones stay readable."""
        return await self._admin.train(context_type, samples, size)

    async def migration_status(self) -> MigrationStatus:
        """The schema migrations applied (with when) and pending."""
        return await self.storage.migration_status()

    async def health_check(self) -> dict[str, Any]:
        """Whether storage answers, its schema version and sizes. Never raises."""
        return await self._admin.health()
