"""The reader: a context's row as a user may see it, from the caches when they are known to
be current, else from storage; the messages of a view; and, while the database is
unavailable, what this process has seen, marked stale (see `_fallback`)."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable

from ..config import Settings
from ..document import authorize, context_from_record, verify_checksum
from ..errors import BackendUnavailable, ContextNotFound
from ..models import Context, ContextState, MessageList, Permission
from ..storage import ContextRecord, NotModified, Piece, Storage, VersionRecord
from ..sync import Live, RecordCache
from ..versioning import History, branch_view, view_of
from ._arguments import text, user
from ._fallback import Fallback, Served
from ._metrics import Metrics
from ._opened import OnStorage
from ._writer import Writer, now

__all__ = ["Reader"]

log = logging.getLogger("loremaster")

_TRUSTED_FOR = 5.0  # seconds a cached row is served unchecked while every change is heard


class Reader(OnStorage):
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
        fallback: Fallback,
    ) -> None:
        super().__init__(storage)
        self._settings = settings
        self._cache = cache
        self._live = live
        self._history = history
        self._writer = writer
        self._metrics = metrics
        self._fallback = fallback

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
        if recent is not None:
            self._metrics.cache_lookup(hit=True)
            return recent
        cached = self._cache.get(context_id)
        if cached is None and self._live.rows is not None:
            cached = await self._live.rows.get(context_id)
        known = None if cached is None else (cached.revision, cached.last_modified)
        served: Served[ContextRecord | NotModified | None] = await self._fallback.read(
            lambda: self._storage.load_context(context_id, known),
            cached or self._cache.last_known(context_id),
        )
        loaded = served.value
        if served.stale and isinstance(loaded, ContextRecord):
            return dataclasses.replace(loaded, stale=True)
        self._metrics.cache_lookup(isinstance(loaded, NotModified))
        if isinstance(loaded, NotModified):
            assert cached is not None
            self._cache.put(cached)  # checked against storage just now (it may come from L2)
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
        """The context as `branch` sees it (a branch's row needs the database)."""
        if text(branch, "branch") == "main":
            return record
        return branch_view(record, await self._history.branch(record.context_id, branch))

    async def messages(self, record: ContextRecord) -> MessageList:
        """Every message the record (a branch's view) shows."""
        if not record.message_count:
            return MessageList(stale=record.stale)
        view = view_of(record.versioning, record.message_count)
        return await self.view_messages(record.context_id, view)

    async def view_messages(
        self,
        context_id: str,
        view: tuple[Piece, ...],
        *,
        limit: int | None = None,
        before_seq: int | None = None,
    ) -> MessageList:
        """The messages of `view` (the last `limit` before `before_seq`, if given); while
        the database is unavailable, those this process read last, stale."""
        history = self._history

        async def load() -> MessageList:
            rows = await history.message_rows(context_id, view, limit=limit, before_seq=before_seq)
            return MessageList(await history.messages(rows))

        kept = self._fallback.messages
        key = (context_id, view, limit, before_seq)
        served = await self._fallback.read(load, kept.get(key) or self._from_whole(key))
        if not served.stale:
            kept.put(key, served.value, len(served.value) + 1)
        return MessageList(served.value, stale=served.stale)

    def _from_whole(
        self, key: tuple[str, tuple[Piece, ...], int | None, int | None]
    ) -> MessageList | None:
        """A page cut from the whole view, if that was read."""
        context_id, view, limit, before_seq = key
        whole: MessageList | None = self._fallback.messages.get((context_id, view, None, None))
        if whole is None or limit is None:
            return whole
        shown = [m for m in whole if before_seq is None or (m.seq or 0) < before_seq]
        return MessageList(shown[-limit:])

    async def version(
        self, context_id: str, version_id: str
    ) -> tuple[VersionRecord, dict[str, object], bool]:
        """A version and its fields, and whether they came from what this process rebuilt
        before (the database being unavailable)."""
        kept = self._fallback.versions
        served = await self._fallback.read(
            lambda: self._history.version(context_id, version_id),
            kept.get((context_id, version_id)),
        )
        if not served.stale:
            kept.put((context_id, version_id), served.value, 1)
        version, document = served.value
        return version, document, served.stale

    async def touch(self, record: ContextRecord) -> None:
        """Note the access (at most once per CONTEXT_ACCESS_TOUCH_SECONDS). A read never
        fails for it: with the database unavailable, the note is skipped."""
        if self._storage.read_only or record.stale:  # a read must work without writing
            return
        moment = now()
        interval = int(self._settings.access_touch_seconds * 1_000_000)
        if moment - record.last_accessed < interval:
            return
        try:
            await self._storage.touch(record.context_id, when=moment, not_since=moment - interval)
        except BackendUnavailable as exc:
            log.warning("access to %s not noted: %s", record.context_id, exc)
            return
        self._cache.discard(record.context_id)
        if self._live.rows is not None:
            await self._live.rows.discard(record.context_id)

    async def context(self, record: ContextRecord, *, with_messages: bool) -> Context:
        """The model of `record`, with its messages if asked; stale if either was."""
        if not with_messages:
            return context_from_record(record)
        messages = await self.messages(record)
        if messages.stale and not record.stale:
            record = dataclasses.replace(record, stale=True)
        return context_from_record(record, messages)

    async def get_context(
        self, context_id: str, user_id: str | None = None, *, include_messages: bool = True
    ) -> Context:
        """A context as `user_id` may read it, for the services that look others up
        (validation reads a session's conversations): no access is noted, nothing
        counted."""
        record = await self.readable(context_id, user_id)
        return await self.context(record, with_messages=include_messages)
