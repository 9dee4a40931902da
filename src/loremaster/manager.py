"""`ContextManager`: the one entry point of the library, the server and the CLI.

It checks permissions, runs each operation as one storage transaction and converts between
models and rows; the rules themselves live in `_changes`, `_access` and `_records`.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import logging
import re
import time
from collections.abc import AsyncIterable, AsyncIterator, Iterable, Iterator, Mapping, Sequence
from types import TracebackType
from typing import Any, Literal, Self

import jsonpatch
from pydantic import ValidationError as PydanticValidationError

from ._access import OWNERSHIP_FIELDS, authorize, authorize_commit
from ._cache import RecordCache
from ._changes import (
    parse_messages,
    plan_append,
    plan_create,
    plan_delete,
    plan_restore,
    plan_update,
)
from ._coordination import (
    HistoryMoved,
    check_lease,
    conflict_model,
    lock_model,
    parse_strategy,
    plan_join,
    plan_leave,
    plan_lock,
    plan_release,
    plan_resolve,
    plan_settle,
)
from ._history import History, branch_model, version_model
from ._live import Live
from ._metrics import Metrics
from ._migration import (
    ExportCache,
    check_window,
    export_payload,
    parse_migration,
    parse_provider,
    translate_conversation,
)
from ._records import (
    MessageBodies,
    best_hits,
    canonical_id,
    context_from_record,
    document_of,
    event_from_record,
    message_record,
    next_cursor,
    parse_context,
    parse_query,
    record_query,
    validation_failed,
    verify_checksum,
    with_owner,
)
from ._retention import Hooks, maintenance_loop, new_holder, run_cleanup, run_due_maintenance
from ._stale import StaleBase
from ._storable import check_json, check_text, describe
from ._transfer import ImportReport, Progress, export_dump, import_dump, refuse_unless_administrator
from ._version import __version__
from ._version_plans import (
    ForkPoint,
    Versioning,
    branch_document,
    branch_view,
    on_branch,
    plan_create_branch,
    plan_create_version,
    plan_merge,
    plan_rewrite,
    plan_rollback,
)
from .codec import Codec, train_dictionary
from .config import Settings, load_settings
from .errors import (
    BackendUnavailable,
    ConfigurationError,
    ContextNotFound,
    Issue,
    LockLost,
    LoremasterError,
    NotInitialized,
    RevisionConflict,
    ValidationFailed,
)
from .models import (
    Branch,
    CleanupReport,
    ConflictStrategy,
    Context,
    ContextConflict,
    ContextEvent,
    ContextLock,
    ContextPage,
    ContextQuery,
    ContextState,
    ContextType,
    ContextVersion,
    MergeConflict,
    MergeResult,
    Message,
    MigrationResult,
    Permission,
    ProviderType,
    SearchHit,
    UpdateOrigin,
    VersionDiff,
)
from .patch import apply_changes, check_changes
from .storage import (
    BranchPlan,
    BranchRecord,
    ContextRecord,
    MessageRecord,
    MigrationStatus,
    Mutation,
    NewContext,
    NotModified,
    Piece,
    Plan,
    SearchRecord,
    Storage,
    VersionRecord,
    open_storage,
    search_words,
)
from .sync import (
    MISSING,
    EventStream,
    PresenceEntry,
    Side,
    apply_choices,
    snapshot_event,
    three_way_merge,
)
from .translation import ContextTranslator, message_source
from .validation import ContextValidator, ValidationResult
from .versioning import (
    VersionLimits,
    VersionPolicy,
    VersionRequest,
    common_prefix,
    shows,
    view_of,
)

__all__ = ["ContextManager", "MergeStrategy"]

log = logging.getLogger("loremaster")

MessageInput = Message | Mapping[str, Any]
Changes = Mapping[str, Any] | Sequence[Mapping[str, Any]]
MergeStrategy = Literal["fail", "source", "target"]
_VERSION_PAYLOAD_LIMIT = 1 << 30
_EXPORT_CACHE_SIZE = 256
_STALE_ATTEMPTS = 5
_LONGEST_LOCK = 366 * 24 * 3600.0
_TRUSTED_FOR = 5.0  # seconds a cached row is served unchecked while every change is heard
_BRANCH_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/-]{0,99}")
# A search's bounds. Each word is one more condition to match: 500 took SQLite 17 seconds,
# and near 100,000 PostgreSQL's query parser runs out of stack.
_SEARCH_MAX_CHARS = 1000
_SEARCH_MAX_WORDS = 32
_MERGE_STRATEGIES = ("fail", "source", "target")
_LARGEST_DICTIONARY = 1 << 20


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
        # Versions keep whole documents, which may outgrow a since-lowered size limit.
        version_codec = Codec.from_settings(self.settings)
        version_codec.max_size = max(_VERSION_PAYLOAD_LIMIT, self.settings.max_size_bytes)
        self._versioning = Versioning(version_codec, VersionPolicy.from_settings(self.settings))
        self._history = History(self._storage, version_codec, self._bodies)
        self._hooks = Hooks(versioned=self._versioning.on_main, prune=self._prune)
        self._translator = ContextTranslator(self.settings)
        self._exports = ExportCache(_EXPORT_CACHE_SIZE)
        self._cache = RecordCache(self.settings.cache_size, self.settings.cache_ttl)
        self._live = Live(self.settings, self._cache)
        self._stale = StaleBase(self._storage, self._history)
        self._leases: dict[tuple[str, str], int] = {}
        """Fencing tokens of the locks this manager took, by (context, holder)."""
        self._metrics = Metrics()
        self._initialized = False
        self._holder = new_holder()
        self._maintenance: asyncio.Task[None] | None = None

    # -- lifecycle -----------------------------------------------------------------------

    async def initialize(self, *, migrate: bool = True, create: bool = True) -> None:
        """Connect to storage, apply pending schema migrations (unless ``migrate=False``:
        then check `migration_status()` before relying on the schema) and start the
        background maintenance task (not on a read-only database). With ``create=False``
        a SQLite file that does not exist is ``DatabaseNotFound`` rather than made.
        Idempotent."""
        if self._initialized:
            return
        try:
            await self._storage.open(create=create)
            if migrate:
                status = await self._storage.migrate()
            else:
                status = await self._storage.migration_status()
            if not status.pending:
                await self._history.load_dictionaries()
        except BaseException:
            await self._storage.close()
            raise
        self._initialized = True
        await self._live.start()
        if migrate and not self._storage.read_only:
            self._maintenance = asyncio.create_task(
                maintenance_loop(self._storage, self.settings, self._holder, self._hooks),
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
            await self._live.close()
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
        self,
        context: Context | Mapping[str, Any],
        user_id: str | None = None,
        *,
        source: ProviderType | str | None = None,
    ) -> str:
        """Store a new context; `user_id` becomes its owner unless it names one.

        Returns the context id. `source` names the provider whose message shape the
        messages of a context given as a dict are in (default: each one's is detected).
        """
        with self._metrics.measure("create_context"):
            return (await self._create([context], user_id, source))[0]

    async def create_contexts(
        self,
        contexts: Sequence[Context | Mapping[str, Any]],
        user_id: str | None = None,
        *,
        source: ProviderType | str | None = None,
    ) -> list[str]:
        """Store many new contexts in one transaction (all or none); their ids, in order."""
        with self._metrics.measure("create_contexts"):
            return await self._create(contexts, user_id, source)

    async def _create(
        self,
        contexts: Sequence[Context | Mapping[str, Any]],
        user_id: str | None,
        source: ProviderType | str | None,
    ) -> list[str]:
        _user(user_id)
        provider = message_source(source)
        if isinstance(contexts, (str, bytes, Mapping)) or not isinstance(contexts, Sequence):
            raise ValidationFailed(
                "contexts is a list of contexts", [Issue("/contexts", describe(contexts))]
            )
        models = [with_owner(parse_context(context, provider), user_id) for context in contexts]
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
        if self._versioning.policy.auto:
            created = [self._first_version(new) for new in created]
        if created:
            await self.storage.insert_contexts(created)
        for new in created:
            await self._remember(new.record)
        await self._live.publish(event_from_record(new.event) for new in created)
        return [new.record.context_id for new in created]

    async def get_context(
        self,
        context_id: str,
        user_id: str | None = None,
        *,
        include_messages: bool = True,
        include_deleted: bool = False,
        branch: str = "main",
    ) -> Context:
        """The context as its typed model; a conversation comes with all its messages
        unless ``include_messages=False`` (then page them with `get_messages`). With
        `branch`, the context as it is on that branch."""
        with self._metrics.measure("get_context"):
            context_id = canonical_id(context_id)
            record = await self._readable(context_id, user_id, include_deleted=include_deleted)
            await self._touch(record)
            record = await self._on_branch(record, branch)
            messages: list[Message] = []
            if include_messages and record.message_count:
                view = view_of(record.versioning, record.message_count)
                messages = await self._history.messages(
                    await self._history.message_rows(context_id, view)
                )
            return context_from_record(record, messages)

    async def update_context(
        self,
        context_id: str,
        changes: Changes,
        user_id: str | None = None,
        expected_revision: int | None = None,
        sync: bool = True,
        *,
        branch: str = "main",
        strategy: ConflictStrategy | str | None = None,
        origin: UpdateOrigin | Mapping[str, Any] | None = None,
    ) -> Context:
        """Apply `changes` and return the context as committed (without its messages).

        A dict is an RFC 7396 merge patch over the context's fields (nested objects merge,
        None removes a key); a list is RFC 6902 JSON Patch operations, applied to the
        context as it was at `expected_revision` when that is given.

        When the context has moved on since `expected_revision`, the update is settled by
        `strategy` (else the context's ``conflict_policy``, else automatic_merge falling
        back to `RevisionConflict`): three ways against that revision, so changes to
        different paths both land and nothing is ever silently lost; see docs/sync.md.
        `origin` says who wrote it (a user, or an AI provider: ``{"provider":
        "anthropic"}``), for provider_priority. With ``sync=False`` the change is not
        announced to subscribers at once (they find it in the event log). With `branch`,
        the change is made on that branch (see `create_branch`).
        """
        with self._metrics.measure("update_context"):
            context_id = canonical_id(context_id)
            check_changes(changes)
            _user(user_id)
            writer = _origin(origin, user_id)
            if expected_revision is not None:
                _count(expected_revision, "expected_revision")
            plan = functools.partial(
                plan_update,
                changes=changes,
                user_id=user_id,
                expected_revision=expected_revision,
                check=self._check_update,
            )
            try:
                record = await self._modify_on(
                    context_id, branch, plan, writer=user_id, provider=writer.provider, sync=sync
                )
            except RevisionConflict:
                if expected_revision is None:
                    raise
                record = await self._settle_stale(
                    context_id,
                    branch=branch,
                    changes=changes,
                    expected_revision=expected_revision,
                    user_id=user_id,
                    writer=writer,
                    strategy=strategy,
                    sync=sync,
                )
            return context_from_record(record)

    async def _settle_stale(
        self,
        context_id: str,
        *,
        branch: str,
        changes: Changes,
        expected_revision: int,
        user_id: str | None,
        writer: UpdateOrigin,
        strategy: ConflictStrategy | str | None,
        sync: bool,
    ) -> ContextRecord:
        """An update written against `expected_revision`, settled by the conflict strategy
        against whatever is committed when it lands (inside the write transaction)."""
        override = parse_strategy(strategy)
        for _ in range(_STALE_ATTEMPTS):
            current = await self._on_branch(await self._readable(context_id, user_id), branch)
            if current.revision <= expected_revision:
                raise RevisionConflict(context_id, expected_revision, current.revision)
            base, since = await self._stale.load(
                context_id, branch, expected_revision, current.revision
            )
            plan = functools.partial(
                plan_settle,
                base=base,
                incoming=apply_changes(base, changes)[0],
                strategy=override,
                origin=writer,
                base_revision=expected_revision,
                since=since,
                since_revision=current.revision,
                user_id=user_id,
                check=self._check_update,
            )
            try:
                return await self._modify_on(
                    context_id, branch, plan, writer=user_id, provider=writer.provider, sync=sync
                )
            except HistoryMoved:
                continue
        raise RevisionConflict(context_id, expected_revision, expected_revision)

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
                if self._live.rows is not None:
                    await self._live.rows.discard(context_id)
            else:
                await self._modify(
                    context_id, functools.partial(plan_delete, user_id=user_id), writer=user_id
                )

    async def restore_context(self, context_id: str, user_id: str | None = None) -> Context:
        """Bring a soft-deleted context back (state ``active``)."""
        with self._metrics.measure("restore_context"):
            context_id = canonical_id(context_id)
            plan = functools.partial(plan_restore, user_id=user_id)
            return context_from_record(await self._modify(context_id, plan, writer=user_id))

    async def query_contexts(
        self, query: ContextQuery | None = None, user_id: str | None = None, **filters: Any
    ) -> ContextPage:
        """One page of the contexts `user_id` may read that match `query` (or `filters`,
        the fields of `ContextQuery` as keywords). Messages are not loaded."""
        with self._metrics.measure("query_contexts"):
            query = parse_query(query, filters)
            _user(user_id)
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
        self, text: str, user_id: str | None = None, limit: int = 20, *, branch: str = "main"
    ) -> list[SearchHit]:
        """Full-text search over titles, descriptions and message text of the contexts
        `user_id` may read; one hit per context, best first. Messages count only where
        `branch` shows them (a rollback or a migration hides what came before it; a
        message of another branch is not this one's); with a branch other than main, only
        contexts that have it, and only their messages (titles and descriptions are
        main's)."""
        with self._metrics.measure("search_contexts"):
            _search_text(text)
            _user(user_id)
            _text(branch, "branch")
            if not 1 <= _count(limit, "limit") <= 1000:
                raise ValidationFailed("limit must be between 1 and 1000")
            rows = await self.storage.search(text, reader=user_id, limit=limit)
            return best_hits(await self._in_view(rows, branch), limit, branch)

    async def _in_view(self, rows: list[SearchRecord], branch: str) -> list[SearchRecord]:
        """The hits `branch` shows: its messages in its view, and (on main) the fields."""
        views: dict[str, tuple[Piece, ...] | None] = {}
        for row in rows:
            if row.context_id in views:
                continue
            if branch == "main":
                views[row.context_id] = view_of(row.versioning, row.message_count)
                continue
            held = await self.storage.load_branch(row.context_id, branch)
            views[row.context_id] = (
                None if held is None else view_of(held.versioning, held.message_count)
            )
        return [
            row
            for row in rows
            if (view := views[row.context_id]) is not None
            and (
                branch == "main"
                if row.message_seq is None
                else shows(view, row.segment or "main", row.message_seq)
            )
        ]

    # -- messages and events -------------------------------------------------------------

    async def append_messages(
        self,
        context_id: str,
        messages: Sequence[MessageInput] | MessageInput,
        user_id: str | None = None,
        *,
        branch: str = "main",
        source: ProviderType | str | None = None,
    ) -> int:
        """Append messages to a conversation in one change; returns the new revision.

        Costs the same at message 10 as at message 10,000: messages have a table of their
        own and the context row is not rewritten. With `branch`, they go to that branch.
        A message may be in a provider's own shape (OpenAI, Anthropic, Gemini): detected,
        or the one `source` names; one may become several neutral messages.
        """
        with self._metrics.measure("append_messages"):
            context_id = canonical_id(context_id)
            provider = message_source(source)
            if branch == "main":
                revisions = await self._append({context_id: messages}, user_id, provider)
                return revisions[context_id]
            plan = self._append_plan(context_id, messages, user_id, provider)
            return (await self._modify_on(context_id, branch, plan, writer=user_id)).revision

    async def append_messages_batch(
        self,
        batches: Mapping[str, Sequence[MessageInput] | MessageInput],
        user_id: str | None = None,
        *,
        source: ProviderType | str | None = None,
    ) -> dict[str, int]:
        """Append to many conversations in one transaction (all or none); returns each
        conversation's new revision. `source` as for `append_messages`."""
        with self._metrics.measure("append_messages_batch"):
            return await self._append(batches, user_id, message_source(source))

    async def _append(
        self,
        batches: Mapping[str, Sequence[MessageInput] | MessageInput],
        user_id: str | None,
        source: ProviderType | None,
    ) -> dict[str, int]:
        if not isinstance(batches, Mapping):
            raise ValidationFailed(
                "batches maps context ids to messages", [Issue("/batches", describe(batches))]
            )
        plans: dict[str, Plan] = {}
        for given_id, messages in batches.items():
            context_id = canonical_id(given_id)
            if context_id in plans:
                raise ValidationFailed(f"context {context_id} is named twice in one batch")
            plans[context_id] = self._append_plan(context_id, messages, user_id, source)
        records = await self._modify_many(plans, writer=user_id)
        return {context_id: record.revision for context_id, record in records.items()}

    def _append_plan(
        self,
        context_id: str,
        messages: Sequence[MessageInput] | MessageInput,
        user_id: str | None,
        source: ProviderType | None,
    ) -> Plan:
        if isinstance(messages, (Message, Mapping)):
            batch: list[MessageInput] = [messages]
        elif isinstance(messages, (list, tuple)):
            batch = list(messages)
        else:
            raise ValidationFailed(
                "messages is a message or a list of them", [Issue("/messages", describe(messages))]
            )
        parsed = parse_messages(batch, source)
        if not parsed:
            raise ValidationFailed(f"no messages to append to {context_id}")
        return functools.partial(plan_append, messages=parsed, user_id=user_id, bodies=self._bodies)

    async def get_messages(
        self,
        context_id: str,
        user_id: str | None = None,
        limit: int = 50,
        before_seq: int | None = None,
        *,
        branch: str = "main",
    ) -> list[Message]:
        """The last `limit` messages (before message number `before_seq`), oldest first.

        Each message's ``seq`` is its position; pass the first one's as `before_seq` to
        page further back. With `branch`, that branch's messages.
        """
        with self._metrics.measure("get_messages"):
            context_id = canonical_id(context_id)
            _count(limit, "limit", lowest=1)
            if before_seq is not None:
                _count(before_seq, "before_seq")
            record = await self._on_branch(await self._readable(context_id, user_id), branch)
            view = view_of(record.versioning, record.message_count)
            rows = await self._history.message_rows(
                context_id, view, limit=limit, before_seq=before_seq
            )
            return await self._history.messages(rows)

    async def get_events(
        self,
        context_id: str,
        user_id: str | None = None,
        since_revision: int = 0,
        limit: int | None = None,
        *,
        branch: str | None = None,
    ) -> list[ContextEvent]:
        """The committed changes after `since_revision`, in revision order: the audit log.
        With `branch`, only the changes made on that branch (its creation included);
        revisions count every branch's changes, so theirs have gaps."""
        with self._metrics.measure("get_events"):
            context_id = canonical_id(context_id)
            _count(since_revision, "since_revision")
            if limit is not None:
                _count(limit, "limit", lowest=1)
            if branch is not None:
                _text(branch, "branch")
            await self._readable(context_id, user_id, include_deleted=True)
            rows = await self.storage.load_events(
                context_id, since_revision=since_revision, limit=limit, branch=branch
            )
            return [event_from_record(row) for row in rows]

    # -- versions and branches -----------------------------------------------------------

    async def create_version(
        self,
        context_id: str,
        user_id: str | None = None,
        message: str = "",
        tags: Sequence[str] = (),
        *,
        branch: str = "main",
    ) -> ContextVersion:
        """Record the context as it is now (fields and messages) as a version: a
        checkpoint to list, diff, branch from or roll back to. Tagged versions are never
        removed by cleanup."""
        with self._metrics.measure("create_version"):
            context_id = canonical_id(context_id)
            if isinstance(tags, str) or not isinstance(tags, Sequence):
                raise ValidationFailed("tags is a list of texts", [Issue("/tags", describe(tags))])
            labels = tuple(dict.fromkeys(_text(tag, "tags") for tag in tags))
            request = VersionRequest(user_id, _text(message, "message"), labels)
            plan = functools.partial(
                plan_create_version, request=request, branch=branch, versioning=self._versioning
            )
            return await self._commit_version(context_id, branch, plan, user_id=user_id)

    async def get_version_history(
        self,
        context_id: str,
        user_id: str | None = None,
        limit: int = 50,
        *,
        before: int | None = None,
        branch: str | None = None,
        tag: str | None = None,
    ) -> list[ContextVersion]:
        """Versions newest first, metadata only (no payload is read). Page back by
        passing the last one's ``number`` as `before`; filter by `branch` or `tag`."""
        with self._metrics.measure("get_version_history"):
            context_id = canonical_id(context_id)
            if not 1 <= _count(limit, "limit") <= 1000:
                raise ValidationFailed("limit must be between 1 and 1000")
            if before is not None:
                _count(before, "before")
            if branch is not None:
                _text(branch, "branch")
            if tag is not None:
                _text(tag, "tag")
            await self._readable(context_id, user_id, include_deleted=True)
            rows = await self.storage.list_versions(
                context_id, branch=branch, tag=tag, before_number=before, limit=limit
            )
            return [version_model(row) for row in rows]

    async def get_version(
        self,
        context_id: str,
        version_id: str,
        user_id: str | None = None,
        include_messages: bool = True,
    ) -> Context:
        """The context as it was at a version: its fields, and its messages up to the
        version's ``message_seq``. Rebuilt from at most one snapshot and the patches after
        it, and checked against the version's checksum (`DataCorrupted` if it fails)."""
        with self._metrics.measure("get_version"):
            context_id = canonical_id(context_id)
            _text(version_id, "version_id")
            record = await self._readable(context_id, user_id, include_deleted=True)
            version, document = await self._history.version(context_id, version_id)
            messages: list[Message] = []
            if include_messages and version.message_seq:
                rows = await self._history.message_rows(context_id, version.view)
                messages = await self._history.messages(rows)
            past = dataclasses.replace(
                record,
                revision=version.revision,
                message_count=version.message_seq,
                turn_count=version.turn_count,
                last_modified=version.created_at,
            )
            return context_from_record(past, messages, document=_completed(record, document))

    async def diff_versions(
        self, context_id: str, a: str, b: str, user_id: str | None = None
    ) -> VersionDiff:
        """What changed from version `a` to version `b`: the JSON Patch over the fields
        (``jsonpatch.apply_patch(fields_of_a, diff.patch)`` gives b's) and the messages
        b has that a does not."""
        with self._metrics.measure("diff_versions"):
            context_id = canonical_id(context_id)
            _text(a, "a")
            _text(b, "b")
            record = await self._readable(context_id, user_id, include_deleted=True)
            version_a, document_a = await self._history.version(context_id, a)
            version_b, document_b = await self._history.version(context_id, b)
            document_a, document_b = _completed(record, document_a), _completed(record, document_b)
            shared = common_prefix(version_a.view, version_b.view)
            rows = await self._history.message_rows(context_id, version_b.view, after_seq=shared)
            return VersionDiff(
                from_version_id=version_a.version_id,
                to_version_id=version_b.version_id,
                patch=jsonpatch.make_patch(document_a, document_b).patch,
                messages_added=await self._history.messages(rows),
                messages_removed=version_a.message_seq - shared,
            )

    async def rollback_to_version(
        self,
        context_id: str,
        version_id: str,
        user_id: str | None = None,
        *,
        branch: str = "main",
    ) -> Context:
        """Bring `branch` back to a version's fields and messages, as a new revision and a
        new version; nothing is deleted. Messages after the version leave the branch's
        view and stay reachable through the versions that hold them. Owner,
        collaborators, permissions and state are not rolled back. Returns the context."""
        with self._metrics.measure("rollback_to_version"):
            context_id = canonical_id(context_id)
            _text(version_id, "version_id")
            await self._readable(context_id, user_id)
            target, document = await self._history.version(context_id, version_id)
            plan = functools.partial(
                plan_rollback,
                target=target,
                document=document,
                user_id=user_id,
                branch=branch,
                versioning=self._versioning,
            )
            return context_from_record(
                await self._modify_on(context_id, branch, plan, writer=user_id)
            )

    async def create_branch(
        self,
        context_id: str,
        name: str,
        from_version_id: str | None = None,
        user_id: str | None = None,
    ) -> Branch:
        """A new branch starting at a version (default: main as it is now). Costs the same
        whatever the context's size: nothing is copied. Read and write it with the
        ``branch=`` argument of `get_context`, `update_context`, `append_messages`,
        `get_messages` and `get_version_history`."""
        with self._metrics.measure("create_branch"):
            context_id = canonical_id(context_id)
            if name == "main" or not _BRANCH_NAME.fullmatch(_text(name, "name")):
                raise ValidationFailed(
                    "a branch name is 1-100 letters, digits, '.', '_', '/' or '-', not main",
                    [Issue("/branch", name, "branch_name")],
                )
            if from_version_id is not None:
                _text(from_version_id, "from_version_id")
            await self._readable(context_id, user_id)
            fork = (
                None
                if from_version_id is None
                else await self._fork_point(context_id, from_version_id)
            )
            plan = functools.partial(
                plan_create_branch,
                name=name,
                fork=fork,
                user_id=user_id,
                versioning=self._versioning,
                now=_now(),
                max_bytes=self.settings.max_size_bytes,
            )
            record, row = await self._modify_branch(context_id, name, plan, writer=user_id)
            return branch_model(record, row)

    async def list_branches(self, context_id: str, user_id: str | None = None) -> list[Branch]:
        """Every branch of the context, main first."""
        with self._metrics.measure("list_branches"):
            context_id = canonical_id(context_id)
            record = await self._readable(context_id, user_id, include_deleted=True)
            rows = await self.storage.list_branches(context_id)
            return [branch_model(record, None), *(branch_model(record, row) for row in rows)]

    async def merge_branch(
        self,
        context_id: str,
        source: str,
        target: str = "main",
        user_id: str | None = None,
        strategy: MergeStrategy = "fail",
    ) -> MergeResult:
        """Merge branch `source` into `target`: a three-way merge of the fields against
        the version they share (different paths both land, equal changes are no conflict)
        and the source's new messages appended after the target's. A path both changed
        differently is a conflict: with ``strategy="fail"`` nothing is written and the
        result lists the conflicts; ``"source"`` or ``"target"`` says which side wins."""
        with self._metrics.measure("merge_branch"):
            context_id = canonical_id(context_id)
            if strategy not in _MERGE_STRATEGIES:
                raise ValidationFailed(
                    f"strategy is one of {', '.join(_MERGE_STRATEGIES)}",
                    [Issue("/strategy", describe(strategy))],
                )
            if source == target:
                raise ValidationFailed("a branch cannot be merged into itself")
            for _ in range(5):  # the context moved on while the merge was computed: again
                try:
                    return await self._merge(context_id, source, target, user_id, strategy)
                except RevisionConflict:
                    continue
            raise RevisionConflict(context_id, 0, 0)

    async def _merge(
        self,
        context_id: str,
        source: str,
        target: str,
        user_id: str | None,
        strategy: MergeStrategy,
    ) -> MergeResult:
        record = await self._readable(context_id, user_id)
        theirs = await self._on_branch(record, source)
        ours = await self._on_branch(record, target)
        base = await self._common_version(context_id, theirs, ours)
        base_fields: dict[str, Any] = {}
        if base is not None:
            document = (await self._history.version(context_id, base.version_id))[1]
            base_fields = {k: v for k, v in document.items() if k not in OWNERSHIP_FIELDS}
        ours_document = branch_document(ours)
        merge = three_way_merge(base_fields, ours_document, branch_document(theirs))
        outcome = MergeResult(
            source=source,
            target=target,
            base_version_id=None if base is None else base.version_id,
            merged=False,
            conflicts=[
                MergeConflict(
                    path=c.path,
                    base=_present(c.base),
                    source=_present(c.theirs),
                    target=_present(c.ours),
                )
                for c in merge.conflicts
            ],
        )
        if outcome.conflicts and strategy == "fail":
            return outcome
        if theirs.versioning.head is None or theirs.versioning.changes_since:
            # A merge records the source version it took in: make one of the source as it
            # is, then merge again from the top (the context has moved on by one revision).
            await self.create_version(context_id, user_id, "merge point", branch=source)
            raise RevisionConflict(context_id, record.revision, record.revision + 1)
        merged = merge.merged
        if strategy == "source":
            choices: dict[str, Side] = {c.path: "theirs" for c in merge.conflicts}
            merged = apply_choices(merged, merge.conflicts, choices)
        ops = jsonpatch.make_patch(ours_document, merged).patch
        rows = await self._messages_to_merge(context_id, theirs, ours, base)
        added = await self._history.messages(rows)
        assert theirs.versioning.head is not None
        plan = functools.partial(
            plan_merge,
            ops=ops,
            messages=rows,
            message_changes=[
                {
                    "op": "add",
                    "path": "/messages/-",
                    "value": m.model_dump(mode="json", exclude={"seq"}),
                }
                for m in added
            ],
            expected_revision=record.revision,
            merged_from=theirs.versioning.head,
            request=VersionRequest(user_id, f"merge {source} into {target}"),
            branch=target,
            versioning=self._versioning,
        )
        version = await self._commit_version(context_id, target, plan, user_id=user_id)
        return outcome.model_copy(
            update={
                "merged": True,
                "revision": version.revision,
                "version": version,
                "changes": ops,
                "messages_added": len(rows),
            }
        )

    async def _messages_to_merge(
        self,
        context_id: str,
        theirs: ContextRecord,
        ours: ContextRecord,
        base: VersionRecord | None,
    ) -> list[MessageRecord]:
        """The source's messages since the version both share (since its fork, or its
        last merge), less any the target already holds (by id)."""
        source_view = view_of(theirs.versioning, theirs.message_count)
        target_view = view_of(ours.versioning, ours.message_count)
        since = common_prefix(source_view, target_view if base is None else base.view)
        rows = await self._history.message_rows(context_id, source_view, after_seq=since)
        held = await self._history.message_rows(
            context_id, target_view, after_seq=common_prefix(target_view, source_view)
        )
        known = {row.message_id for row in held}
        return [row for row in rows if row.message_id not in known]

    async def _common_version(
        self, context_id: str, a: ContextRecord, b: ContextRecord
    ) -> VersionRecord | None:
        """The newest version both branches' heads descend from, through their parents
        and the versions earlier merges took in."""
        versions = {v.version_id: v for v in await self.storage.list_versions(context_id)}

        def ancestors(head: str | None) -> set[str]:
            seen: set[str] = set()
            pending = [head]
            while pending:
                version_id = pending.pop()
                if version_id is None or version_id in seen or version_id not in versions:
                    continue
                seen.add(version_id)
                pending += [versions[version_id].parent_id, versions[version_id].merge_parent_id]
            return seen

        shared = ancestors(a.versioning.head) & ancestors(b.versioning.head)
        return max((versions[v] for v in shared), key=lambda v: v.number, default=None)

    async def _fork_point(self, context_id: str, version_id: str) -> ForkPoint:
        version, document = await self._history.version(context_id, version_id)
        return ForkPoint(
            version_id=version.version_id,
            document={k: v for k, v in document.items() if k not in OWNERSHIP_FIELDS},
            view=version.view,
            turn_count=version.turn_count,
        )

    async def _commit_version(
        self, context_id: str, branch: str, plan: Plan, *, user_id: str | None
    ) -> ContextVersion:
        """Commit `plan`, which makes a version, and describe the version it made (from
        the commit itself: a cleanup may remove it as soon as it is committed)."""
        made: list[Mutation] = []

        def keeping(current: ContextRecord, **limits: Any) -> Mutation | None:
            mutation: Mutation | None = plan(current, **limits)
            made[:] = [] if mutation is None else [mutation]
            return mutation

        await self._modify_on(context_id, branch, keeping, writer=user_id)
        version = made[-1].version
        assert version is not None
        return version_model(version)

    # -- live: subscriptions, locks, rooms, conflicts ------------------------------------

    async def subscribe(
        self,
        context_id: str,
        user_id: str | None = None,
        since_revision: int | None = None,
        *,
        poll_interval: float = 30.0,
    ) -> EventStream:
        """Follow a context's committed changes: an async iterator of `ContextEvent`, each
        revision exactly once and in order, across processes (with Redis). It replays the
        event log after `since_revision` first (default: only changes from now on); when
        the log no longer reaches back that far it yields one ``snapshot`` event holding
        the whole context. Close it with ``await stream.close()`` or ``async with``.

        After `poll_interval` seconds without news it reads the event log anyway: that is
        how it hears other processes without Redis, and changes whose announcement was
        lost."""
        context_id = canonical_id(context_id)
        if since_revision is not None:
            _count(since_revision, "since_revision")
        if (
            isinstance(poll_interval, bool)
            or not isinstance(poll_interval, (int, float))
            or not 0 < poll_interval <= _LONGEST_LOCK
        ):
            raise ValidationFailed(
                "poll_interval is a number of seconds above 0, at most a year",
                [Issue("/poll_interval", describe(poll_interval))],
            )
        record = await self._readable(context_id, user_id, include_deleted=True)

        async def load_events(cid: str, after: int, limit: int) -> list[ContextEvent]:
            rows = await self.storage.load_events(cid, since_revision=after, limit=limit)
            return [event_from_record(row) for row in rows]

        async def load_snapshot(cid: str) -> ContextEvent:
            context = await self.get_context(cid, user_id, include_deleted=True)
            return snapshot_event(cid, context.revision, context.model_dump(mode="json"))

        return self._live.follow(
            context_id,
            after_revision=record.revision if since_revision is None else since_revision,
            load_events=load_events,
            load_snapshot=load_snapshot,
            refill_interval=poll_interval,
        )

    async def acquire_context_lock(
        self, context_id: str, user_id: str, timeout: float | None = None
    ) -> ContextLock:
        """Take the exclusive edit lock for `timeout` seconds (default
        CONTEXT_LOCK_TIMEOUT). While it lasts, writes by anyone else raise `LockHeld`;
        once it has expired, the holder's own writes raise `LockLost` (it may have been
        paused past its lease), whatever it believes. Taking it again extends it; it
        never shortens it."""
        return await self._lease(context_id, user_id, timeout, renew_only=False)

    async def renew_context_lock(
        self, context_id: str, user_id: str, timeout: float | None = None
    ) -> ContextLock:
        """Extend a lock the user still holds (`LockLost` if it has expired)."""
        return await self._lease(context_id, user_id, timeout, renew_only=True)

    async def release_context_lock(self, context_id: str, user_id: str) -> None:
        """Give the lock up (nothing happens if the user does not hold it)."""
        with self._metrics.measure("release_context_lock"):
            context_id = canonical_id(context_id)
            plan = functools.partial(plan_release, user_id=user_id)
            await self._modify(context_id, plan, writer=user_id, guarded=False)
            self._leases.pop((context_id, user_id), None)

    async def _lease(
        self, context_id: str, user_id: str, timeout: float | None, *, renew_only: bool
    ) -> ContextLock:
        with self._metrics.measure("acquire_context_lock"):
            context_id = canonical_id(context_id)
            seconds = self.settings.lock_timeout if timeout is None else timeout
            if (
                not isinstance(user_id, str)
                or not user_id
                or isinstance(seconds, bool)
                or not isinstance(seconds, (int, float))
                or not 0 < seconds <= _LONGEST_LOCK
            ):
                raise ValidationFailed(
                    "a lock needs a user and a timeout above 0 seconds, at most a year",
                    [Issue("/timeout", describe(timeout))],
                )
            plan = functools.partial(
                plan_lock, user_id=user_id, seconds=seconds, renew_only=renew_only
            )
            record = await self._modify(context_id, plan, writer=user_id, guarded=False)
            lock = lock_model(record)
            self._leases[(context_id, user_id)] = lock.token
            return lock

    async def join_collaborative_session(self, context_id: str, user_id: str) -> Context:
        """Sit `user_id` at a collaborative room's table: a participant (a change, event
        op ``join``) and a member who may read and write, and present. Open rooms take
        anyone with their id while seats remain (``max_participants``, at most
        CONTEXT_MAX_PARTICIPANTS); members-only rooms take users who may already read."""
        with self._metrics.measure("join_collaborative_session"):
            context_id = canonical_id(context_id)
            plan = functools.partial(
                plan_join, user_id=user_id, max_participants=self.settings.max_participants
            )
            record = await self._modify(context_id, plan, writer=user_id, guarded=False)
            async with _after_commit("presence of the join"):
                await self._live.presence.heartbeat(context_id, user_id)
            return context_from_record(record)

    async def leave_collaborative_session(self, context_id: str, user_id: str) -> Context:
        """Take `user_id` off the room's participants (event op ``leave``; they stay a
        member) and out of its presence; a lock they hold is released."""
        with self._metrics.measure("leave_collaborative_session"):
            context_id = canonical_id(context_id)
            plan = functools.partial(plan_leave, user_id=user_id)
            record = await self._modify(context_id, plan, writer=user_id, guarded=False)
            async with _after_commit("presence of the leave"):
                await self._live.presence.leave(context_id, user_id)
            self._leases.pop((context_id, user_id), None)
            return context_from_record(record)

    async def update_presence(
        self,
        context_id: str,
        user_id: str,
        viewing: str | None = None,
        typing: bool = False,
    ) -> PresenceEntry:
        """A heartbeat: `user_id` is here, looking at `viewing`, typing or not. Presence is
        ephemeral (it lapses after 30 seconds without a heartbeat) and outside the
        revision sequence: it makes no change and no event."""
        context_id = canonical_id(context_id)
        if viewing is not None:
            _text(viewing, "viewing")
        await self._readable(context_id, user_id)
        return await self._live.presence.heartbeat(
            context_id, user_id, viewing=viewing, typing=typing
        )

    async def get_presence(
        self, context_id: str, user_id: str | None = None
    ) -> list[PresenceEntry]:
        """Who is present in a context now, and what they view or type."""
        context_id = canonical_id(context_id)
        await self._readable(context_id, user_id)
        return await self._live.presence.members(context_id)

    async def list_conflicts(
        self, context_id: str, user_id: str | None = None
    ) -> list[ContextConflict]:
        """The conflicts waiting for a person (manual_merge, user_choice), oldest first;
        a context with any is flagged until they are resolved."""
        context_id = canonical_id(context_id)
        record = await self._readable(context_id, user_id, include_deleted=True)
        return [conflict_model(record, entry) for entry in record.coordination.conflicts]

    async def resolve_conflict(
        self,
        conflict_id: str,
        resolution: Mapping[str, str],
        user_id: str | None = None,
    ) -> Context:
        """Settle a recorded conflict: `resolution` maps each of its paths to the side it
        takes, ``"current"`` (what was committed), ``"incoming"`` (the conflicting update)
        or ``"base"``. A user_choice conflict is settled by the user it was offered to."""
        with self._metrics.measure("resolve_conflict"):
            context_id = canonical_id(_text(conflict_id, "conflict_id").rsplit(".", 1)[0])
            record = await self._readable(context_id, user_id)
            entry = next((e for e in record.coordination.conflicts if e["id"] == conflict_id), {})
            plan = functools.partial(
                plan_resolve, conflict_id=conflict_id, resolution=resolution, user_id=user_id
            )
            branch = entry.get("branch", "main")
            return context_from_record(
                await self._modify_on(context_id, branch, plan, writer=user_id)
            )

    # -- providers -----------------------------------------------------------------------

    async def migrate_context(
        self,
        context_id: str,
        from_provider: ProviderType | str | None = None,
        to_provider: ProviderType | str | None = None,
        options: Mapping[str, Any] | None = None,
        user_id: str | None = None,
        *,
        branch: str = "main",
    ) -> MigrationResult:
        """Convert a conversation to another provider's format, in one change: its
        messages become what the target accepts, ``primary_provider`` becomes the target
        and ``metadata["migration"]`` records the report. A version is made before and
        after. What cannot be converted is converted lossily and reported, or, with
        ``options["on_loss"] = "refuse"``, the context is left untouched and the result
        says why; a context is never half-migrated.

        Options: ``model`` (the target model), ``preserve_history`` (default True: keep
        every message; False: drop the oldest that do not fit the model's window),
        ``fit`` (default True: measure the window), ``reserve_output`` (tokens kept for
        the answer), ``on_loss`` (``"convert"`` or ``"refuse"``). With `branch`, that
        branch's conversation is migrated (its versions go on the branch)."""
        with self._metrics.measure("migrate_context"):
            if not self.settings.enable_translation:
                raise ConfigurationError(
                    "provider migration is turned off (CONTEXT_ENABLE_TRANSLATION=false)"
                )
            context_id = canonical_id(context_id)
            plan = parse_migration(from_provider, to_provider, options)
            context = await self.get_context(context_id, user_id, branch=branch)
            outcome = translate_conversation(self._translator, context, plan)
            if not outcome.result.migrated:
                return outcome.result
            checkpoint = functools.partial(
                plan_create_version,
                request=VersionRequest(
                    user_id, f"before migration to {plan.target.value}", ("migration",)
                ),
                branch=branch,
                versioning=self._versioning,
                expected_revision=context.revision,  # what was translated is still current
            )
            before = await self._modify_on(context_id, branch, checkpoint, writer=user_id)
            rows = None
            if outcome.messages is not None:
                rows = [
                    message_record(message, seq, self._bodies)[0]
                    for seq, message in enumerate(outcome.messages, start=1)
                ]
            rewrite = functools.partial(
                plan_rewrite,
                op="migrate",
                ops=outcome.ops,
                messages=rows,
                message_values=outcome.message_values,
                expected_revision=before.revision,
                request=VersionRequest(user_id, f"migrated to {plan.target.value}", ("migration",)),
                branch=branch,
                versioning=self._versioning,
            )
            record = await self._modify_on(context_id, branch, rewrite, writer=user_id)
            return outcome.result.model_copy(
                update={
                    "revision": record.revision,
                    "version_before": before.versioning.head,
                    "version_after": record.versioning.head,
                }
            )

    async def export_for_provider(
        self,
        context_id: str,
        provider: ProviderType | str,
        user_id: str | None = None,
        model: str | None = None,
        *,
        branch: str = "main",
        fit: bool = True,
        reserve_output: int | None = None,
    ) -> dict[str, Any]:
        """The conversation as a ready request body fragment for `provider` (Anthropic
        ``{"system", "messages"}``, OpenAI ``{"messages"}``, Gemini ``{"system_instruction",
        "contents"}``), fitted to the model's window unless ``fit=False``. Results are
        cached per context revision, provider and model."""
        with self._metrics.measure("export_for_provider"):
            context_id = canonical_id(context_id)
            target = parse_provider(provider, "provider")
            check_window(model, reserve_output)
            record = await self._on_branch(await self._readable(context_id, user_id), branch)
            key = (context_id, branch, record.revision, target, model, fit, reserve_output)
            cached = self._exports.get(key)
            if cached is not None:
                return cached
            view = view_of(record.versioning, record.message_count)
            messages = await self._history.messages(
                await self._history.message_rows(context_id, view)
            )
            payload = export_payload(
                self._translator, messages, target, model, fit=fit, reserve_output=reserve_output
            )
            self._exports.put(key, payload)
            return payload

    # -- moving a whole database ---------------------------------------------------------

    def export_full(
        self, user_id: str | None = None, *, progress: Progress | None = None
    ) -> AsyncIterator[bytes]:
        """Every context with everything stored of it — the row as stored, the messages
        of every branch, every branch, version and event — as the lines of a full dump
        (JSON Lines, each ending in a newline; see docs/cli.md), read one context at a
        time. `progress` is called after each context with the contexts and bytes so
        far. An administrator's operation: `PermissionDenied` for any `user_id`."""
        refuse_unless_administrator(user_id, "export the whole database")
        return export_dump(
            self.storage,
            version_codec=self._versioning.codec,
            bodies=self._bodies,
            reload_dictionaries=self._history.load_dictionaries,
            progress=progress,
        )

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
        refuse_unless_administrator(user_id, "import a full dump")
        with self._metrics.measure("import_full"):
            return await import_dump(
                self.storage,
                lines,
                version_codec=self._versioning.codec,
                bodies=self._bodies,
                skip_existing=skip_existing,
                progress=progress,
            )

    # -- monitoring ----------------------------------------------------------------------

    async def get_performance_stats(self, *, max_age: float | None = None) -> dict[str, Any]:
        """Counts and latency percentiles per operation, the cache's hit rate, and the
        storage statistics (contexts, sizes and messages by type and state), at most
        `max_age` seconds old (default: one CONTEXT_STATISTICS_REFRESH_SECONDS and
        poll; 0 counts them now). PostgreSQL reads its statistics view while the view is
        that fresh, and counts the contexts table when it is not."""
        if max_age is None:
            max_age = (
                self.settings.statistics_refresh_seconds + self.settings.maintenance_poll_seconds
            )
        metrics = self._metrics.snapshot()
        metrics["cache"] |= {"entries": len(self._cache), "trusted": self._live.cache_trusted}
        return {
            "backend": self.storage.backend,
            **metrics,
            "translation_cache_entries": len(self._exports),
            "codec": self.codec.stats(),
            "storage": await self.storage.statistics(refresh=False, max_age=max_age),
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
            if not isinstance(dry_run, bool):
                raise ValidationFailed(
                    "dry_run is True or False", [Issue("/dry_run", describe(dry_run))]
                )
            report = await run_cleanup(
                self.storage, self.settings, dry_run=dry_run, hooks=self._hooks
            )
            for context_id in report.purged + report.archived:
                self._cache.discard(context_id)
            return report

    async def run_due_maintenance(self) -> list[str]:
        """What the background task does each poll: refresh statistics and run retention
        when due, unless another process holds the lease. Returns what it ran."""
        return await run_due_maintenance(self.storage, self.settings, self._holder, self._hooks)

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
                    [Issue("/context_type", describe(context_type))],
                )
            _count(samples, "samples", lowest=1)
            if _count(size, "size", lowest=1) > _LARGEST_DICTIONARY:
                raise ValidationFailed(
                    "a dictionary is 1 byte to 1 MiB", [Issue("/size", describe(size))]
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
                "read_only": self.storage.read_only,
                **storage.details,
            },
            "event_bus": self._live.health(),
        }

    # -- helpers -------------------------------------------------------------------------

    async def _readable(
        self, context_id: str, user_id: str | None, *, include_deleted: bool = False
    ) -> ContextRecord:
        _user(user_id)
        # While every change is heard, a recently cached row is current; an older one is
        # checked, in case an announcement was lost (its writer could not reach Redis).
        recent = self._cache.fresh(context_id, _TRUSTED_FOR) if self._live.cache_trusted else None
        cached = recent or self._cache.get(context_id)
        if cached is None and self._live.rows is not None:
            cached = await self._live.rows.get(context_id)
        loaded: ContextRecord | NotModified | None = NotModified()
        if recent is None:
            loaded = await self.storage.load_context(
                context_id, None if cached is None else (cached.revision, cached.last_modified)
            )
        self._metrics.cache_lookup(isinstance(loaded, NotModified))
        if isinstance(loaded, NotModified):
            assert cached is not None
            record = cached
            if recent is None:  # checked against storage just now (it may come from L2)
                self._cache.put(record)
        elif loaded is None:
            self._cache.discard(context_id)
            raise ContextNotFound(context_id)
        else:
            record = self._verified(loaded)
            await self._remember(record)
        authorize(record, user_id, Permission.READ)
        if record.state == ContextState.DELETED and not include_deleted:
            raise ContextNotFound(context_id)
        return record

    async def _remember(self, record: ContextRecord) -> None:
        """Cache a row just committed or read from storage, here and (L2) in Redis."""
        self._cache.put(record)
        if self._live.rows is not None:
            await self._live.rows.put(record)

    async def _touch(self, record: ContextRecord) -> None:
        if self.storage.read_only:  # a read must work where nothing can be written
            return
        now = _now()
        interval = int(self.settings.access_touch_seconds * 1_000_000)
        if now - record.last_accessed >= interval:
            await self.storage.touch(record.context_id, when=now, not_since=now - interval)
            self._cache.discard(record.context_id)
            if self._live.rows is not None:
                await self._live.rows.discard(record.context_id)

    def _check_update(self, updated: Context) -> None:
        """Refuse what an update would make: content that cannot be stored (whatever the
        route: a patch's copy may nest deeper than anything it holds) or, with validation
        on, an invalid context."""
        check_json(updated)
        if self.settings.enable_validation:
            _refuse_invalid(self.validator.check(updated))

    def _verified(self, record: ContextRecord) -> ContextRecord:
        return verify_checksum(record) if self.settings.enable_validation else record

    async def _modify(
        self,
        context_id: str,
        plan: Plan,
        *,
        writer: str | None = None,
        provider: str | None = None,
        sync: bool = True,
        guarded: bool = True,
    ) -> ContextRecord:
        """Commit `plan` on one context (see `_modify_many`)."""
        records = await self._modify_many(
            {context_id: plan}, writer=writer, provider=provider, sync=sync, guarded=guarded
        )
        return records[context_id]

    async def _modify_many(
        self,
        plans: Mapping[str, Plan],
        *,
        writer: str | None = None,
        provider: str | None = None,
        sync: bool = True,
        guarded: bool = True,
    ) -> dict[str, ContextRecord]:
        """Commit each plan (given now and the size limit) on main in one transaction:
        checked against the edit lock (for `writer`, unless not `guarded`), versioned,
        cached and announced to subscribers (unless not `sync`)."""
        _user(writer)
        writes = _Writes(writer, provider, guarded)
        checked = {
            cid: self._checked(cid, self._versioning.on_main(self._bound(plan)), writes)
            for cid, plan in plans.items()
        }
        with self._forgetting_lost_locks():
            records = await self.storage.modify_contexts(checked)
        await self._committed(records.values(), writes.made.values(), sync)
        return records

    @contextlib.contextmanager
    def _forgetting_lost_locks(self) -> Iterator[None]:
        try:
            yield
        except LockLost as exc:
            self._leases.pop((exc.context_id, exc.holder), None)
            raise

    def _bound(self, plan: Plan) -> Plan:
        limits = {"now": _now(), "max_bytes": self.settings.max_size_bytes}
        return functools.partial(plan, **limits)

    def _checked(self, context_id: str, plan: Plan, writes: _Writes) -> Plan:
        def run(current: ContextRecord) -> Mutation | None:
            return writes.keep(current, plan(current), self._leases)

        return run

    async def _committed(
        self, records: Iterable[ContextRecord], made: Iterable[Mutation], sync: bool
    ) -> None:
        records = list(records)
        for record in records:
            await self._remember(record)
        if sync:
            await self._live.publish(event_from_record(m.event) for m in made)
        for record in records:
            await self._prune_if_due(record)

    async def _modify_on(
        self,
        context_id: str,
        branch: str,
        plan: Plan,
        *,
        writer: str | None = None,
        provider: str | None = None,
        sync: bool = True,
    ) -> ContextRecord:
        """Commit `plan` on `branch` of a context; the record as the branch now sees it."""
        _text(branch, "branch")
        if branch == "main":
            return await self._modify(context_id, plan, writer=writer, provider=provider, sync=sync)
        branch_plan = on_branch(self._bound(plan), name=branch, versioning=self._versioning)
        record, row = await self._modify_branch(
            context_id, branch, branch_plan, writer=writer, provider=provider, sync=sync
        )
        assert row is not None
        return branch_view(record, row)

    async def _modify_branch(
        self,
        context_id: str,
        branch: str,
        plan: BranchPlan,
        *,
        writer: str | None,
        provider: str | None = None,
        sync: bool = True,
    ) -> tuple[ContextRecord, BranchRecord | None]:
        _user(writer)
        writes = _Writes(writer, provider)

        def run(current: ContextRecord, row: BranchRecord | None) -> Mutation | None:
            return writes.keep(current, plan(current, row), self._leases)

        with self._forgetting_lost_locks():
            record, row = await self.storage.modify_branch(context_id, branch, run)
        await self._committed([record], writes.made.values(), sync)
        return record, row

    async def _on_branch(self, record: ContextRecord, branch: str) -> ContextRecord:
        if _text(branch, "branch") == "main":
            return record
        return branch_view(record, await self._history.branch(record.context_id, branch))

    def _first_version(self, new: NewContext) -> NewContext:
        record, version = self._versioning.make(
            new.record, "main", VersionRequest(new.event.user_id, "created", automatic=True)
        )
        return dataclasses.replace(new, record=record, version=version)

    async def _prune_if_due(self, record: ContextRecord) -> None:
        """Keep at most CONTEXT_MAX_VERSIONS automatic versions and CONTEXT_MAX_CHECKPOINTS
        checkpoints: checked each time the version counter passes another tenth of the
        smaller limit, so a busy context overshoots by at most that tenth between
        cleanups."""
        limit = min(self.settings.max_versions, self.settings.max_checkpoints)
        step = max(1, limit // 10)
        just_versioned = record.versioning.changes_since == 0
        if just_versioned and record.version_number > limit and record.version_number % step == 0:
            await self._prune(record.context_id)

    async def _prune(self, context_id: str, dry_run: bool = False) -> int:
        limits = VersionLimits(self.settings.max_versions, self.settings.max_checkpoints)
        return await self._history.prune(context_id, limits, dry_run=dry_run)


@dataclasses.dataclass
class _Writes:
    """The changes one call commits: checked against the rule on guarded fields and the
    edit lock for `writer` (unless not `guarded`), their events stamped with the `provider`
    that wrote them, and kept in `made` to announce once committed."""

    writer: str | None
    provider: str | None
    guarded: bool = True
    made: dict[str, Mutation] = dataclasses.field(default_factory=dict)

    def keep(
        self,
        current: ContextRecord,
        mutation: Mutation | None,
        leases: Mapping[tuple[str, str], int],
    ) -> Mutation | None:
        """`mutation` (a plan's, on `current`), if the writer may make it: whatever the
        route, only the owner or an admin changes a guarded field; and the edit lock must
        let it (checked after the plan, so that a stranger learns nothing of the lock)."""
        if mutation is None:
            return None
        authorize_commit(current, mutation.record, self.writer, op=mutation.event.op)
        if self.guarded:
            token = None if self.writer is None else leases.get((current.context_id, self.writer))
            check_lease(current, self.writer, token)
        if self.provider is not None:
            event = dataclasses.replace(mutation.event, provider=self.provider)
            mutation = dataclasses.replace(mutation, event=event)
        self.made[mutation.record.context_id] = mutation
        return mutation


_AFTER_COMMIT_SECONDS = 1.0


@contextlib.asynccontextmanager
async def _after_commit(what: str) -> AsyncIterator[None]:
    """Work that follows a committed change (presence, say): the change stands, so this
    waits a second at most and its failure is logged, never raised."""
    try:
        async with asyncio.timeout(_AFTER_COMMIT_SECONDS):
            yield
    except (BackendUnavailable, TimeoutError) as exc:
        log.warning("%s failed after the commit: %s", what, exc or "no answer in time")


def _origin(origin: UpdateOrigin | Mapping[str, Any] | None, user_id: str | None) -> UpdateOrigin:
    if isinstance(origin, UpdateOrigin):
        return origin
    if origin is not None and not isinstance(origin, Mapping):
        raise ValidationFailed(
            "origin is an UpdateOrigin or a dict", [Issue("/origin", describe(origin))]
        )
    try:
        parsed = UpdateOrigin.model_validate({"user_id": user_id or "system", **(origin or {})})
    except PydanticValidationError as exc:
        raise validation_failed("invalid origin", exc) from exc
    check_json(parsed, "/origin")
    return parsed


_LARGEST = 2**62


def _count(value: Any, name: str, *, lowest: int = 0) -> int:
    """`value` if it is a whole number storage can hold (and at least `lowest`)."""
    if isinstance(value, bool) or not isinstance(value, int) or not lowest <= value < _LARGEST:
        raise ValidationFailed(
            f"{name} must be a whole number from {lowest}", [Issue(f"/{name}", describe(value))]
        )
    return value


def _text(value: Any, name: str) -> str:
    """`value` if it is text every backend stores as given (see `check_text`)."""
    return check_text(value, f"/{name}")


def _user(user_id: Any) -> None:
    """A user id is None (trusted) or text."""
    if user_id is not None:
        check_text(user_id, "/user_id")


def _search_text(text: Any) -> None:
    """Search text is not stored: any characters go (only its words count), within bounds."""
    if (
        not isinstance(text, str)
        or len(text) > _SEARCH_MAX_CHARS
        or len(search_words(text)) > _SEARCH_MAX_WORDS
    ):
        raise ValidationFailed(
            f"a search is a text of at most {_SEARCH_MAX_CHARS} characters and "
            f"{_SEARCH_MAX_WORDS} words",
            [Issue("/text", describe(text))],
        )


def _completed(record: ContextRecord, document: dict[str, Any]) -> dict[str, Any]:
    """A version's fields; a branch version's lack the context's own (owner,
    collaborators, permissions, state), which are taken as they are now."""
    return {**{k: v for k, v in document_of(record).items() if k in OWNERSHIP_FIELDS}, **document}


def _present(value: Any) -> Any:
    return None if value is MISSING else value


def _refuse_invalid(result: ValidationResult) -> None:
    if not result.is_valid:
        raise ValidationFailed(
            "the context is not valid",
            [Issue(i.path, f"{i.code}: {i.message}", i.code) for i in result.errors],
        )


def _authorize_admin(record: ContextRecord, *, user_id: str | None) -> None:
    authorize(record, user_id, Permission.ADMIN)
