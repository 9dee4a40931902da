"""With the database down, reads serve what this process has seen, marked stale, and
quickly; writes fail cleanly and store nothing; once the database is back, the same
manager reads fresh and writes again. A private PostgreSQL cluster, stopped mid-test."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable
from typing import TYPE_CHECKING, TypeVar

import pytest

from loremaster import (
    BackendUnavailable,
    Context,
    ContextManager,
    ContextNotFound,
    ConversationContext,
)

if TYPE_CHECKING:
    from _postgres import PrivatePostgres

pytest_plugins = ["_postgres"]

T = TypeVar("T")

SYNC_TIMEOUT = 4.0
QUICKLY = 2.5
"""Well under SYNC_TIMEOUT: a stale answer does not wait for the database's timeout."""


async def timed(operation: Awaitable[T]) -> tuple[T, float]:
    started = time.monotonic()
    result = await operation
    return result, time.monotonic() - started


@pytest.fixture
async def manager(private_postgres: PrivatePostgres) -> AsyncIterator[ContextManager]:
    cm = ContextManager(private_postgres.url, sync_timeout=SYNC_TIMEOUT, auto_cleanup=False)
    await cm.initialize()
    try:
        yield cm
    finally:
        await cm.close()


async def test_reads_fall_back_to_what_this_process_has_seen(
    manager: ContextManager, private_postgres: PrivatePostgres
) -> None:
    cm = manager
    chat = await cm.create_context(ConversationContext(title="Session 1"), user_id="dm")
    await cm.append_messages(chat, [{"role": "user", "content": f"turn {i}"} for i in range(5)])
    async with ContextManager(private_postgres.url, auto_cleanup=False) as other:
        unseen = await other.create_context(Context(title="never read here"), user_id="dm")
    version = (await cm.get_version_history(chat, "dm", limit=1))[0]
    read = await cm.get_context(chat, "dm")
    page = await cm.get_messages(chat, "dm", limit=2)
    old = await cm.get_version(chat, version.version_id, "dm")
    assert not read.stale
    assert not page.stale
    assert not old.stale
    assert (await cm.health_check())["status"] == "ok"

    await private_postgres.stopped()

    stale, took = await timed(cm.get_context(chat, "dm"))
    assert stale.stale
    assert took < QUICKLY
    assert stale.model_dump() == read.model_dump()  # the same answer; `stale` is no field
    assert "stale" not in stale.model_dump_json()
    again, took = await timed(cm.get_messages(chat, "dm", limit=2))
    assert again.stale
    assert took < QUICKLY
    assert [m.text for m in again] == [m.text for m in page] == ["turn 3", "turn 4"]
    older = await cm.get_messages(chat, "dm", limit=2, before_seq=3)  # cut from the whole
    assert older.stale
    assert [m.text for m in older] == ["turn 0", "turn 1"]
    past = await cm.get_version(chat, version.version_id, "dm")
    assert past.stale
    assert past.model_dump() == old.model_dump()

    with pytest.raises(ContextNotFound):  # permissions as usual, on the cached row
        await cm.get_context(chat, "stranger")
    with pytest.raises(BackendUnavailable):  # never read here: nothing to serve
        await cm.get_context(unseen, "dm")
    with pytest.raises(BackendUnavailable):
        await cm.update_context(chat, {"title": "lost?"}, "dm")

    health = await cm.health_check()
    assert health["status"] == "degraded"
    assert "stale" in health["reason"]
    assert (await cm.get_performance_stats())["cache"]["stale_serves"] >= 5

    await private_postgres.started()

    fresh = await cm.get_context(chat, "dm")
    assert not fresh.stale
    assert fresh.title == "Session 1"  # the failed write stored nothing
    await cm.update_context(chat, {"title": "Session 1, resumed"}, "dm")
    assert (await cm.get_context(chat, "dm")).title == "Session 1, resumed"
    assert (await cm.health_check())["status"] == "ok"


async def test_writes_fail_within_the_timeout_and_store_nothing(
    manager: ContextManager, private_postgres: PrivatePostgres
) -> None:
    chat = await manager.create_context(ConversationContext(title="t"), user_id="dm")
    await private_postgres.stopped()
    for write in (
        manager.update_context(chat, {"title": "x"}, "dm"),
        manager.append_messages(chat, {"role": "user", "content": "hello"}, "dm"),
        manager.create_context(Context(title="new"), user_id="dm"),
    ):
        started = time.monotonic()
        with pytest.raises(BackendUnavailable):
            await write
        assert time.monotonic() - started < SYNC_TIMEOUT + 2
    await private_postgres.started()
    context = await manager.get_context(chat, "dm")
    assert isinstance(context, ConversationContext)
    assert (context.revision, context.title, context.messages) == (1, "t", [])


async def test_the_fallback_can_be_turned_off(private_postgres: PrivatePostgres) -> None:
    cm = ContextManager(
        private_postgres.url, sync_timeout=SYNC_TIMEOUT, auto_cleanup=False, cache_fallback=False
    )
    await cm.initialize()
    try:
        chat = await cm.create_context(Context(title="t"))
        await cm.get_context(chat)
        await private_postgres.stopped()
        with pytest.raises(BackendUnavailable):
            await cm.get_context(chat)
        assert (await cm.health_check())["status"] == "unavailable"
    finally:
        await cm.close()


async def test_a_slow_database_is_waited_for_a_failing_one_is_not() -> None:
    """A cached answer is served only while storage fails to reach the database: a slow
    answer is still the true one (serving the cache then broke read-your-writes under
    load)."""
    from loremaster.manager._fallback import Fallback

    async def slow_answer() -> str:
        await asyncio.sleep(1.5)
        return "fresh"

    answering = Fallback(enabled=True, trouble=lambda: None)
    served, took = await timed(answering.read(slow_answer, "cached"))
    assert (served.value, served.stale) == ("fresh", False)
    assert took >= 1.5
    failing = Fallback(enabled=True, trouble=lambda: "connection refused")
    served, took = await timed(failing.read(slow_answer, "cached"))
    assert (served.value, served.stale) == ("cached", True)
    assert took < 1.5
    assert failing.stale_serves == 1
