"""Contexts and their messages: creating, reading, updating (stale updates settled by the
conflict strategy), deleting, querying, searching, appending."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from .._storable import describe
from ..document import (
    Append,
    Change,
    Delete,
    Restore,
    Update,
    authorize,
    best_hits,
    canonical_id,
    context_from_record,
    event_from_record,
    next_cursor,
    parse_context,
    parse_messages,
    parse_query,
    record_query,
    with_owner,
)
from ..errors import Issue, RevisionConflict, ValidationFailed
from ..models import (
    ConflictStrategy,
    Context,
    ContextEvent,
    ContextPage,
    ContextQuery,
    Message,
    MessageList,
    Permission,
    ProviderType,
    SearchHit,
    SessionContext,
    UpdateOrigin,
)
from ..patch import apply_changes, check_changes
from ..storage import ContextRecord, Piece, SearchRecord
from ..sync import HistoryMoved, Settle, parse_strategy
from ..translation import message_source
from ..validation import ValidationResult
from ..versioning import shows, view_of
from . import _arguments as arg
from ._wiring import Core

__all__ = ["Changes", "Contexts", "MessageInput", "refuse_invalid"]

MessageInput = Message | Mapping[str, Any]
Changes = Mapping[str, Any] | Sequence[Mapping[str, Any]]
_STALE_ATTEMPTS = 5
_LOOKUP_ATTEMPTS = 3
Check = Callable[[ContextRecord, Context], None]


@dataclasses.dataclass(frozen=True, slots=True)
class _How:
    """How an update is committed: by whom, from where, settled how, on which branch,
    announced or not, under which lock token."""

    user_id: str | None
    origin: UpdateOrigin
    strategy: ConflictStrategy | None
    branch: str
    sync: bool
    lock_token: int | None
    settle: bool = True


class _Unchecked(Exception):
    """An update would give a session conversations nobody looked up yet: look them up
    (outside the transaction) and plan the update again."""

    def __init__(self, session: SessionContext, conversations: frozenset[str]) -> None:
        super().__init__(sorted(conversations))
        self.session = session
        self.conversations = conversations


def refuse_invalid(result: ValidationResult) -> None:
    if not result.is_valid:
        raise ValidationFailed(
            "the context is not valid",
            [Issue(i.path, f"{i.code}: {i.message}", i.code) for i in result.errors],
        )


class Contexts:
    def __init__(self, core: Core) -> None:
        self._core = core
        self._writer = core.writer
        self._reader = core.reader

    async def create(
        self,
        contexts: Sequence[Context | Mapping[str, Any]],
        user_id: str | None,
        source: ProviderType | str | None,
    ) -> list[str]:
        arg.user(user_id)
        provider = message_source(source)
        if isinstance(contexts, (str, bytes, Mapping)) or not isinstance(contexts, Sequence):
            raise ValidationFailed(
                "contexts is a list of contexts", [Issue("/contexts", describe(contexts))]
            )
        models = [with_owner(parse_context(context, provider), user_id) for context in contexts]
        if self._core.settings.enable_validation:
            for model in models:
                refuse_invalid(
                    await self._core.validator.validate_context(
                        model, manager=self._reader, user_id=user_id
                    )
                )
        return await self._writer.create(models, user_id=user_id)

    async def get(
        self, context_id: str, user_id: str | None, *, messages: bool, deleted: bool, branch: str
    ) -> Context:
        record = await self._reader.readable(
            canonical_id(context_id), user_id, include_deleted=deleted
        )
        await self._reader.touch(record)
        record = await self._reader.on_branch(record, branch)
        return await self._reader.context(record, with_messages=messages)

    async def update(
        self,
        context_id: str,
        changes: Changes,
        user_id: str | None,
        expected_revision: int | None,
        *,
        sync: bool,
        branch: str,
        strategy: ConflictStrategy | str | None,
        origin: UpdateOrigin | Mapping[str, Any] | None,
        lock_token: int | None,
        settle: bool = True,
    ) -> Context:
        context_id = canonical_id(context_id)
        check_changes(changes)
        writer = arg.origin(origin, arg.user(user_id))
        if expected_revision is not None:
            arg.count(expected_revision, "expected_revision")
        token = arg.lock_token(lock_token, user_id)
        how = _How(user_id, writer, parse_strategy(strategy), branch, sync, token, settle)
        looked_up: frozenset[str] = frozenset()
        for _ in range(_LOOKUP_ATTEMPTS):
            try:
                update = Update(changes, expected_revision, self._checker(looked_up))
                record = await self._commit_update(context_id, update, how)
                return context_from_record(record)
            except _Unchecked as unchecked:
                validator = self._core.validator
                result = await validator.check_sessions(
                    unchecked.session, self._reader, user_id, unchecked.conversations
                )
                refuse_invalid(result)
                looked_up |= unchecked.conversations
        raise ValidationFailed(
            "the session's conversations kept changing while they were checked; try again",
            [Issue("/active_conversations", "changed", "session.unknown_conversation")],
        )

    async def _commit_update(self, context_id: str, update: Update, how: _How) -> ContextRecord:
        """Commit `update`; a stale one is settled by the conflict strategy."""
        try:
            return await self._commit(context_id, update, how)
        except RevisionConflict:
            if update.expected_revision is None or not how.settle:
                raise
            return await self._settle(context_id, update, how)

    async def _commit(self, context_id: str, change: Change, how: _How) -> ContextRecord:
        done = await self._writer.commit(
            context_id,
            change,
            user_id=how.user_id,
            branch=how.branch,
            provider=how.origin.provider,
            sync=how.sync,
            lock_token=how.lock_token,
        )
        return done.record

    def _checker(self, looked_up: frozenset[str]) -> Check | None:
        """What an update's result must pass with validation on (None: off): the
        validator's checks, and for a session, that every conversation it gains was
        looked up as for create, with the session's user, through the reader (outside the
        transaction: the plan asks for the lookup by raising `_Unchecked`)."""
        if not self._core.settings.enable_validation:
            return None
        validator = self._core.validator

        def check(current: ContextRecord, updated: Context) -> None:
            refuse_invalid(validator.check(updated))
            if isinstance(updated, SessionContext):
                before = set(current.extra.get("active_conversations", ()))
                added = set(updated.active_conversations) - before - looked_up
                if added:
                    raise _Unchecked(updated, frozenset(added))

        return check

    async def _settle(self, context_id: str, update: Update, how: _How) -> ContextRecord:
        """An update written against `expected_revision`, settled by the conflict strategy
        against whatever is committed when it lands (inside the write transaction)."""
        expected_revision = update.expected_revision
        assert expected_revision is not None
        revision = expected_revision
        for _ in range(_STALE_ATTEMPTS):
            # Storage says where the context is: the cache may have missed the change
            # that made this update stale.
            current = await self._reader.on_branch(
                await self._reader.readable(context_id, how.user_id, fresh=True), how.branch
            )
            revision = current.revision
            if revision <= expected_revision:
                raise RevisionConflict(context_id, expected_revision, revision)
            base, since = await self._core.stale.load(
                context_id, how.branch, expected_revision, revision
            )
            settle = Settle(
                base=base,
                incoming=apply_changes(base, update.changes)[0],
                strategy=how.strategy,
                origin=how.origin,
                base_revision=expected_revision,
                since=since,
                since_revision=revision,
                check=update.check,
            )
            try:
                return await self._commit(context_id, settle, how)
            except HistoryMoved as moved:
                revision = moved.revision
        raise RevisionConflict(context_id, expected_revision, revision)

    async def delete(
        self, context_id: str, user_id: str | None, hard: bool, lock_token: int | None
    ) -> None:
        context_id = canonical_id(context_id)
        token = arg.lock_token(lock_token, arg.user(user_id))
        if not hard:
            await self._writer.commit(context_id, Delete(), user_id=user_id, lock_token=token)
            return

        def check(record: ContextRecord) -> None:
            authorize(record, user_id, Permission.ADMIN)

        await self._writer.remove(
            context_id, check, user_id=user_id, lock_token=token, guarded=True
        )

    async def restore(
        self, context_id: str, user_id: str | None, lock_token: int | None
    ) -> Context:
        context_id = canonical_id(context_id)
        token = arg.lock_token(lock_token, arg.user(user_id))
        done = await self._writer.commit(context_id, Restore(), user_id=user_id, lock_token=token)
        return context_from_record(done.record)

    async def query(
        self, query: ContextQuery | None, user_id: str | None, filters: dict[str, Any]
    ) -> ContextPage:
        parsed = parse_query(query, filters)
        arg.user(user_id)
        storage = self._core.storage
        records = [
            self._reader.verified(record)
            for record in await storage.query_contexts(record_query(parsed, user_id))
        ]
        page = records[: parsed.limit]
        more = len(records) > parsed.limit
        return ContextPage(
            items=[context_from_record(record) for record in page],
            next_cursor=next_cursor(parsed, page[-1]) if more else None,
        )

    async def search(
        self, text: str, user_id: str | None, limit: int, branch: str
    ) -> list[SearchHit]:
        arg.search_text(text)
        arg.user(user_id)
        arg.text(branch, "branch")
        arg.count(limit, "limit", lowest=1, highest=1000)
        rows = await self._core.storage.search(text, reader=user_id, limit=limit)
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
            held = await self._core.storage.load_branch(row.context_id, branch)
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

    async def append_one(
        self,
        context_id: str,
        messages: Sequence[MessageInput] | MessageInput,
        user_id: str | None,
        source: ProviderType | str | None,
        *,
        branch: str,
        lock_token: int | None,
    ) -> int:
        """Append to one conversation, on `branch`; its new revision."""
        provider = message_source(source)
        token = arg.lock_token(lock_token, arg.user(user_id))
        context_id = canonical_id(context_id)
        change = self._append_change(context_id, messages, provider)
        done = await self._writer.commit(
            context_id, change, user_id=user_id, branch=branch, lock_token=token
        )
        return done.record.revision

    async def append(
        self,
        batches: Mapping[str, Sequence[MessageInput] | MessageInput],
        user_id: str | None,
        source: ProviderType | str | None,
        lock_tokens: Mapping[str, int] | None,
    ) -> dict[str, int]:
        """Append to many conversations on main, in one transaction; their new revisions."""
        if not isinstance(batches, Mapping):
            raise ValidationFailed(
                "batches maps context ids to messages", [Issue("/batches", describe(batches))]
            )
        provider = message_source(source)
        arg.user(user_id)
        changes: dict[str, Append] = {}
        for given_id, messages in batches.items():
            context_id = canonical_id(given_id)
            if context_id in changes:
                raise ValidationFailed(f"context {context_id} is named twice in one batch")
            changes[context_id] = self._append_change(context_id, messages, provider)
        tokens = arg.lock_tokens(lock_tokens, user_id, changes)
        records = await self._writer.commit_many(changes, user_id=user_id, lock_tokens=tokens)
        return {context_id: record.revision for context_id, record in records.items()}

    def _append_change(
        self,
        context_id: str,
        messages: Sequence[MessageInput] | MessageInput,
        source: ProviderType | None,
    ) -> Append:
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
        return Append(parsed, self._core.bodies)

    async def messages(
        self,
        context_id: str,
        user_id: str | None,
        limit: int,
        before_seq: int | None,
        branch: str,
    ) -> MessageList:
        context_id = canonical_id(context_id)
        arg.count(limit, "limit", lowest=1)
        if before_seq is not None:
            arg.count(before_seq, "before_seq")
        record = await self._reader.on_branch(
            await self._reader.readable(context_id, user_id), branch
        )
        view = view_of(record.versioning, record.message_count)
        page = await self._reader.view_messages(
            context_id, view, limit=limit, before_seq=before_seq
        )
        page.stale = page.stale or record.stale
        return page

    async def events(
        self,
        context_id: str,
        user_id: str | None,
        since_revision: int,
        limit: int | None,
        branch: str | None,
    ) -> list[ContextEvent]:
        context_id = canonical_id(context_id)
        arg.count(since_revision, "since_revision")
        if limit is not None:
            arg.count(limit, "limit", lowest=1)
        if branch is not None:
            arg.text(branch, "branch")
        await self._reader.readable(context_id, user_id, include_deleted=True)
        rows = await self._core.storage.load_events(
            context_id, since_revision=since_revision, limit=limit, branch=branch
        )
        return [event_from_record(row) for row in rows]
