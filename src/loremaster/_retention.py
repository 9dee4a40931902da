"""Retention: archive idle contexts, purge old soft-deleted ones, trim old events.

Run by `ContextManager.run_cleanup` and by the manager's background task, which holds a
lease in the database so that one process at a time does it, once per interval.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import logging
import os
import socket
import time
import uuid
from collections.abc import Awaitable, Callable

from ._changes import check_purgeable, plan_archive
from .config import Settings
from .errors import (
    ContextNotFound,
    DataCorrupted,
    LoremasterError,
    PayloadTooLarge,
    ValidationFailed,
)
from .models import CleanupReport, ContextState
from .storage import ContextRecord, Plan, Storage

__all__ = ["Hooks", "maintenance_loop", "new_holder", "run_cleanup", "run_due_maintenance"]

log = logging.getLogger("loremaster.retention")

_BATCH = 500
_DAY = 86_400 * 1_000_000
RETENTION_LEASE = "retention"
STATISTICS_LEASE = "statistics"


def _now() -> int:
    return time.time_ns() // 1000


async def _archive(
    storage: Storage, settings: Settings, now: int, dry_run: bool, hooks: Hooks
) -> list[str]:
    idle_before = now - int(settings.auto_archive_days * _DAY)
    plan = hooks.versioned(functools.partial(plan_archive, idle_before=idle_before, now=now))
    archived: list[str] = []
    failed: set[str] = set()
    while True:
        found = await storage.contexts_idle_since(
            idle_before, state=ContextState.ACTIVE.value, limit=_BATCH + len(failed)
        )
        due = [context_id for context_id in found if context_id not in failed][:_BATCH]
        if dry_run or not due:
            return archived + due
        try:
            committed = await storage.modify_contexts(dict.fromkeys(due, plan))
        except _ROW_ERRORS:
            # One context that cannot be archived must not hold up the others.
            committed = await _one_by_one(storage, due, plan)
        done = [cid for cid, row in committed.items() if row.state == ContextState.ARCHIVED]
        archived += done
        failed.update(set(due) - set(done))


_ROW_ERRORS = (ValidationFailed, PayloadTooLarge, DataCorrupted, ContextNotFound)
"""Errors about one row; anything else (the backend is down) ends the pass."""


async def _one_by_one(
    storage: Storage, context_ids: list[str], plan: Plan
) -> dict[str, ContextRecord]:
    committed = {}
    for context_id in context_ids:
        try:
            committed[context_id] = await storage.modify_context(context_id, plan)
        except _ROW_ERRORS as exc:
            log.warning("retention: cannot archive %s: %s", context_id, exc)
    return committed


async def _purge(storage: Storage, settings: Settings, now: int, dry_run: bool) -> list[str]:
    deleted_before = now - int(settings.deleted_retention_days * _DAY)
    due = await storage.contexts_idle_since(
        deleted_before, state=ContextState.DELETED.value, limit=10 * _BATCH
    )
    if dry_run:
        return due
    purged = []
    check = functools.partial(check_purgeable, deleted_before=deleted_before)
    for context_id in due:
        with contextlib.suppress(ContextNotFound, ValidationFailed):
            await storage.delete_context(context_id, check)
            purged.append(context_id)
    return purged


Prune = Callable[[str, bool], Awaitable[int]]
"""Removes a context's versions beyond CONTEXT_MAX_VERSIONS (or, dry run, counts them)."""


def _unchanged(plan: Plan) -> Plan:
    return plan


@dataclasses.dataclass(frozen=True, slots=True)
class Hooks:
    """What the manager adds to retention: versioning bookkeeping on the changes it makes
    (archiving) and the cleanup of old versions."""

    versioned: Callable[[Plan], Plan] = _unchanged
    prune: Prune | None = None


_NO_HOOKS = Hooks()

# Contexts over the version limit handled per retention pass; the next pass takes more.
_PRUNE_BATCH = 1000


async def _prune_versions(storage: Storage, settings: Settings, prune: Prune, dry_run: bool) -> int:
    over = await storage.contexts_over_version_limit(
        settings.max_versions, settings.max_checkpoints, max_contexts=_PRUNE_BATCH
    )
    pruned = 0
    for context_id in over:
        try:
            pruned += await prune(context_id, dry_run)
        except LoremasterError as exc:
            log.warning("version cleanup of context %s failed: %s", context_id, exc)
    return pruned


async def run_cleanup(
    storage: Storage, settings: Settings, *, dry_run: bool, hooks: Hooks = _NO_HOOKS
) -> CleanupReport:
    """One retention pass; with `dry_run`, what it would do, doing nothing."""
    now = _now()
    archived = await _archive(storage, settings, now, dry_run, hooks)
    purged = await _purge(storage, settings, now, dry_run)
    trimmed = 0
    if settings.event_retention_days is not None:
        before = now - int(settings.event_retention_days * _DAY)
        trimmed = await storage.trim_events(before, dry_run=dry_run)
    pruned = 0
    if hooks.prune is not None:
        pruned = await _prune_versions(storage, settings, hooks.prune, dry_run)
    return CleanupReport(
        dry_run=dry_run,
        archived=archived,
        purged=purged,
        events_trimmed=trimmed,
        versions_pruned=pruned,
    )


async def run_due_maintenance(
    storage: Storage, settings: Settings, holder: str, hooks: Hooks = _NO_HOOKS
) -> list[str]:
    """Refresh statistics and run retention if due and no other process is at it."""
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
            report = await run_cleanup(storage, settings, dry_run=False, hooks=hooks)
            log.info("retention: %s", report.model_dump_json())
            finished = True
            ran.append(RETENTION_LEASE)
        finally:
            await storage.release_lease(RETENTION_LEASE, holder, finished=finished)
    return ran


def new_holder() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


async def maintenance_loop(
    storage: Storage, settings: Settings, holder: str, hooks: Hooks = _NO_HOOKS
) -> None:
    """Until cancelled: every poll interval, do what is due. Failures are logged, not fatal."""
    while True:
        await asyncio.sleep(settings.maintenance_poll_seconds)
        try:
            await run_due_maintenance(storage, settings, holder, hooks)
        except Exception:  # whatever failed, the next poll tries again
            log.exception("maintenance failed; will try again")
