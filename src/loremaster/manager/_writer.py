"""The one writer: every committed change goes through it.

    load the row -> the change's plan -> versioning's bookkeeping -> the rule on guarded
    fields and the edit lock -> write (one transaction) -> after the commit: caches,
    announcement, version cleanup

Plans are pure; the storage backend runs them inside its write transaction (see
`Storage.modify_contexts`). After the commit, every committed change reaches every
process's caches, announced to subscribers or (``sync=False``, hard deletes) quietly.
"""

from __future__ import annotations

import contextlib
import dataclasses
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence

from ..config import Settings
from ..document import (
    BranchChange,
    Change,
    MessageBodies,
    Write,
    authorize_commit,
    event_from_record,
    new_context,
)
from ..errors import LockLost
from ..models import Context
from ..storage import BranchRecord, ContextRecord, EventRecord, Mutation, Storage, VersionRecord
from ..sync import Live, RecordCache, check_lease
from ..versioning import (
    History,
    Versioning,
    VersionLimits,
    VersionRequest,
    branch_view,
)
from ._arguments import text, user
from ._opened import OnStorage

__all__ = ["Committed", "Writer"]


def now() -> int:
    """The time, in microseconds since the epoch."""
    return time.time_ns() // 1000


@dataclasses.dataclass(frozen=True, slots=True)
class Committed:
    """A committed change: the context as the branch written now sees it, and the
    mutation committed (None: the change had nothing to do)."""

    record: ContextRecord
    mutation: Mutation | None

    @property
    def version(self) -> VersionRecord:
        """The version the change made (for changes that always make one)."""
        assert self.mutation is not None
        assert self.mutation.version is not None
        return self.mutation.version


@dataclasses.dataclass(frozen=True, slots=True)
class _Admission:
    """Whether a planned mutation may be committed, and its event's author: whatever
    the route, only the owner or an admin changes a guarded field; and (if `guarded`)
    the edit lock must let the writer (checked after the plan, so that a stranger
    learns nothing of the lock)."""

    write: Write
    provider: str | None
    guarded: bool
    tokens: Mapping[str, int | None]
    """The fencing token each context's lease is checked against (None: the writer
    believes it holds no lock there)."""

    def admit(self, current: ContextRecord, mutation: Mutation | None) -> Mutation | None:
        """The mutation to commit; a write with nothing to change passes the lock too, so
        that a fenced-off writer learns it even then."""
        if mutation is not None:
            authorize_commit(current, mutation.record, self.write.user_id, op=mutation.event.op)
        self.fence(current)
        if mutation is None or self.provider is None:
            return mutation
        event = dataclasses.replace(mutation.event, provider=self.provider)
        return dataclasses.replace(mutation, event=event)

    def fence(self, current: ContextRecord) -> None:
        """Refuse the write if it is `guarded` and the edit lock does not allow it."""
        if self.guarded:
            check_lease(current, self.write.user_id, self.tokens.get(current.context_id))


class Writer(OnStorage):
    """Commits changes: the only code that writes contexts."""

    def __init__(
        self,
        storage: Callable[[], Storage],
        settings: Settings,
        *,
        versioning: Versioning,
        history: History,
        bodies: MessageBodies,
        cache: RecordCache,
        live: Live,
    ) -> None:
        super().__init__(storage)
        self._settings = settings
        self._versioning = versioning
        self._history = history
        self._bodies = bodies
        self._cache = cache
        self._live = live
        self.leases: dict[tuple[str, str], int] = {}
        """Fencing tokens of the locks this manager took, by (context, holder): what a
        write is checked against when its caller gives no token."""

    def write(self, user_id: str | None) -> Write:
        """The circumstances of a commit by `user_id` (None: the system), checked."""
        return Write(user_id=user(user_id), now=now(), max_bytes=self._settings.max_size_bytes)

    # -- committing ----------------------------------------------------------------------

    async def create(self, contexts: Sequence[Context], *, user_id: str | None) -> list[str]:
        """Store new contexts in one transaction, each with its first version if versions
        are made automatically."""
        write = self.write(user_id)
        created = [new_context(context, write, self._bodies) for context in contexts]
        if self._versioning.policy.auto:
            request = VersionRequest(user_id, "created", automatic=True)
            for index, new in enumerate(created):
                record, version = self._versioning.make(new.record, "main", request)
                created[index] = dataclasses.replace(new, record=record, version=version)
        if created:
            await self._storage.insert_contexts(created)
        await self._after([new.record for new in created], [new.event for new in created])
        return [new.record.context_id for new in created]

    async def commit(
        self,
        context_id: str,
        change: Change,
        *,
        user_id: str | None,
        branch: str = "main",
        provider: str | None = None,
        sync: bool = True,
        guarded: bool = True,
        lock_token: int | None = None,
    ) -> Committed:
        """Commit `change` on `branch` of one context; with `lock_token`, only under the
        writer's live lease with that token."""
        tokens = {context_id: lock_token}
        if text(branch, "branch") == "main":
            records, made = await self._commit_main(
                {context_id: change}, user_id, tokens, provider=provider, sync=sync, guarded=guarded
            )
            return Committed(records[context_id], made.get(context_id))
        admission = self._admission(user_id, tokens, provider=provider)

        def run(current: ContextRecord, row: BranchRecord | None) -> Mutation | None:
            mutation = self._versioning.on_branch(change, current, row, branch, admission.write)
            return admission.admit(current, mutation)

        record, row, mutation = await self._commit_branch(
            context_id, branch, run, admission, sync=sync
        )
        assert row is not None
        return Committed(branch_view(record, row), mutation)

    async def commit_many(
        self,
        changes: Mapping[str, Change],
        *,
        user_id: str | None,
        guarded: bool = True,
        lock_tokens: Mapping[str, int] | None = None,
    ) -> dict[str, ContextRecord]:
        """Commit a change on main of each context, all in one transaction; a context in
        `lock_tokens` only under the writer's live lease with that token."""
        given = lock_tokens or {}
        tokens = {context_id: given.get(context_id) for context_id in changes}
        records, _ = await self._commit_main(changes, user_id, tokens, guarded=guarded)
        return records

    async def create_branch(
        self,
        context_id: str,
        name: str,
        change: BranchChange,
        *,
        user_id: str | None,
        lock_token: int | None = None,
    ) -> tuple[ContextRecord, BranchRecord]:
        admission = self._admission(user_id, {context_id: lock_token})

        def run(current: ContextRecord, row: BranchRecord | None) -> Mutation | None:
            return admission.admit(current, change.plan(current, row, admission.write))

        record, row, _ = await self._commit_branch(context_id, name, run, admission)
        assert row is not None
        return record, row

    async def remove(
        self,
        context_id: str,
        check: Callable[[ContextRecord], None],
        *,
        user_id: str | None = None,
        lock_token: int | None = None,
        guarded: bool = False,
    ) -> None:
        """Remove a context for good (its messages, events, versions and branches), if
        `check` allows and (if `guarded`) the edit lock lets `user_id`: a hard delete, or
        retention's purge."""
        admission = self._admission(user_id, {context_id: lock_token}, guarded=guarded)

        def allowed(current: ContextRecord) -> None:
            check(current)
            admission.fence(current)

        with self._forgetting_lost_locks(admission):
            await self._storage.delete_context(context_id, allowed)
        await self._forget([context_id])

    # -- the pipeline --------------------------------------------------------------------

    def _admission(
        self,
        user_id: str | None,
        given: Mapping[str, int | None],
        *,
        provider: str | None = None,
        guarded: bool = True,
    ) -> _Admission:
        """The admission of a write by `user_id` to the contexts of `given`, each with the
        fencing token its caller gave, if any."""
        write = self.write(user_id)
        tokens = {cid: self._token(cid, write.user_id, token) for cid, token in given.items()}
        return _Admission(write, provider, guarded, tokens)

    def _token(self, context_id: str, user_id: str | None, given: int | None) -> int | None:
        """The token a write is checked against: the one its caller gave, else that of the
        lock this manager took for the user, if any."""
        if given is not None or user_id is None:
            return given
        return self.leases.get((context_id, user_id))

    async def _commit_main(
        self,
        changes: Mapping[str, Change],
        user_id: str | None,
        tokens: Mapping[str, int | None],
        *,
        provider: str | None = None,
        sync: bool = True,
        guarded: bool = True,
    ) -> tuple[dict[str, ContextRecord], dict[str, Mutation]]:
        admission = self._admission(user_id, tokens, provider=provider, guarded=guarded)
        made: dict[str, Mutation] = {}

        def plan_for(change: Change) -> Callable[[ContextRecord], Mutation | None]:
            def run(current: ContextRecord) -> Mutation | None:
                planned = change.plan(current, admission.write)
                mutation = admission.admit(current, self._versioning.track(planned, branch="main"))
                if mutation is not None:
                    made[current.context_id] = mutation
                return mutation

            return run

        plans = {context_id: plan_for(change) for context_id, change in changes.items()}
        with self._forgetting_lost_locks(admission):
            records = await self._storage.modify_contexts(plans)
        await self._after(records.values(), [m.event for m in made.values()], sync=sync)
        return records, made

    async def _commit_branch(
        self,
        context_id: str,
        name: str,
        plan: Callable[[ContextRecord, BranchRecord | None], Mutation | None],
        admission: _Admission,
        *,
        sync: bool = True,
    ) -> tuple[ContextRecord, BranchRecord | None, Mutation | None]:
        made: list[Mutation] = []

        def run(current: ContextRecord, row: BranchRecord | None) -> Mutation | None:
            mutation = plan(current, row)
            made[:] = [] if mutation is None else [mutation]
            return mutation

        with self._forgetting_lost_locks(admission):
            record, row = await self._storage.modify_branch(context_id, name, run)
        await self._after([record], [m.event for m in made], sync=sync)
        return record, row, made[0] if made else None

    @contextlib.contextmanager
    def _forgetting_lost_locks(self, admission: _Admission) -> Iterator[None]:
        """Forget the lock this manager took when a write checked against its token finds
        it lost (a token the caller gave may be an older one, proving nothing of it)."""
        try:
            yield
        except LockLost as exc:
            key = (exc.context_id, exc.holder)
            if self.leases.get(key) == admission.tokens.get(exc.context_id):
                self.leases.pop(key, None)
            raise

    # -- after the commit ----------------------------------------------------------------

    async def _after(
        self,
        records: Iterable[ContextRecord],
        events: Sequence[EventRecord],
        *,
        sync: bool = True,
    ) -> None:
        """The one step after every commit: cache the rows (read-your-writes, here and in
        the shared cache), tell every process (subscribers too unless not `sync`), and
        clean old versions up when due."""
        records = list(records)
        for record in records:
            await self.remember(record)
        if sync:
            await self._live.publish(event_from_record(event) for event in events)
        else:
            await self._live.publish_quiet({e.context_id: e.revision for e in events})
        for record in records:
            await self._prune_if_due(record)

    async def remember(self, record: ContextRecord) -> None:
        """Cache a row just committed or read from storage, here and (L2) in Redis."""
        self._cache.put(record)
        if self._live.rows is not None:
            await self._live.rows.put(record)

    async def _forget(self, context_ids: Sequence[str]) -> None:
        for context_id in context_ids:
            self._cache.discard(context_id)
            if self._live.rows is not None:
                await self._live.rows.discard(context_id)
        await self._live.publish_quiet(dict.fromkeys(context_ids))

    async def _prune_if_due(self, record: ContextRecord) -> None:
        """Keep at most CONTEXT_MAX_VERSIONS automatic versions and CONTEXT_MAX_CHECKPOINTS
        checkpoints: checked each time the version counter passes another tenth of the
        smaller limit, so a busy context overshoots by at most that tenth between
        cleanups."""
        limit = min(self._settings.max_versions, self._settings.max_checkpoints)
        step = max(1, limit // 10)
        just_versioned = record.versioning.changes_since == 0
        if just_versioned and record.version_number > limit and record.version_number % step == 0:
            await self.prune(record.context_id)

    async def prune(self, context_id: str, dry_run: bool = False) -> int:
        limits = VersionLimits(self._settings.max_versions, self._settings.max_checkpoints)
        return await self._history.prune(context_id, limits, dry_run=dry_run)
