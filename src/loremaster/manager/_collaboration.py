"""Working together, live: following a context, edit locks, rooms, presence, conflicts."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Mapping

from ..bus import ALL, Subscription
from ..document import canonical_id, context_from_record
from ..errors import BackendUnavailable
from ..models import Context, ContextConflict, ContextEvent, ContextLock, to_micros, utc_now
from ..sync import (
    EventStream,
    Join,
    Leave,
    Lock,
    PresenceEntry,
    Release,
    Resolve,
    conflict_model,
    lock_model,
    snapshot_event,
)
from . import _arguments as arg
from ._contexts import Contexts
from ._wiring import Core

__all__ = ["Collaboration"]

log = logging.getLogger("loremaster")

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


class Collaboration:
    def __init__(self, core: Core, contexts: Contexts) -> None:
        self._core = core
        self._contexts = contexts
        self._writer = core.writer
        self._reader = core.reader

    async def subscribe(
        self,
        context_id: str,
        user_id: str | None,
        since_revision: int | None,
        poll_interval: float,
    ) -> EventStream:
        context_id = canonical_id(context_id)
        if since_revision is not None:
            arg.count(since_revision, "since_revision")
        arg.seconds(poll_interval, "poll_interval")
        record = await self._reader.readable(context_id, user_id, include_deleted=True)

        async def load_snapshot(cid: str) -> ContextEvent:
            context = await self._contexts.get(
                cid, user_id, messages=True, deleted=True, branch="main"
            )
            return snapshot_event(cid, context.revision, context.model_dump(mode="json"))

        return self._core.live.follow(
            context_id,
            after_revision=record.revision if since_revision is None else since_revision,
            load_events=self._core.load_events,
            load_snapshot=load_snapshot,
            refill_interval=poll_interval,
        )

    async def subscribe_all(self) -> Subscription:
        return await self._core.bus.subscribe(ALL)

    async def lock(
        self,
        context_id: str,
        user_id: str,
        timeout: float | None,
        *,
        renew_only: bool,
        lock_token: int | None = None,
        remember: bool = True,
    ) -> ContextLock:
        """Take or extend the lock (given a token, only the live lease with that token);
        `remember` keeps its token for this process's later writes."""
        context_id = canonical_id(context_id)
        token = arg.lock_token(lock_token, arg.member(user_id))
        given = self._core.settings.lock_timeout if timeout is None else timeout
        change = Lock(arg.seconds(given, "timeout"), renew_only)
        done = await self._writer.commit(
            context_id, change, user_id=user_id, guarded=token is not None, lock_token=token
        )
        lock = lock_model(done.record)
        if remember:
            self._writer.leases[(context_id, user_id)] = lock.token
        return lock

    async def release(self, context_id: str, user_id: str, lock_token: int | None) -> None:
        """Give the lock up (given a token, only the live lease with that token)."""
        context_id = canonical_id(context_id)
        token = arg.lock_token(lock_token, arg.member(user_id))
        await self._writer.commit(
            context_id, Release(), user_id=user_id, guarded=token is not None, lock_token=token
        )
        self._writer.leases.pop((context_id, user_id), None)

    async def current_lock(self, context_id: str, user_id: str | None) -> ContextLock | None:
        record = await self._reader.readable(canonical_id(context_id), user_id)
        lease = record.coordination.lease
        if lease is None or lease.expires_at <= to_micros(utc_now()):
            return None
        return lock_model(record)

    async def join(self, context_id: str, user_id: str) -> Context:
        context_id = canonical_id(context_id)
        change = Join(self._core.settings.max_participants)
        done = await self._writer.commit(
            context_id, change, user_id=arg.member(user_id), guarded=False
        )
        async with _after_commit("presence of the join"):
            await self._core.live.presence.heartbeat(context_id, user_id)
        return context_from_record(done.record)

    async def leave(self, context_id: str, user_id: str) -> Context:
        context_id = canonical_id(context_id)
        done = await self._writer.commit(
            context_id, Leave(), user_id=arg.member(user_id), guarded=False
        )
        async with _after_commit("presence of the leave"):
            await self._core.live.presence.leave(context_id, user_id)
        self._writer.leases.pop((context_id, user_id), None)
        return context_from_record(done.record)

    async def update_presence(
        self, context_id: str, user_id: str, viewing: str | None, typing: bool
    ) -> PresenceEntry:
        context_id = canonical_id(context_id)
        if viewing is not None:
            arg.text(viewing, "viewing")
        await self._reader.readable(context_id, user_id)
        return await self._core.live.presence.heartbeat(
            context_id, user_id, viewing=viewing, typing=typing
        )

    async def presence(self, context_id: str, user_id: str | None) -> list[PresenceEntry]:
        context_id = canonical_id(context_id)
        await self._reader.readable(context_id, user_id)
        return await self._core.live.presence.members(context_id)

    async def conflicts(self, context_id: str, user_id: str | None) -> list[ContextConflict]:
        context_id = canonical_id(context_id)
        record = await self._reader.readable(context_id, user_id, include_deleted=True)
        return [conflict_model(record, entry) for entry in record.coordination.conflicts]

    async def resolve(
        self,
        conflict_id: str,
        resolution: Mapping[str, str],
        user_id: str | None,
        lock_token: int | None,
    ) -> Context:
        context_id = canonical_id(arg.text(conflict_id, "conflict_id").rsplit(".", 1)[0])
        token = arg.lock_token(lock_token, arg.user(user_id))
        record = await self._reader.readable(context_id, user_id)
        entry = next((e for e in record.coordination.conflicts if e["id"] == conflict_id), {})
        change = Resolve(conflict_id, resolution)
        branch = entry.get("branch", "main")
        done = await self._writer.commit(
            context_id, change, user_id=user_id, branch=branch, lock_token=token
        )
        return context_from_record(done.record)
