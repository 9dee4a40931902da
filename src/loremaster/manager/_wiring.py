"""Settings to services: what one `ContextManager` is made of, and its lifecycle."""

from __future__ import annotations

import asyncio
import logging

from ..codec import Codec
from ..config import Settings
from ..document import MessageBodies
from ..errors import NotInitialized
from ..storage import Storage, open_storage
from ..sync import Live, RecordCache, StaleBase
from ..translation import ContextTranslator, ExportCache
from ..validation import ContextValidator
from ..versioning import History, Versioning, VersionPolicy
from ._fallback import Fallback
from ._idempotency import Idempotency
from ._maintenance import Retention, maintenance_loop, new_holder
from ._metrics import Metrics
from ._reader import Reader
from ._writer import Writer

__all__ = ["Core"]

log = logging.getLogger("loremaster")

_VERSION_PAYLOAD_LIMIT = 1 << 30
_EXPORT_CACHE_SIZE = 256


class Core:
    """The services of one manager, wired from its settings."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._storage: Storage = open_storage(
            settings.database_url,
            deadline=settings.sync_timeout,
            pool_size=settings.pool_size,
            max_overflow=settings.pool_max_overflow,
        )
        self.codec = Codec.from_settings(settings)
        self.validator = ContextValidator(
            enable_auto_correction=False, settings=settings, check_size=False
        )
        self.bodies = MessageBodies(self.codec, settings.codec_threshold_bytes)
        # Versions keep whole documents, which may outgrow a since-lowered size limit.
        version_codec = Codec.from_settings(settings)
        version_codec.max_size = max(_VERSION_PAYLOAD_LIMIT, settings.max_size_bytes)
        self.versioning = Versioning(version_codec, VersionPolicy.from_settings(settings))
        self.history = History(self._storage, version_codec, self.bodies)
        self.translator = ContextTranslator(settings)
        self.exports = ExportCache(_EXPORT_CACHE_SIZE)
        self.cache = RecordCache(settings.cache_size, settings.cache_ttl)
        self.live = Live(settings, self.cache)
        self.stale = StaleBase(self._storage, self.history)
        self.metrics = Metrics()
        self.fallback = Fallback(settings.cache_fallback, lambda: self._storage.trouble)
        self.writer = Writer(
            lambda: self.storage,
            settings,
            versioning=self.versioning,
            history=self.history,
            bodies=self.bodies,
            cache=self.cache,
            live=self.live,
        )
        self.reader = Reader(
            lambda: self.storage,
            settings,
            cache=self.cache,
            live=self.live,
            history=self.history,
            writer=self.writer,
            metrics=self.metrics,
            fallback=self.fallback,
        )
        self.retention = Retention(lambda: self.storage, settings, self.writer)
        self.idempotency = Idempotency(lambda: self.storage)
        self.holder = new_holder()
        self._initialized = False
        self._maintenance: asyncio.Task[None] | None = None

    @property
    def storage(self) -> Storage:
        if not self._initialized:
            raise NotInitialized()
        return self._storage

    async def open(self, *, migrate: bool, create: bool) -> None:
        if self._initialized:
            return
        try:
            await self._storage.open(create=create)
            if migrate:
                status = await self._storage.migrate()
            else:
                status = await self._storage.migration_status()
            if not status.pending:
                await self.history.load_dictionaries()
        except BaseException:
            await self._storage.close()
            raise
        self._initialized = True
        await self.live.start()
        if migrate and not self._storage.read_only:
            self._maintenance = asyncio.create_task(
                maintenance_loop(
                    self.retention, self.holder, self.settings.maintenance_poll_seconds
                ),
                name="loremaster-maintenance",
            )

    async def close(self) -> None:
        task, self._maintenance = self._maintenance, None
        try:
            if task is not None:
                task.cancel()
                # wait() does not raise the task's outcome; a cancellation of close() itself
                # still propagates.
                await asyncio.wait({task})
                if not task.cancelled() and task.exception() is not None:
                    log.warning("maintenance task ended with %r", task.exception())
        finally:
            await self.live.close()
            if self._initialized:
                self._initialized = False
                await self._storage.close()
