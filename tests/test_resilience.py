"""A backend that stalls must not stall what does not need it: a frozen Redis does not hold
up committed writes, and another process's SQLite write transaction does not hold up
opening a database whose schema is current."""

from __future__ import annotations

import asyncio
import contextlib
import sys
import textwrap
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from loremaster import CollaborativeContext, ContextManager, ConversationContext

if TYPE_CHECKING:
    from _redis import PrivateRedis

pytest_plugins = ["_redis"]

T = TypeVar("T")

SYNC_TIMEOUT = 30.0
WRITE_BOUND = 8.0
"""Well under SYNC_TIMEOUT: a write waits on Redis for a few seconds at most."""


async def timed(operation: Awaitable[T], *, limit: float = 20) -> tuple[T, float]:
    """The result and the seconds it took; `limit` keeps a regression from hanging."""
    started = time.monotonic()
    async with asyncio.timeout(limit):
        result = await operation
    return result, time.monotonic() - started


@contextlib.asynccontextmanager
async def frozen(server: PrivateRedis) -> AsyncIterator[None]:
    server.freeze(True)
    try:
        yield
    finally:
        server.freeze(False)


async def close_promptly(manager: ContextManager) -> None:
    """Close, also just as Redis wakes up: its listener must not outlive the manager."""
    async with asyncio.timeout(10):
        await manager.close()


async def stored(sqlite_url: str, context_id: str) -> ConversationContext:
    """The context as another manager, without Redis, reads it from the file."""
    async with ContextManager(sqlite_url) as other:
        context = await other.get_context(context_id)
    assert isinstance(context, ConversationContext)
    return context


# -- a frozen Redis ---------------------------------------------------------------------------


async def test_writes_return_within_the_publish_bound_while_redis_is_frozen(
    private_redis: PrivateRedis, sqlite_url: str
) -> None:
    manager = ContextManager(sqlite_url, redis_url=private_redis.url, sync_timeout=SYNC_TIMEOUT)
    await manager.initialize()
    try:
        context_id = await manager.create_context(ConversationContext(title="before"))
        async with frozen(private_redis):
            _, updated_in = await timed(manager.update_context(context_id, {"title": "after"}))
            _, appended_in = await timed(
                manager.append_messages(context_id, {"role": "user", "content": "hello"})
            )
            batch, created_in = await timed(
                manager.create_contexts([ConversationContext(title=f"t{i}") for i in range(3)])
            )
        assert updated_in < WRITE_BOUND
        assert appended_in < WRITE_BOUND
        assert created_in < WRITE_BOUND  # one bound for the batch's events, not one each
    finally:
        await close_promptly(manager)
    context = await stored(sqlite_url, context_id)
    assert (context.title, context.revision) == ("after", 3)
    assert [m.text for m in context.messages] == ["hello"]
    assert [(await stored(sqlite_url, cid)).title for cid in batch] == ["t0", "t1", "t2"]


async def test_the_shared_row_cache_does_not_hold_up_a_write_while_redis_is_frozen(
    private_redis: PrivateRedis, sqlite_url: str
) -> None:
    manager = ContextManager(
        sqlite_url, redis_url=private_redis.url, sync_timeout=SYNC_TIMEOUT, cache_l2=True
    )
    await manager.initialize()
    try:
        context_id = await manager.create_context(ConversationContext(title="before"))
        async with frozen(private_redis):
            _, updated_in = await timed(manager.update_context(context_id, {"title": "after"}))
        assert updated_in < WRITE_BOUND
    finally:
        await close_promptly(manager)
    assert (await stored(sqlite_url, context_id)).title == "after"


async def test_joining_a_room_stands_while_redis_is_frozen(
    private_redis: PrivateRedis, sqlite_url: str
) -> None:
    """Presence follows the committed join: a frozen Redis delays it, never undoes it or
    turns it into an error."""
    manager = ContextManager(sqlite_url, redis_url=private_redis.url, sync_timeout=SYNC_TIMEOUT)
    await manager.initialize()
    try:
        room = await manager.create_context(CollaborativeContext(title="The tavern"), user_id="dm")
        async with frozen(private_redis):
            joined, joined_in = await timed(manager.join_collaborative_session(room, "ana"))
            _, left_in = await timed(manager.leave_collaborative_session(room, "ana"))
        assert isinstance(joined, CollaborativeContext)
        assert joined.active_participants == ["ana"]
        assert joined_in < WRITE_BOUND
        assert left_in < WRITE_BOUND
    finally:
        await close_promptly(manager)
    async with ContextManager(sqlite_url) as other:
        events = await other.get_events(room)
    assert [e.op for e in events] == ["create", "join", "leave"]


# -- SQLite: another process writing ----------------------------------------------------------

_HOLD_WRITE_LOCK = textwrap.dedent(
    """
    import sqlite3, sys

    conn = sqlite3.connect(sys.argv[1], isolation_level=None)
    conn.execute("BEGIN IMMEDIATE")
    print("locked", flush=True)
    sys.stdin.read()
    conn.execute("ROLLBACK")
    """
)


@contextlib.asynccontextmanager
async def write_lock_held(path: Path) -> AsyncIterator[Callable[[], Awaitable[None]]]:
    """Another process holds SQLite's write lock on `path` until the release this yields
    is awaited, or the block ends."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        _HOLD_WRITE_LOCK,
        str(path),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )

    async def release() -> None:
        if process.returncode is not None:
            return
        assert process.stdin is not None
        process.stdin.close()
        try:
            async with asyncio.timeout(10):
                await process.wait()
        except TimeoutError:
            process.kill()
            await process.wait()

    try:
        assert process.stdout is not None
        async with asyncio.timeout(10):
            assert await process.stdout.readline() == b"locked\n"
        yield release
    finally:
        await release()


async def test_opening_a_current_sqlite_schema_does_not_wait_for_another_writer(
    sqlite_url: str, db_path: Path
) -> None:
    async with ContextManager(sqlite_url) as first:
        context_id = await first.create_context(ConversationContext(title="kept"))
    async with write_lock_held(db_path) as release:
        manager = ContextManager(sqlite_url, sync_timeout=3)
        _, opened_in = await timed(manager.initialize(), limit=10)
        try:
            assert opened_in < 1.5
            assert (await manager.get_context(context_id)).title == "kept"
            write = asyncio.create_task(manager.update_context(context_id, {"title": "changed"}))
            await asyncio.sleep(0.5)
            assert not write.done()  # writes still wait for the lock...
            await release()
            async with asyncio.timeout(10):
                await write  # ...and land once it is free
            assert (await manager.get_context(context_id)).title == "changed"
        finally:
            await manager.close()
