"""`ContextManager`: the one entry point of the library, the server and the CLI.

It checks permissions, runs each operation as one storage transaction and converts between
models and rows; the rules themselves live in `_changes`, `_access` and `_records`.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Mapping, Sequence
from types import TracebackType
from typing import Any, Self

from ._access import authorize
from ._cache import RecordCache
from ._changes import (
    parse_messages,
    plan_append,
    plan_create,
    plan_delete,
    plan_restore,
    plan_update,
)
from ._metrics import Metrics
from ._records import (
    MessageBodies,
    best_hits,
    canonical_id,
    context_from_record,
    event_from_record,
    message_from_record,
    next_cursor,
    parse_context,
    parse_query,
    record_query,
    verify_checksum,
    with_owner,
)
from ._retention import maintenance_loop, new_holder, run_cleanup, run_due_maintenance
from ._version import __version__
from .codec import Codec, train_dictionary
from .config import Settings, load_settings
from .errors import (
    ContextNotFound,
    Issue,
    LoremasterError,
    NotInitialized,
    UnsupportedFormat,
    ValidationFailed,
)
from .models import (
    CleanupReport,
    Context,
    ContextEvent,
    ContextPage,
    ContextQuery,
    ContextState,
    ContextType,
    Message,
    Permission,
    SearchHit,
)
from .storage import (
    ContextRecord,
    MessageRecord,
    MigrationStatus,
    NotModified,
    Plan,
    Storage,
    open_storage,
)
from .validation import ContextValidator, ValidationResult

__all__ = ["ContextManager"]

log = logging.getLogger("loremaster")

MessageInput = Message | Mapping[str, Any]
Changes = Mapping[str, Any] | Sequence[Mapping[str, Any]]


def _now() -> int:
    return time.time_ns() // 1000


class ContextManager:
    """Durable, versioned, shareable contexts.

    >>> async with ContextManager("sqlite:///campaign.db") as cm:   # doctest: +SKIP
    ...     context_id = await cm.create_context(ConversationContext(title="Session 1"))

    With no `database_url` the setting ``CONTEXT_DATABASE_URL`` applies, and without that
    the embedded SQLite file ``./loremaster.db``. Keyword arguments override any setting.
    """

    def __init__(
        self,
        database_url: str | None = None,
        redis_url: str | None = None,
        *,
        settings: Settings | None = None,
        **overrides: Any,
    ) -> None:
        self.settings = load_settings(
            settings, database_url=database_url, redis_url=redis_url, **overrides
        )
        self._storage: Storage = open_storage(
            self.settings.database_url,
            deadline=self.settings.sync_timeout,
            pool_size=self.settings.pool_size,
            max_overflow=self.settings.pool_max_overflow,
        )
        self.codec = Codec.from_settings(self.settings)
        self.validator = ContextValidator(
            enable_auto_correction=False, settings=self.settings, check_size=False
        )
        self._bodies = MessageBodies(self.codec, self.settings.codec_threshold_bytes)
        self._cache = RecordCache(self.settings.cache_size, self.settings.cache_ttl)
        self._metrics = Metrics()
        self._initialized = False
        self._holder = new_holder()
        self._maintenance: asyncio.Task[None] | None = None

    # -- lifecycle -----------------------------------------------------------------------

    async def initialize(self, *, migrate: bool = True) -> None:
        """Connect to storage, apply pending schema migrations (unless ``migrate=False``)
        and start the background maintenance task. Idempotent."""
        if self._initialized:
            return
        try:
            await self._storage.open()
            if migrate:
                await self._storage.migrate()
                await self._load_dictionaries()
        except BaseException:
            await self._storage.close()
            raise
        self._initialized = True
        if migrate:
            self._maintenance = asyncio.create_task(
                maintenance_loop(self._storage, self.settings, self._holder),
                name="loremaster-maintenance",
            )

    async def close(self) -> None:
        """Stop the background task and close the storage connections. Idempotent."""
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
            if self._initialized:
                self._initialized = False
                await self._storage.close()

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
        if not self._initialized:
            raise NotInitialized()
        return self._storage

    # -- contexts ------------------------------------------------------------------------

    async def create_context(
        self, context: Context | Mapping[str, Any], user_id: str | None = None
    ) -> str:
        """Store a new context; `user_id` becomes its owner unless it names one.

        Returns the context id.
        """
        with self._metrics.measure("create_context"):
            return (await self._create([context], user_id))[0]

    async def create_contexts(
        self, contexts: Sequence[Context | Mapping[str, Any]], user_id: str | None = None
    ) -> list[str]:
        """Store many new contexts in one transaction (all or none); their ids, in order."""
        with self._metrics.measure("create_contexts"):
            return await self._create(contexts, user_id)

    async def _create(
        self, contexts: Sequence[Context | Mapping[str, Any]], user_id: str | None
    ) -> list[str]:
        models = [with_owner(parse_context(context), user_id) for context in contexts]
        if self.settings.enable_validation:
            for model in models:
                result = await self.validator.validate_context(model, manager=self, user_id=user_id)
                _refuse_invalid(result)
        now = _now()
        created = [
            plan_create(
                model,
                user_id=user_id,
                now=now,
                max_bytes=self.settings.max_size_bytes,
                bodies=self._bodies,
            )
            for model in models
        ]
        if created:
            await self.storage.insert_contexts(created)
        for new in created:
            self._cache.put(new.record)
        return [new.record.context_id for new in created]

    async def get_context(
        self,
        context_id: str,
        user_id: str | None = None,
        *,
        include_messages: bool = True,
        include_deleted: bool = False,
    ) -> Context:
        """The context as its typed model; a conversation comes with all its messages
        unless ``include_messages=False`` (then page them with `get_messages`)."""
        with self._metrics.measure("get_context"):
            context_id = canonical_id(context_id)
            record = await self._readable(context_id, user_id, include_deleted=include_deleted)
            messages: list[Message] = []
            if include_messages and record.message_count:
                rows = await self.storage.load_messages(
                    context_id, branch="main", limit=None, before_seq=record.message_count + 1
                )
                messages = await self._messages(rows)
            await self._touch(record)
            return context_from_record(record, messages)

    async def update_context(
        self,
        context_id: str,
        changes: Changes,
        user_id: str | None = None,
        expected_revision: int | None = None,
        sync: bool = True,
    ) -> Context:
        """Apply `changes` and return the context as committed (without its messages).

        A dict is an RFC 7396 merge patch over the context's fields (nested objects merge,
        None removes a key); a list is RFC 6902 JSON Patch operations. With
        `expected_revision`, a context that has moved on raises `RevisionConflict` and
        nothing is written. `sync` is reserved for the real-time event bus; today every
        committed change is recorded in the event log (`get_events`) either way.
        """
        with self._metrics.measure("update_context"):
            context_id = canonical_id(context_id)
            check = self._check_update if self.settings.enable_validation else None
            plan = functools.partial(
                plan_update,
                changes=changes,
                user_id=user_id,
                expected_revision=expected_revision,
                check=check,
            )
            return context_from_record(await self._modify(context_id, plan))

    async def delete_context(
        self, context_id: str, user_id: str | None = None, hard_delete: bool = False
    ) -> None:
        """Soft delete (state ``deleted``, restorable, history kept) or, with
        ``hard_delete=True``, remove the context, its messages and its events for good."""
        with self._metrics.measure("delete_context"):
            context_id = canonical_id(context_id)
            if hard_delete:
                await self.storage.delete_context(
                    context_id, functools.partial(_authorize_admin, user_id=user_id)
                )
                self._cache.discard(context_id)
            else:
                await self._modify(context_id, functools.partial(plan_delete, user_id=user_id))

    async def restore_context(self, context_id: str, user_id: str | None = None) -> Context:
        """Bring a soft-deleted context back (state ``active``)."""
        with self._metrics.measure("restore_context"):
            context_id = canonical_id(context_id)
            plan = functools.partial(plan_restore, user_id=user_id)
            return context_from_record(await self._modify(context_id, plan))

    async def query_contexts(
        self, query: ContextQuery | None = None, user_id: str | None = None, **filters: Any
    ) -> ContextPage:
        """One page of the contexts `user_id` may read that match `query` (or `filters`,
        the fields of `ContextQuery` as keywords). Messages are not loaded."""
        with self._metrics.measure("query_contexts"):
            query = parse_query(query, filters)
            records = [
                self._verified(record)
                for record in await self.storage.query_contexts(record_query(query, user_id))
            ]
            page = records[: query.limit]
            more = len(records) > query.limit
            return ContextPage(
                items=[context_from_record(record) for record in page],
                next_cursor=next_cursor(query, page[-1]) if more else None,
            )

    async def search_contexts(
        self, text: str, user_id: str | None = None, limit: int = 20
    ) -> list[SearchHit]:
        """Full-text search over titles, descriptions and message text of the contexts
        `user_id` may read; one hit per context, best first."""
        with self._metrics.measure("search_contexts"):
            if not 1 <= limit <= 1000:
                raise ValidationFailed("limit must be between 1 and 1000")
            rows = await self.storage.search(text, reader=user_id, limit=limit)
            return best_hits(rows, limit)

    # -- messages and events -------------------------------------------------------------

    async def append_messages(
        self,
        context_id: str,
        messages: Sequence[MessageInput] | MessageInput,
        user_id: str | None = None,
    ) -> int:
        """Append messages to a conversation in one change; returns the new revision.

        Costs the same at message 10 as at message 10,000: messages have a table of their
        own and the context row is not rewritten.
        """
        with self._metrics.measure("append_messages"):
            context_id = canonical_id(context_id)
            revisions = await self._append({context_id: messages}, user_id)
            return revisions[context_id]

    async def append_messages_batch(
        self,
        batches: Mapping[str, Sequence[MessageInput] | MessageInput],
        user_id: str | None = None,
    ) -> dict[str, int]:
        """Append to many conversations in one transaction (all or none); returns each
        conversation's new revision."""
        with self._metrics.measure("append_messages_batch"):
            return await self._append(batches, user_id)

    async def _append(
        self,
        batches: Mapping[str, Sequence[MessageInput] | MessageInput],
        user_id: str | None,
    ) -> dict[str, int]:
        plans: dict[str, Plan] = {}
        for given_id, messages in batches.items():
            context_id = canonical_id(given_id)
            if context_id in plans:
                raise ValidationFailed(f"context {context_id} is named twice in one batch")
            batch = [messages] if isinstance(messages, (Message, Mapping)) else list(messages)
            parsed = parse_messages(batch)
            if not parsed:
                raise ValidationFailed(f"no messages to append to {context_id}")
            plans[context_id] = functools.partial(
                plan_append, messages=parsed, user_id=user_id, bodies=self._bodies
            )
        records = await self._modify_many(plans)
        return {context_id: record.revision for context_id, record in records.items()}

    async def get_messages(
        self,
        context_id: str,
        user_id: str | None = None,
        limit: int = 50,
        before_seq: int | None = None,
    ) -> list[Message]:
        """The last `limit` messages (before message number `before_seq`), oldest first.

        Each message's ``seq`` is its position; pass the first one's as `before_seq` to
        page further back.
        """
        with self._metrics.measure("get_messages"):
            context_id = canonical_id(context_id)
            if limit < 1:
                raise ValidationFailed("limit must be at least 1")
            if before_seq is not None and before_seq <= 1:
                await self._readable(context_id, user_id)
                return []
            record = await self._readable(context_id, user_id)
            ceiling = record.message_count + 1
            rows = await self.storage.load_messages(
                context_id,
                branch="main",
                limit=limit,
                before_seq=ceiling if before_seq is None else min(before_seq, ceiling),
            )
            return await self._messages(rows)

    async def get_events(
        self,
        context_id: str,
        user_id: str | None = None,
        since_revision: int = 0,
        limit: int | None = None,
    ) -> list[ContextEvent]:
        """The committed changes after `since_revision`, in revision order: the audit log."""
        with self._metrics.measure("get_events"):
            context_id = canonical_id(context_id)
            if limit is not None and limit < 1:
                raise ValidationFailed("limit must be at least 1")
            await self._readable(context_id, user_id, include_deleted=True)
            rows = await self.storage.load_events(
                context_id, since_revision=since_revision, limit=limit
            )
            return [event_from_record(row) for row in rows]

    # -- monitoring ----------------------------------------------------------------------

    async def get_performance_stats(self) -> dict[str, Any]:
        """Counts and latency percentiles per operation, the cache's hit rate, and the
        storage statistics (contexts, sizes and messages by type and state)."""
        return {
            "backend": self.storage.backend,
            **self._metrics.snapshot(),
            "cache_entries": len(self._cache),
            "codec": self.codec.stats(),
            "storage": await self.storage.statistics(refresh=False),
        }

    async def refresh_statistics(self) -> dict[str, Any]:
        """Recompute the storage statistics now (PostgreSQL refreshes its materialized
        view; the background task also does so every CONTEXT_STATISTICS_REFRESH_SECONDS)."""
        return await self.storage.statistics(refresh=True)

    async def run_cleanup(self, dry_run: bool = False) -> CleanupReport:
        """One retention pass now: archive contexts idle for CONTEXT_AUTO_ARCHIVE_DAYS,
        remove soft-deleted ones past CONTEXT_DELETED_RETENTION_DAYS, trim events older
        than CONTEXT_EVENT_RETENTION_DAYS (each context keeps its latest)."""
        with self._metrics.measure("run_cleanup"):
            report = await run_cleanup(self.storage, self.settings, dry_run=dry_run)
            for context_id in report.purged + report.archived:
                self._cache.discard(context_id)
            return report

    async def run_due_maintenance(self) -> list[str]:
        """What the background task does each poll: refresh statistics and run retention
        when due, unless another process holds the lease. Returns what it ran."""
        return await run_due_maintenance(self.storage, self.settings, self._holder)

    async def train_dictionary(
        self, context_type: str = "conversation", samples: int = 2000, size: int = 16 * 1024
    ) -> int:
        """Train a zstd dictionary on up to `samples` stored message bodies, store it and
        use it from now on for bodies stored through the codec; returns its id. Blobs keep
        naming the dictionary they were made with, so older ones stay readable."""
        with self._metrics.measure("train_dictionary"):
            if context_type != ContextType.CONVERSATION.value:
                raise ValidationFailed(
                    "dictionaries are trained on message bodies, which only conversations hold",
                    [Issue("/context_type", context_type)],
                )
            rows = await self.storage.sample_messages(samples)
            bodies = [self._bodies.unpack(row) for row in rows]
            data = train_dictionary(bodies, size)
            dictionary_id = await self.storage.save_dictionary(
                context_type, data, sample_count=len(bodies)
            )
            self.codec.add_dictionary(dictionary_id, data)
            self.codec.dictionary_for[context_type] = dictionary_id
            return dictionary_id

    async def migration_status(self) -> MigrationStatus:
        """The schema migrations applied (with when) and pending."""
        return await self.storage.migration_status()

    async def health_check(self) -> dict[str, Any]:
        """Whether storage answers, its schema version and sizes. Never raises."""
        try:
            storage = await self.storage.health()
        except (LoremasterError, NotInitialized) as exc:
            return {"status": "unavailable", "version": __version__, "error": str(exc)}
        return {
            "status": "ok",
            "version": __version__,
            "storage": {
                "backend": storage.backend,
                "reachable": storage.reachable,
                "schema_version": storage.schema_version,
                **storage.details,
            },
            "event_bus": "in-process",
        }

    # -- helpers -------------------------------------------------------------------------

    async def _readable(
        self, context_id: str, user_id: str | None, *, include_deleted: bool = False
    ) -> ContextRecord:
        cached = self._cache.get(context_id)
        loaded = await self.storage.load_context(
            context_id, None if cached is None else (cached.revision, cached.last_modified)
        )
        self._metrics.cache_lookup(isinstance(loaded, NotModified))
        if isinstance(loaded, NotModified):
            assert cached is not None
            record = cached
        elif loaded is None:
            self._cache.discard(context_id)
            raise ContextNotFound(context_id)
        else:
            record = self._verified(loaded)
            self._cache.put(record)
        authorize(record, user_id, Permission.READ)
        if record.state == ContextState.DELETED and not include_deleted:
            raise ContextNotFound(context_id)
        return record

    async def _touch(self, record: ContextRecord) -> None:
        now = _now()
        interval = int(self.settings.access_touch_seconds * 1_000_000)
        if now - record.last_accessed >= interval:
            await self.storage.touch(record.context_id, when=now, not_since=now - interval)
            self._cache.discard(record.context_id)

    def _check_update(self, updated: Context) -> None:
        _refuse_invalid(self.validator.check(updated))

    def _verified(self, record: ContextRecord) -> ContextRecord:
        return verify_checksum(record) if self.settings.enable_validation else record

    async def _messages(self, rows: list[MessageRecord]) -> list[Message]:
        try:
            return [message_from_record(row, self._bodies) for row in rows]
        except UnsupportedFormat:
            # Perhaps a dictionary another process trained since this one started.
            await self._load_dictionaries()
            return [message_from_record(row, self._bodies) for row in rows]

    async def _load_dictionaries(self) -> None:
        for dictionary_id, context_type, data in await self._storage.load_dictionaries():
            self.codec.add_dictionary(dictionary_id, data)
            self.codec.dictionary_for[context_type] = dictionary_id

    async def _modify(self, context_id: str, plan: Plan) -> ContextRecord:
        """Commit `plan` (given now and the size limit) on one context; cache the result."""
        return (await self._modify_many({context_id: plan}))[context_id]

    async def _modify_many(self, plans: Mapping[str, Plan]) -> dict[str, ContextRecord]:
        limits = {"now": _now(), "max_bytes": self.settings.max_size_bytes}
        bound = {cid: functools.partial(plan, **limits) for cid, plan in plans.items()}
        records = await self.storage.modify_contexts(bound)
        for record in records.values():
            self._cache.put(record)
        return records


def _refuse_invalid(result: ValidationResult) -> None:
    if not result.is_valid:
        raise ValidationFailed(
            "the context is not valid",
            [Issue(i.path, f"{i.code}: {i.message}", i.code) for i in result.errors],
        )


def _authorize_admin(record: ContextRecord, *, user_id: str | None) -> None:
    authorize(record, user_id, Permission.ADMIN)
