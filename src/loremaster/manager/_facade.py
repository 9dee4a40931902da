"""`ContextManager`: the one entry point of the library, the server and the CLI.

A facade: each method checks nothing and decides nothing itself; it hands the call to the
part of `loremaster.manager` that does it (see docs/architecture.md).
"""

from __future__ import annotations

from collections.abc import (
    Mapping,
    Sequence,
)
from contextlib import AbstractContextManager
from typing import Any, Literal, TypeVar

from ..bus import Subscription
from ..codec import Codec
from ..config import Settings, load_settings
from ..models import (
    Branch,
    ConflictStrategy,
    Context,
    ContextConflict,
    ContextEvent,
    ContextLock,
    ContextPage,
    ContextQuery,
    ContextVersion,
    MergeResult,
    MessageList,
    MigrationResult,
    ProviderCall,
    ProviderType,
    RecordedCall,
    SearchHit,
    UpdateOrigin,
    VersionDiff,
)
from ..sync import EventStream, PresenceEntry
from ..validation import ContextValidator
from ._admin import Admin
from ._calls import Calls
from ._collaboration import Collaboration
from ._contexts import Changes, Contexts, MessageInput
from ._idempotency import Idempotency
from ._metrics import measured
from ._providers import Providers
from ._running import Running
from ._versions import MergeStrategy, Versions
from ._wiring import Core
from ._writer import tool_call

__all__ = ["ContextManager"]

Client = TypeVar("Client")


class ContextManager(Running):
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
        self._core = core = Core(self.settings)
        self.codec: Codec = core.codec
        self.validator: ContextValidator = core.validator
        self._contexts = Contexts(core)
        self._versions = Versions(core)
        self._collaboration = Collaboration(core, self._contexts)
        self._providers = Providers(core, self._contexts)
        self._admin = Admin(core)
        self._calls = Calls(core, self._contexts, self._providers)

    @property
    def idempotency(self) -> Idempotency:
        """Idempotency keys kept in the database, shared by every process using it: a
        server claims a request's key before it writes and stores its response after
        (docs/library.md#idempotency-keys)."""
        return self._core.idempotency

    @measured
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
        return (await self._contexts.create([context], user_id, source))[0]

    @measured
    async def create_contexts(
        self,
        contexts: Sequence[Context | Mapping[str, Any]],
        user_id: str | None = None,
        *,
        source: ProviderType | str | None = None,
    ) -> list[str]:
        """Store many new contexts in one transaction (all or none); their ids, in order."""
        return await self._contexts.create(contexts, user_id, source)

    @measured
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
        return await self._contexts.get(
            context_id, user_id, messages=include_messages, deleted=include_deleted, branch=branch
        )

    @measured
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
        settle: bool = True,
        lock_token: int | None = None,
    ) -> Context:
        """Apply `changes` and return the context as committed (without its messages): a
        dict is an RFC 7396 merge patch over the fields, a list RFC 6902 JSON Patch.

        A stale `expected_revision` is settled by `strategy` (else the context's
        ``conflict_policy``), three ways, never losing a change silently (docs/sync.md);
        with ``settle=False`` it raises `RevisionConflict` and writes nothing instead.
        `origin` says who wrote it (a user, or ``{"provider": "anthropic"}``). With
        ``sync=False`` subscribers are not told at once; with `branch`, that branch
        changes. With `lock_token` (a `ContextLock.token`), the write lands only while
        `user_id` holds the live lock with that token, whichever process took it
        (`LockLost` otherwise)."""
        return await self._contexts.update(
            context_id,
            changes,
            user_id,
            expected_revision,
            sync=sync,
            branch=branch,
            strategy=strategy,
            origin=origin,
            settle=settle,
            lock_token=lock_token,
        )

    @measured
    async def delete_context(
        self,
        context_id: str,
        user_id: str | None = None,
        hard_delete: bool = False,
        *,
        lock_token: int | None = None,
    ) -> None:
        """Soft delete (state ``deleted``, restorable, history kept) or, with
        ``hard_delete=True``, remove the context, its messages and its events for good.
        `lock_token` as for `update_context`."""
        await self._contexts.delete(context_id, user_id, hard_delete, lock_token)

    @measured
    async def restore_context(
        self, context_id: str, user_id: str | None = None, *, lock_token: int | None = None
    ) -> Context:
        """Bring a soft-deleted context back (state ``active``). `lock_token` as for
        `update_context`."""
        return await self._contexts.restore(context_id, user_id, lock_token)

    @measured
    async def query_contexts(
        self, query: ContextQuery | None = None, user_id: str | None = None, **filters: Any
    ) -> ContextPage:
        """One page of the contexts `user_id` may read that match `query` (or `filters`,
        the fields of `ContextQuery` as keywords). Messages are not loaded."""
        return await self._contexts.query(query, user_id, filters)

    @measured
    async def search_contexts(
        self, text: str, user_id: str | None = None, limit: int = 20, *, branch: str = "main"
    ) -> list[SearchHit]:
        """Full-text search over titles, descriptions and message text of the contexts
        `user_id` may read; one hit per context, best first. Messages count only where
        `branch` shows them (a rollback or a migration hides what came before it; a
        message of another branch is not this one's); with a branch other than main, only
        contexts that have it, and only their messages (titles and descriptions are
        main's)."""
        return await self._contexts.search(text, user_id, limit, branch)

    @measured
    async def append_messages(
        self,
        context_id: str,
        messages: Sequence[MessageInput] | MessageInput,
        user_id: str | None = None,
        *,
        branch: str = "main",
        source: ProviderType | str | None = None,
        lock_token: int | None = None,
    ) -> int:
        """Append messages to a conversation in one change; returns the new revision.

        Costs the same at message 10 as at message 10,000: messages have a table of their
        own and the context row is not rewritten. With `branch`, they go to that branch.
        A message may be in a provider's own shape (OpenAI, Anthropic, Gemini): detected,
        or the one `source` names; one may become several neutral messages.
        `lock_token` as for `update_context`.
        """
        return await self._contexts.append_one(
            context_id, messages, user_id, source, branch=branch, lock_token=lock_token
        )

    @measured
    async def append_messages_batch(
        self,
        batches: Mapping[str, Sequence[MessageInput] | MessageInput],
        user_id: str | None = None,
        *,
        source: ProviderType | str | None = None,
        lock_tokens: Mapping[str, int] | None = None,
    ) -> dict[str, int]:
        """Append to many conversations in one transaction (all or none); returns each
        conversation's new revision. `source` as for `append_messages`; `lock_tokens`
        gives the lock token of each conversation named (see `update_context`)."""
        return await self._contexts.append(batches, user_id, source, lock_tokens)

    @measured
    async def get_messages(
        self,
        context_id: str,
        user_id: str | None = None,
        limit: int = 50,
        before_seq: int | None = None,
        *,
        branch: str = "main",
    ) -> MessageList:
        """The last `limit` messages (before message number `before_seq`), oldest first.

        Each message's ``seq`` is its position; pass the first one's as `before_seq` to
        page further back. With `branch`, that branch's messages.
        """
        return await self._contexts.messages(context_id, user_id, limit, before_seq, branch)

    @measured
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
        return await self._contexts.events(context_id, user_id, since_revision, limit, branch)

    @measured
    async def create_version(
        self,
        context_id: str,
        user_id: str | None = None,
        message: str = "",
        tags: Sequence[str] = (),
        *,
        branch: str = "main",
        lock_token: int | None = None,
    ) -> ContextVersion:
        """Record the context as it is now (fields and messages) as a version: a
        checkpoint to list, diff, branch from or roll back to. Tagged versions are never
        removed by cleanup. `lock_token` as for `update_context`."""
        return await self._versions.create(
            context_id, user_id, message, tags, branch, lock_token=lock_token
        )

    @measured
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
        return await self._versions.history(
            context_id, user_id, limit=limit, before=before, branch=branch, tag=tag
        )

    @measured
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
        return await self._versions.get(context_id, version_id, user_id, include_messages)

    @measured
    async def diff_versions(
        self, context_id: str, a: str, b: str, user_id: str | None = None
    ) -> VersionDiff:
        """What changed from version `a` to version `b`: the JSON Patch over the fields
        (``jsonpatch.apply_patch(fields_of_a, diff.patch)`` gives b's) and the messages
        b has that a does not."""
        return await self._versions.diff(context_id, a, b, user_id)

    @measured
    async def rollback_to_version(
        self,
        context_id: str,
        version_id: str,
        user_id: str | None = None,
        *,
        branch: str = "main",
        lock_token: int | None = None,
    ) -> Context:
        """Bring `branch` back to a version's fields and messages, as a new revision and a
        new version; nothing is deleted. Messages after the version leave the branch's
        view and stay reachable through the versions that hold them. Owner,
        collaborators, permissions and state are not rolled back. Returns the context.
        `lock_token` as for `update_context`."""
        return await self._versions.rollback(context_id, version_id, user_id, branch, lock_token)

    @measured
    async def create_branch(
        self,
        context_id: str,
        name: str,
        from_version_id: str | None = None,
        user_id: str | None = None,
        *,
        lock_token: int | None = None,
    ) -> Branch:
        """A new branch starting at a version (default: main as it is now). Costs the same
        whatever the context's size: nothing is copied. Read and write it with the
        ``branch=`` argument of `get_context`, `update_context`, `append_messages`,
        `get_messages` and `get_version_history`. `lock_token` as for `update_context`."""
        return await self._versions.create_branch(
            context_id, name, from_version_id, user_id, lock_token
        )

    @measured
    async def list_branches(self, context_id: str, user_id: str | None = None) -> list[Branch]:
        """Every branch of the context, main first."""
        return await self._versions.branches(context_id, user_id)

    @measured
    async def merge_branch(
        self,
        context_id: str,
        source: str,
        target: str = "main",
        user_id: str | None = None,
        strategy: MergeStrategy = "fail",
        *,
        lock_token: int | None = None,
    ) -> MergeResult:
        """Merge branch `source` into `target`: a three-way merge of the fields against
        the version they share (different paths both land, equal changes are no conflict)
        and the source's new messages appended after the target's. A path both changed
        differently is a conflict: with ``strategy="fail"`` nothing is written and the
        result lists the conflicts; ``"source"`` or ``"target"`` says which side wins.
        `lock_token` as for `update_context` (the version of the source a merge may make
        first included)."""
        return await self._versions.merge(
            context_id, source, target, user_id, strategy, lock_token=lock_token
        )

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
        return await self._collaboration.subscribe(
            context_id, user_id, since_revision, poll_interval
        )

    async def subscribe_all(self) -> Subscription:
        """Every committed change of every context as this process hears it (every
        process with Redis or on the same SQLite file), a `Gap` wherever some may have
        been missed (then read what you need again). For trusted code: no user is
        checked. A bridge tells its clients the list of contexts changed with it. Close
        it with ``await subscription.close()`` or ``async with``."""
        return await self._collaboration.subscribe_all()

    def tool_call(self, name: str) -> AbstractContextManager[None]:
        """Attribute the changes committed inside ``with cm.tool_call(name):`` (by this
        task) to a tool call: each one's event records `name` as its ``tool``
        (``"mcp:append_messages"``, say), so the audit log says what an agent did and a
        rollback or a branch can undo exactly that."""
        return tool_call(name)

    @measured
    async def acquire_context_lock(
        self,
        context_id: str,
        user_id: str,
        timeout: float | None = None,
        *,
        remember: bool = True,
    ) -> ContextLock:
        """Take the exclusive edit lock for `timeout` seconds (default
        CONTEXT_LOCK_TIMEOUT). While it lasts, writes by anyone else raise `LockHeld`;
        once it has expired, the holder's own writes raise `LockLost` (it may have been
        paused past its lease), whatever it believes. Taking it again extends it; it
        never shortens it. This manager remembers the token for the holder's later
        writes; with ``remember=False`` it does not (a server of many processes, where
        the lock may be released through another, passes ``lock_token=`` instead)."""
        return await self._collaboration.lock(
            context_id, user_id, timeout, renew_only=False, remember=remember
        )

    @measured
    async def renew_context_lock(
        self,
        context_id: str,
        user_id: str,
        timeout: float | None = None,
        *,
        lock_token: int | None = None,
        remember: bool = True,
    ) -> ContextLock:
        """Extend a lock the user still holds (`LockLost` if it has expired); with
        `lock_token`, only the live lease with that token. `remember` as for
        `acquire_context_lock`."""
        return await self._collaboration.lock(
            context_id,
            user_id,
            timeout,
            renew_only=True,
            lock_token=lock_token,
            remember=remember,
        )

    @measured
    async def release_context_lock(
        self, context_id: str, user_id: str, *, lock_token: int | None = None
    ) -> None:
        """Give the lock up (nothing happens if the user does not hold it); with
        `lock_token`, only the lease with that token, live (`LockLost` otherwise)."""
        await self._collaboration.release(context_id, user_id, lock_token)

    @measured
    async def get_context_lock(
        self, context_id: str, user_id: str | None = None
    ) -> ContextLock | None:
        """The context's edit lock while its lease lasts (holder, fencing token, expiry),
        or None when nobody holds a live one. Expiry is judged by this process's clock
        here; writes judge it by the database's."""
        return await self._collaboration.current_lock(context_id, user_id)

    @measured
    async def join_collaborative_session(self, context_id: str, user_id: str) -> Context:
        """Sit `user_id` at a collaborative room's table: a participant (a change, event
        op ``join``) and a member who may read and write, and present. Open rooms take
        anyone with their id while seats remain (``max_participants``, at most
        CONTEXT_MAX_PARTICIPANTS); members-only rooms take users who may already read."""
        return await self._collaboration.join(context_id, user_id)

    @measured
    async def leave_collaborative_session(self, context_id: str, user_id: str) -> Context:
        """Take `user_id` off the room's participants (event op ``leave``; they stay a
        member) and out of its presence; a lock they hold is released."""
        return await self._collaboration.leave(context_id, user_id)

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
        return await self._collaboration.update_presence(context_id, user_id, viewing, typing)

    async def get_presence(
        self, context_id: str, user_id: str | None = None
    ) -> list[PresenceEntry]:
        """Who is present in a context now, and what they view or type."""
        return await self._collaboration.presence(context_id, user_id)

    async def list_conflicts(
        self, context_id: str, user_id: str | None = None
    ) -> list[ContextConflict]:
        """The conflicts waiting for a person (manual_merge, user_choice), oldest first;
        a context with any is flagged until they are resolved."""
        return await self._collaboration.conflicts(context_id, user_id)

    @measured
    async def resolve_conflict(
        self,
        conflict_id: str,
        resolution: Mapping[str, str],
        user_id: str | None = None,
        *,
        lock_token: int | None = None,
    ) -> Context:
        """Settle a recorded conflict: `resolution` maps each of its paths to the side it
        takes, ``"current"`` (what was committed), ``"incoming"`` (the conflicting update)
        or ``"base"``. A user_choice conflict is settled by the user it was offered to.
        `lock_token` as for `update_context`."""
        return await self._collaboration.resolve(conflict_id, resolution, user_id, lock_token)

    @measured
    async def migrate_context(
        self,
        context_id: str,
        from_provider: ProviderType | str | None = None,
        to_provider: ProviderType | str | None = None,
        options: Mapping[str, Any] | None = None,
        user_id: str | None = None,
        *,
        branch: str = "main",
        lock_token: int | None = None,
    ) -> MigrationResult:
        """Convert a conversation to another provider's format, in one change: its
        messages become what the target accepts, ``primary_provider`` the target, and
        ``metadata["migration"]`` the report; a version is made before and after, and a
        context is never half-migrated. Options: ``model``, ``preserve_history``,
        ``fit``, ``reserve_output``, ``on_loss`` (``"convert"`` or ``"refuse"``); see
        docs/library.md. With `branch`, that branch's conversation. `lock_token` as for
        `update_context` (both versions' commits are checked)."""
        return await self._providers.migrate(
            context_id,
            from_provider,
            to_provider,
            options,
            user_id=user_id,
            branch=branch,
            lock_token=lock_token,
        )

    @measured
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
        return await self._providers.export(
            context_id,
            provider,
            user_id,
            model,
            branch=branch,
            fit=fit,
            reserve_output=reserve_output,
        )

    def record_calls(
        self,
        client: Client,
        context_id: str,
        *,
        user_id: str | None = None,
        branch: str | None = None,
        on_record_error: Literal["log", "raise"] = "log",
    ) -> Client:
        """The application's own SDK client (``anthropic.AsyncAnthropic``,
        ``openai.AsyncOpenAI``, ``google.genai.Client``), recording every call into the
        conversation: the same methods, return types and exceptions. Each call stores the
        request's messages the context does not hold yet and the reply, in one change;
        the reply's ``metadata["call"]`` holds the call's record (models, usage, latency,
        cost, error). A request whose history departs from the stored one goes on a new
        branch, and the client's calls follow it: ``client.loremaster.branch`` names it,
        ``client.loremaster.last`` is the latest call's `RecordedCall`. Streams are
        recorded once, when they end (``partial`` if abandoned or broken). A call that
        cannot be recorded still returns the provider's answer (logged, counted in the
        statistics), or raises `CallNotRecorded` with ``on_record_error="raise"``.
        Synchronous clients are refused. See docs/calls.md."""
        recorded: Client = self._calls.record_calls(
            client, context_id, user_id, branch, on_record_error
        )
        return recorded

    @measured
    async def complete(
        self,
        context_id: str,
        message_or_messages: Sequence[MessageInput] | MessageInput | str,
        *,
        providers: Sequence[tuple[Any, str]],
        user_id: str | None = None,
        branch: str = "main",
        **request_options: Any,
    ) -> RecordedCall:
        """Append the message(s) (a text is a user message), ask the first of
        `providers` (``(client, model)`` pairs) to answer the whole conversation
        (exported for it, fitted to the model's window when the registry knows the
        model) and store the reply; on a failure
        worth another try (rate limit, overload, 5xx, timeout, connection) ask the next
        one, the same conversation translated for it. Each failed attempt is listed in
        the reply's ``metadata["call"]["fallbacks"]``; an error another provider would
        not fix (400, 401, ...) is raised at once, as is the last provider's. Options:
        ``max_tokens`` (Anthropic's default: the model's longest answer),
        ``temperature``, ``top_p``, ``stop_sequences``. Returns the `RecordedCall`
        (``reply``, ``provider``, ``model``); a reply that could not be stored is
        returned all the same, with ``recorded=False``."""
        return await self._calls.complete(
            context_id,
            message_or_messages,
            providers=providers,
            user_id=user_id,
            branch=branch,
            options=request_options,
        )

    @measured
    async def get_calls(
        self,
        context_id: str,
        user_id: str | None = None,
        limit: int = 50,
        *,
        branch: str | None = None,
    ) -> list[ProviderCall]:
        """The context's recorded calls, newest first (only `branch`'s, when given): time,
        provider, model, tokens, latency, cost, and each call's whole record."""
        return await self._calls.list(context_id, user_id, limit, branch)
