"""The reader: a context's row as a user may see it, from the caches when they are known to
be current, else from storage; and the messages of a branch's view."""

from __future__ import annotations

from collections.abc import Callable

from ..config import Settings
from ..document import authorize, context_from_record, verify_checksum
from ..errors import ContextNotFound
from ..models import Context, ContextState, Message, Permission
from ..storage import ContextRecord, NotModified, Storage
from ..sync import Live, RecordCache
from ..versioning import History, branch_view, view_of
from ._arguments import text, user
from ._metrics import Metrics
from ._writer import Writer, now

__all__ = ["Reader"]

_TRUSTED_FOR = 5.0  # seconds a cached row is served unchecked while every change is heard


class Reader:
    def __init__(
        self,
        storage: Callable[[], Storage],
        settings: Settings,
        *,
        cache: RecordCache,
        live: Live,
        history: History,
        writer: Writer,
        metrics: Metrics,
    ) -> None:
        self._open_storage = storage
        self._settings = settings
        self._cache = cache
        self._live = live
        self._history = history
        self._writer = writer
        self._metrics = metrics

    @property
    def _storage(self) -> Storage:
        """The storage, once the manager is initialized (`NotInitialized` before)."""
        return self._open_storage()

    async def readable(
        self,
        context_id: str,
        user_id: str | None,
        *,
        include_deleted: bool = False,
        fresh: bool = False,
    ) -> ContextRecord:
        """The context's row if `user_id` may read it (`ContextNotFound` otherwise, as for
        a context that does not exist). `fresh`: checked against storage even while the
        cache is trusted (for a call that found the context had moved on)."""
        user(user_id)
        record = await self._current(context_id, fresh)
        authorize(record, user_id, Permission.READ)
        if record.state == ContextState.DELETED and not include_deleted:
            raise ContextNotFound(context_id)
        return record

    async def _current(self, context_id: str, fresh: bool) -> ContextRecord:
        # While every change is heard, a recently cached row is current; an older one is
        # checked, in case an announcement was lost (its writer could not reach Redis).
        trusted = self._live.cache_trusted and not fresh
        recent = self._cache.fresh(context_id, _TRUSTED_FOR) if trusted else None
        cached = recent or self._cache.get(context_id)
        if cached is None and self._live.rows is not None:
            cached = await self._live.rows.get(context_id)
        loaded: ContextRecord | NotModified | None = NotModified()
        if recent is None:
            loaded = await self._storage.load_context(
                context_id, None if cached is None else (cached.revision, cached.last_modified)
            )
        self._metrics.cache_lookup(isinstance(loaded, NotModified))
        if isinstance(loaded, NotModified):
            assert cached is not None
            if recent is None:  # checked against storage just now (it may come from L2)
                self._cache.put(cached)
            return cached
        if loaded is None:
            self._cache.discard(context_id)
            raise ContextNotFound(context_id)
        record = self.verified(loaded)
        await self._writer.remember(record)
        return record

    def verified(self, record: ContextRecord) -> ContextRecord:
        return verify_checksum(record) if self._settings.enable_validation else record

    async def on_branch(self, record: ContextRecord, branch: str) -> ContextRecord:
        """The context as `branch` sees it."""
        if text(branch, "branch") == "main":
            return record
        return branch_view(record, await self._history.branch(record.context_id, branch))

    async def messages(self, record: ContextRecord) -> list[Message]:
        """Every message the record (a branch's view) shows."""
        if not record.message_count:
            return []
        view = view_of(record.versioning, record.message_count)
        return await self._history.messages(
            await self._history.message_rows(record.context_id, view)
        )

    async def touch(self, record: ContextRecord) -> None:
        """Note the access (at most once per CONTEXT_ACCESS_TOUCH_SECONDS)."""
        if self._storage.read_only:  # a read must work where nothing can be written
            return
        moment = now()
        interval = int(self._settings.access_touch_seconds * 1_000_000)
        if moment - record.last_accessed >= interval:
            await self._storage.touch(record.context_id, when=moment, not_since=moment - interval)
            self._cache.discard(record.context_id)
            if self._live.rows is not None:
                await self._live.rows.discard(record.context_id)

    async def get_context(
        self, context_id: str, user_id: str | None = None, *, include_messages: bool = True
    ) -> Context:
        """A context as `user_id` may read it, for the services that look others up
        (validation reads a session's conversations): no access is noted, nothing
        counted."""
        record = await self.readable(context_id, user_id)
        messages = await self.messages(record) if include_messages else []
        return context_from_record(record, messages)
