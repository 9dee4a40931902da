"""Fencing tokens across managers and processes: a write given `lock_token` lands only under
the writer's live lease with exactly that token, whichever manager took the lock, on every
route that writes a context (conflict settling, merges, rollbacks and migrations too)."""

from __future__ import annotations

import asyncio
import multiprocessing
from collections.abc import AsyncIterator, Awaitable, Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from typing import Any

import pytest

from loremaster import (
    ContextManager,
    ConversationContext,
    LockHeld,
    LockLost,
    ValidationFailed,
)
from loremaster.models import ContextLock

from conftest import table_counts

LEASE = 0.3
SPAWN = multiprocessing.get_context("spawn")


@pytest.fixture
async def managers(db_url: str) -> AsyncIterator[tuple[ContextManager, ContextManager]]:
    """Two managers on one database, as two server processes would be."""
    async with (
        ContextManager(database_url=db_url) as first,
        ContextManager(database_url=db_url) as second,
    ):
        yield first, second


async def _conversation(cm: ContextManager) -> str:
    return await cm.create_context(
        ConversationContext(
            title="fenced",
            data={"hp": 0},
            collaborators=["bo"],
            primary_provider="openai",
            conflict_policy={"strategy": "manual_merge"},
            messages=[{"role": "user", "content": "hello"}],
        ),
        user_id="dm",
    )


async def _expired_then_taken(cm: ContextManager, context_id: str) -> tuple[int, ContextLock]:
    """dm's lock expires and bo takes the context: dm's token, and bo's lock."""
    old = await cm.acquire_context_lock(context_id, user_id="dm", timeout=LEASE)
    await asyncio.sleep(LEASE + 0.2)
    return old.token, await cm.acquire_context_lock(context_id, user_id="bo", timeout=60)


async def _written(cm: ContextManager, db_url: str, context_id: str) -> tuple[Any, ...]:
    """What a refused write must leave as it was."""
    context = await cm.get_context(context_id)
    events = await cm.get_events(context_id)
    return context.revision, len(events), await table_counts(db_url)


async def test_a_token_taken_through_one_manager_fences_writes_through_another(
    managers: tuple[ContextManager, ContextManager], db_url: str
) -> None:
    first, second = managers
    talk = await _conversation(first)
    lock = await first.acquire_context_lock(talk, user_id="dm", timeout=LEASE)
    await second.update_context(talk, {"data": {"hp": 1}}, user_id="dm", lock_token=lock.token)
    with pytest.raises(LockHeld):  # bo writes without the lock, through either manager
        await second.update_context(talk, {"data": {"hp": 2}}, user_id="bo")

    await asyncio.sleep(LEASE + 0.2)
    taken = await first.acquire_context_lock(talk, user_id="bo", timeout=60)
    before = await _written(second, db_url, talk)
    for user_id, token in (
        ("dm", lock.token),  # the old holder's token: its lease ended
        ("dm", taken.token),  # the live token, given by a user who does not hold it
        ("bo", lock.token),  # the holder, with another lease's token
        ("bo", taken.token + 1),  # a token no lease had
    ):
        with pytest.raises(LockLost) as lost:
            await second.update_context(
                talk, {"data": {"hp": 3}}, user_id=user_id, lock_token=token
            )
        assert (lost.value.holder, lost.value.token) == (user_id, token)
    assert await _written(second, db_url, talk) == before

    await second.update_context(talk, {"data": {"hp": 4}}, user_id="bo", lock_token=taken.token)
    assert (await first.get_context(talk)).data["hp"] == 4


async def test_without_a_token_each_manager_goes_by_the_locks_it_took(
    managers: tuple[ContextManager, ContextManager],
) -> None:
    first, second = managers
    talk = await _conversation(first)
    await first.acquire_context_lock(talk, user_id="dm", timeout=LEASE)
    await asyncio.sleep(LEASE + 0.2)
    with pytest.raises(LockLost):  # first took the lock: it knows dm's lease ended
        await first.update_context(talk, {"data": {"hp": 1}}, user_id="dm")
    await first.acquire_context_lock(talk, user_id="dm", timeout=60)
    await second.update_context(talk, {"data": {"hp": 2}}, user_id="dm")  # the holder


async def test_a_stale_token_is_refused_on_every_route_and_nothing_changes(
    managers: tuple[ContextManager, ContextManager], db_url: str
) -> None:
    first, second = managers
    talk = await _conversation(first)
    version = await first.create_version(talk, user_id="dm", message="before")
    await first.create_branch(talk, "alt", user_id="dm")
    await first.update_context(talk, {"data": {"alt": True}}, user_id="dm", branch="alt")
    start = (await first.get_context(talk)).revision
    await first.update_context(talk, {"data": {"hp": 1}}, user_id="dm")
    await first.update_context(talk, {"data": {"hp": 2}}, user_id="bo", expected_revision=start)
    [conflict] = await first.list_conflicts(talk)
    stale, _ = await _expired_then_taken(first, talk)
    current = (await first.get_context(talk)).revision

    routes: dict[str, Callable[[], Awaitable[Any]]] = {
        "update": lambda: second.update_context(
            talk, {"data": {"hp": 9}}, user_id="dm", lock_token=stale
        ),
        "a stale update settled by its strategy": lambda: second.update_context(
            talk,
            {"data": {"gold": 9}},
            user_id="dm",
            expected_revision=start,
            strategy="automatic_merge",
            lock_token=stale,
        ),
        "update on a branch": lambda: second.update_context(
            talk, {"data": {"hp": 9}}, user_id="dm", branch="alt", lock_token=stale
        ),
        "append": lambda: second.append_messages(
            talk, {"role": "user", "content": "late"}, user_id="dm", lock_token=stale
        ),
        "append in a batch": lambda: second.append_messages_batch(
            {talk: {"role": "user", "content": "late"}}, user_id="dm", lock_tokens={talk: stale}
        ),
        "version": lambda: second.create_version(talk, user_id="dm", lock_token=stale),
        "branch": lambda: second.create_branch(talk, "b2", user_id="dm", lock_token=stale),
        "merge": lambda: second.merge_branch(
            talk, "alt", user_id="dm", strategy="source", lock_token=stale
        ),
        "rollback": lambda: second.rollback_to_version(
            talk, version.version_id, user_id="dm", lock_token=stale
        ),
        "migration": lambda: second.migrate_context(
            talk, to_provider="anthropic", user_id="dm", lock_token=stale
        ),
        "conflict resolution": lambda: second.resolve_conflict(
            conflict.conflict_id, {"/data/hp": "incoming"}, user_id="dm", lock_token=stale
        ),
        "soft delete": lambda: second.delete_context(talk, user_id="dm", lock_token=stale),
        "hard delete": lambda: second.delete_context(
            talk, user_id="dm", hard_delete=True, lock_token=stale
        ),
        "renewal": lambda: second.renew_context_lock(talk, user_id="dm", lock_token=stale),
        "release": lambda: second.release_context_lock(talk, user_id="dm", lock_token=stale),
    }
    before = await _written(second, db_url, talk)
    for route, write in routes.items():
        with pytest.raises(LockHeld) as refused:
            await write()
        # Taking or giving up the lock first finds bo holding it.
        assert isinstance(refused.value, LockLost) or route in {"renewal", "release"}, route
        assert await _written(second, db_url, talk) == before, route
    assert (await first.get_context(talk)).revision == current
    assert [b.name for b in await first.list_branches(talk)] == ["main", "alt"]


async def test_the_holder_writes_every_way_with_its_token(
    managers: tuple[ContextManager, ContextManager], db_url: str
) -> None:
    first, second = managers
    talk = await _conversation(first)
    version = await first.create_version(talk, user_id="dm", message="before")
    await first.create_branch(talk, "alt", user_id="dm")
    await first.update_context(talk, {"data": {"alt": True}}, user_id="dm", branch="alt")
    token = (await first.acquire_context_lock(talk, user_id="dm", timeout=60)).token
    held = {"user_id": "dm", "lock_token": token}

    start = (await second.update_context(talk, {"data": {"hp": 1}}, **held)).revision
    await second.update_context(talk, {"data": {"hp": 2}}, **held)
    await second.update_context(  # a stale update: its conflict waits for a person
        talk, {"data": {"hp": 3}}, expected_revision=start, **held
    )
    [conflict] = await second.list_conflicts(talk)
    await second.resolve_conflict(conflict.conflict_id, {"/data/hp": "incoming"}, **held)
    await second.append_messages(talk, {"role": "user", "content": "mine"}, **held)
    await second.append_messages_batch(
        {talk: {"role": "user", "content": "mine too"}}, user_id="dm", lock_tokens={talk: token}
    )
    await second.create_version(talk, message="mine", **held)
    await second.create_branch(talk, "b2", **held)
    assert (await second.merge_branch(talk, "alt", strategy="source", **held)).merged
    await second.rollback_to_version(talk, version.version_id, **held)
    assert (await second.migrate_context(talk, to_provider="anthropic", **held)).migrated
    renewed = await second.renew_context_lock(talk, **held)
    assert renewed.token == token
    await second.delete_context(talk, **held)
    with pytest.raises(LockLost):
        await second.restore_context(talk, user_id="dm", lock_token=token + 1)
    await second.restore_context(talk, **held)
    with pytest.raises(LockLost):
        await second.release_context_lock(talk, user_id="dm", lock_token=token + 1)
    await second.release_context_lock(talk, **held)
    with pytest.raises(LockLost):  # released: the token names no lease now
        await second.update_context(talk, {"data": {"hp": 4}}, **held)

    again = await first.acquire_context_lock(talk, user_id="dm", timeout=60)
    await second.delete_context(talk, user_id="dm", hard_delete=True, lock_token=again.token)
    assert await table_counts(db_url) == {"contexts": 0, "messages": 0, "events": 0}


async def test_a_hard_delete_is_held_off_by_anothers_lock(
    managers: tuple[ContextManager, ContextManager],
) -> None:
    first, second = managers
    talk = await _conversation(first)
    await first.acquire_context_lock(talk, user_id="bo", timeout=60)
    with pytest.raises(LockHeld):
        await second.delete_context(talk, user_id="dm", hard_delete=True)
    await first.release_context_lock(talk, user_id="bo")
    await second.delete_context(talk, user_id="dm", hard_delete=True)


async def test_a_stale_token_leaves_the_lock_this_manager_took_alone(
    managers: tuple[ContextManager, ContextManager],
) -> None:
    first, _ = managers
    talk = await _conversation(first)
    stale, _ = await _expired_then_taken(first, talk)
    await first.release_context_lock(talk, user_id="bo")
    live = await first.acquire_context_lock(talk, user_id="dm", timeout=LEASE)
    with pytest.raises(LockLost):
        await first.update_context(talk, {"data": {"hp": 1}}, user_id="dm", lock_token=stale)
    await asyncio.sleep(LEASE + 0.2)
    with pytest.raises(LockLost):  # still fenced by the token it took
        await first.update_context(talk, {"data": {"hp": 2}}, user_id="dm")
    assert live.token > stale


@pytest.mark.parametrize("token", [True, -1, 1.5, "3", 2**62])
async def test_a_malformed_token_is_refused_before_anything_is_read(
    manager: ContextManager, db_url: str, token: Any
) -> None:
    talk = await _conversation(manager)
    before = await _written(manager, db_url, talk)
    with pytest.raises(ValidationFailed) as refused:
        await manager.update_context(talk, {"data": {"hp": 1}}, user_id="dm", lock_token=token)
    assert refused.value.issues[0].path == "/lock_token"
    with pytest.raises(ValidationFailed) as refused:
        await manager.append_messages_batch(
            {talk: {"role": "user", "content": "x"}}, user_id="dm", lock_tokens={talk: token}
        )
    assert refused.value.issues[0].path == f"/lock_tokens/{talk}"
    assert await _written(manager, db_url, talk) == before


async def test_a_token_needs_its_holder_and_a_batch_names_its_own_contexts(
    manager: ContextManager,
) -> None:
    talk = await _conversation(manager)
    other = await _conversation(manager)
    lock = await manager.acquire_context_lock(talk, user_id="dm", timeout=60)
    for call in (
        manager.update_context(talk, {"data": {"hp": 1}}, lock_token=lock.token),
        manager.create_version(talk, lock_token=lock.token),
        manager.delete_context(talk, hard_delete=True, lock_token=lock.token),
    ):
        with pytest.raises(ValidationFailed, match="user_id"):
            await call
    for tokens in ({other: lock.token}, [lock.token]):
        with pytest.raises(ValidationFailed) as refused:
            await manager.append_messages_batch(
                {talk: {"role": "user", "content": "x"}}, user_id="dm", lock_tokens=tokens
            )
        assert refused.value.issues[0].path.startswith("/lock_tokens")
    assert (await manager.get_context(talk)).revision == lock.token


# -- separate processes --------------------------------------------------------------------


def _write_in_a_process(database_url: str, context_id: str, user_id: str, token: int) -> str:
    """In a process of its own: update the context with `token`; what happened."""

    async def write() -> str:
        async with ContextManager(database_url=database_url) as cm:
            try:
                await cm.update_context(
                    context_id, {"data": {"by": user_id}}, user_id=user_id, lock_token=token
                )
            except LockLost:
                return "LockLost"
            return "written"

    return asyncio.run(write())


@dataclass
class _Elsewhere:
    """Another OS process of the same server."""

    pool: ProcessPoolExecutor
    database_url: str

    async def write(self, context_id: str, user_id: str, token: int) -> str:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(
            self.pool, _write_in_a_process, self.database_url, context_id, user_id, token
        )


async def test_a_token_fences_writes_made_in_another_process(db_url: str) -> None:
    with ProcessPoolExecutor(max_workers=1, mp_context=SPAWN) as pool:
        elsewhere = _Elsewhere(pool, db_url)
        async with ContextManager(database_url=db_url) as cm:
            talk = await _conversation(cm)
            lock = await cm.acquire_context_lock(talk, user_id="dm", timeout=2)
            assert await elsewhere.write(talk, "dm", lock.token) == "written"
            assert (await cm.get_context(talk)).data["by"] == "dm"

            await asyncio.sleep(2.2)
            taken = await cm.acquire_context_lock(talk, user_id="bo", timeout=60)
            revision = (await cm.get_context(talk)).revision
            assert await elsewhere.write(talk, "dm", lock.token) == "LockLost"
            assert await elsewhere.write(talk, "bo", lock.token) == "LockLost"
            assert (await cm.get_context(talk)).revision == revision
            assert await elsewhere.write(talk, "bo", taken.token) == "written"
            assert (await cm.get_context(talk)).data["by"] == "bo"
