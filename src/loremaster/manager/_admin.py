"""Running a database: moving it whole, retention, statistics, health, dictionaries."""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator, Iterable
from typing import Any

from ..__about__ import __version__
from .._storable import describe
from ..codec import train_dictionary
from ..errors import (
    BackendUnavailable,
    Issue,
    LoremasterError,
    NotInitialized,
    ValidationFailed,
)
from ..models import CleanupReport, ContextType
from . import _arguments as arg
from ._calls import call_statistics
from ._transfer import ImportReport, Progress, export_dump, import_dump, refuse_unless_administrator
from ._wiring import Core

__all__ = ["Admin"]

_LARGEST_DICTIONARY = 1 << 20


class Admin:
    def __init__(self, core: Core) -> None:
        self._core = core

    def export_full(self, user_id: str | None, progress: Progress | None) -> AsyncIterator[bytes]:
        refuse_unless_administrator(user_id, "export the whole database")
        return export_dump(
            self._core.storage,
            version_codec=self._core.versioning.codec,
            bodies=self._core.bodies,
            reload_dictionaries=self._core.history.load_dictionaries,
            progress=progress,
        )

    async def import_full(
        self,
        lines: Iterable[bytes] | AsyncIterable[bytes],
        user_id: str | None,
        skip_existing: bool,
        progress: Progress | None,
    ) -> ImportReport:
        refuse_unless_administrator(user_id, "import a full dump")
        return await import_dump(
            self._core.storage,
            lines,
            version_codec=self._core.versioning.codec,
            bodies=self._core.bodies,
            skip_existing=skip_existing,
            progress=progress,
        )

    async def stats(self, max_age: float | None) -> dict[str, Any]:
        core, settings = self._core, self._core.settings
        if max_age is None:
            max_age = settings.statistics_refresh_seconds + settings.maintenance_poll_seconds
        metrics = core.metrics.snapshot()
        metrics["cache"] |= {
            "entries": len(core.cache),
            "trusted": core.live.cache_trusted,
            "stale_serves": core.fallback.stale_serves,
        }
        return {
            "backend": core.storage.backend,
            **metrics,
            "translation_cache_entries": len(core.exports),
            "codec": core.codec.stats(),
            "storage": await self._storage_statistics(max_age),
            "calls": await call_statistics(core.storage, core.metrics),
        }

    async def _storage_statistics(self, max_age: float) -> dict[str, Any]:
        """The storage's figures; with the database unavailable, why not (the rest of the
        statistics, the stale serves among them, matter most then)."""
        try:
            return await self._core.storage.statistics(refresh=False, max_age=max_age)
        except BackendUnavailable as exc:
            return {"unavailable": str(exc)}

    async def cleanup(self, dry_run: bool) -> CleanupReport:
        if not isinstance(dry_run, bool):
            raise ValidationFailed(
                "dry_run is True or False", [Issue("/dry_run", describe(dry_run))]
            )
        return await self._core.retention.run_cleanup(dry_run=dry_run)

    async def run_due(self) -> list[str]:
        return await self._core.retention.run_due(self._core.holder)

    async def train(self, context_type: str, samples: int, size: int) -> int:
        if context_type != ContextType.CONVERSATION.value:
            raise ValidationFailed(
                "dictionaries are trained on message bodies, which only conversations hold",
                [Issue("/context_type", describe(context_type))],
            )
        arg.count(samples, "samples", lowest=1)
        if arg.count(size, "size", lowest=1) > _LARGEST_DICTIONARY:
            raise ValidationFailed(
                "a dictionary is 1 byte to 1 MiB", [Issue("/size", describe(size))]
            )
        storage, codec = self._core.storage, self._core.codec
        rows = await storage.sample_messages(samples)
        bodies = [self._core.bodies.unpack(row) for row in rows]
        data = train_dictionary(bodies, size)
        dictionary_id = await storage.save_dictionary(context_type, data, sample_count=len(bodies))
        codec.add_dictionary(dictionary_id, data)
        codec.dictionary_for[context_type] = dictionary_id
        return dictionary_id

    async def health(self) -> dict[str, Any]:
        try:
            storage = self._core.storage
            health = await storage.health()
        except NotInitialized as exc:
            return {"status": "unavailable", "version": __version__, "error": str(exc)}
        except LoremasterError as exc:
            if not self._core.fallback.enabled:
                return {"status": "unavailable", "version": __version__, "error": str(exc)}
            return {
                "status": "degraded",
                "version": __version__,
                "reason": f"reads are served from caches, stale: {exc}",
                "stale_serves": self._core.fallback.stale_serves,
            }
        return {
            "status": "ok",
            "version": __version__,
            "storage": {
                "backend": health.backend,
                "reachable": health.reachable,
                "schema_version": health.schema_version,
                "read_only": storage.read_only,
                **health.details,
            },
            "event_bus": self._core.live.health(),
        }
