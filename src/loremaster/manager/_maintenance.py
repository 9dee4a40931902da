"""Retention: archive idle contexts, purge old soft-deleted ones, trim old events, forget
expired idempotency keys.

Run by `ContextManager.run_cleanup` and by the manager's background task, which holds a
lease in the database so that one process at a time does it, once per interval. Archives
and purges are changes like any other: the writer commits and announces them.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import socket
import time
import uuid
from collections.abc import Callable

from ..config import Settings
from ..document import Archive, check_purgeable
from ..errors import (
    ContextNotFound,
    DataCorrupted,
    LoremasterError,
    PayloadTooLarge,
    ValidationFailed,
)
from ..models import CleanupReport, ContextState
from ..storage import ContextRecord, Storage
from ._idempotency import KEY_SECONDS
from ._opened import OnStorage
from ._writer import Writer

__all__ = ["Retention", "maintenance_loop", "new_holder"]

log = logging.getLogger("loremaster.retention")

_BATCH = 500
_DAY = 86_400 * 1_000_000
RETENTION_LEASE = "retention"
STATISTICS_LEASE = "statistics"


def _now() -> int:
    return time.time_ns() // 1000


_ROW_ERRORS = (ValidationFailed, PayloadTooLarge, DataCorrupted, ContextNotFound)
"""Errors about one row; anything else (the backend is down) ends the pass."""

# Contexts over the version limit handled per retention pass; the next pass takes more.
_PRUNE_BATCH = 1000


class Retention(OnStorage):
    """Archiving, purging, trimming and version cleanup over one storage."""

    def __init__(self, storage: Callable[[], Storage], settings: Settings, writer: Writer) -> None:
        super().__init__(storage)
        self._settings = settings
        self._writer = writer

    async def run_cleanup(self, *, dry_run: bool) -> CleanupReport:
        """One retention pass; with `dry_run`, what it would do, doing nothing."""
        now = _now()
        settings = self._settings
        archived = await self._archive(now, dry_run)
        purged = await self._purge(now, dry_run)
        trimmed = 0
        if settings.event_retention_days is not None:
            before = now - int(settings.event_retention_days * _DAY)
            trimmed = await self._storage.trim_events(before, dry_run=dry_run)
        return CleanupReport(
            dry_run=dry_run,
            archived=archived,
            purged=purged,
            events_trimmed=trimmed,
            versions_pruned=await self._prune_versions(dry_run),
            idempotency_keys_purged=await self._storage.purge_idempotency_keys(
                KEY_SECONDS, dry_run=dry_run
            ),
        )

    async def _archive(self, now: int, dry_run: bool) -> list[str]:
        idle_before = now - int(self._settings.auto_archive_days * _DAY)
        archive = Archive(idle_before)
        archived: list[str] = []
        failed: set[str] = set()
        while True:
            found = await self._storage.contexts_idle_since(
                idle_before, state=ContextState.ACTIVE.value, limit=_BATCH + len(failed)
            )
            due = [context_id for context_id in found if context_id not in failed][:_BATCH]
            if dry_run or not due:
                return archived + due
            try:
                committed = await self._writer.commit_many(
                    dict.fromkeys(due, archive), user_id=None, guarded=False
                )
            except _ROW_ERRORS:
                # One context that cannot be archived must not hold up the others.
                committed = await self._one_by_one(due, archive)
            done = [cid for cid, row in committed.items() if row.state == ContextState.ARCHIVED]
            archived += done
            failed.update(set(due) - set(done))

    async def _one_by_one(
        self, context_ids: list[str], archive: Archive
    ) -> dict[str, ContextRecord]:
        committed = {}
        for context_id in context_ids:
            try:
                done = await self._writer.commit(context_id, archive, user_id=None, guarded=False)
                committed[context_id] = done.record
            except _ROW_ERRORS as exc:
                log.warning("retention: cannot archive %s: %s", context_id, exc)
        return committed

    async def _purge(self, now: int, dry_run: bool) -> list[str]:
        deleted_before = now - int(self._settings.deleted_retention_days * _DAY)
        due = await self._storage.contexts_idle_since(
            deleted_before, state=ContextState.DELETED.value, limit=10 * _BATCH
        )
        if dry_run:
            return due
        purged = []
        check = functools.partial(check_purgeable, deleted_before=deleted_before)
        for context_id in due:
            with contextlib.suppress(ContextNotFound, ValidationFailed):
                await self._writer.remove(context_id, check)
                purged.append(context_id)
        return purged

    async def _prune_versions(self, dry_run: bool) -> int:
        over = await self._storage.contexts_over_version_limit(
            self._settings.max_versions, self._settings.max_checkpoints, max_contexts=_PRUNE_BATCH
        )
        pruned = 0
        for context_id in over:
            try:
                pruned += await self._writer.prune(context_id, dry_run)
            except LoremasterError as exc:
                log.warning("version cleanup of context %s failed: %s", context_id, exc)
        return pruned

    async def run_due(self, holder: str) -> list[str]:
        """Refresh statistics and run retention if due and no other process is at it."""
        storage, settings = self._storage, self._settings
        ran: list[str] = []
        if await storage.acquire_lease(
            STATISTICS_LEASE, holder, ttl=600, every=settings.statistics_refresh_seconds
        ):
            finished = False
            try:
                await storage.statistics(refresh=True)
                finished = True
                ran.append(STATISTICS_LEASE)
            finally:
                await storage.release_lease(STATISTICS_LEASE, holder, finished=finished)
        if settings.auto_cleanup and await storage.acquire_lease(
            RETENTION_LEASE, holder, ttl=3600, every=settings.cleanup_interval * 3600
        ):
            finished = False
            try:
                report = await self.run_cleanup(dry_run=False)
                log.info("retention: %s", report.model_dump_json())
                finished = True
                ran.append(RETENTION_LEASE)
            finally:
                await storage.release_lease(RETENTION_LEASE, holder, finished=finished)
        return ran


def new_holder() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


async def maintenance_loop(retention: Retention, holder: str, poll_seconds: float) -> None:
    """Until cancelled: every poll interval, do what is due. Failures are logged, not fatal."""
    while True:
        await asyncio.sleep(poll_seconds)
        try:
            await retention.run_due(holder)
        except Exception:  # whatever failed, the next poll tries again
            log.exception("maintenance failed; will try again")
