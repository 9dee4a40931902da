"""The embedded bus hears other processes on the same SQLite file through its commit feed:
each commit once, this process's own included, none that was committed quietly; the feed
watched only while someone subscribes; entries lost before they were read become a gap.
(Several OS processes converging: test_sync_processes.py, section d; the MCP bridge
hearing the CLI: test_mcp.py.)"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import sys
from collections.abc import AsyncIterator

from loremaster import Context, ContextEvent, ContextManager
from loremaster.bus import ALL, Gap, GapReason, Subscription
from loremaster.sync import EventStream

QUIET_SECONDS = 0.5
"""Ten times the default watch interval: what has not arrived by then is not coming."""


@contextlib.asynccontextmanager
async def two_managers(url: str) -> AsyncIterator[tuple[ContextManager, ContextManager]]:
    """Two managers on one file: to each other, as two processes are (own connections,
    own buses)."""
    async with ContextManager(url) as here, ContextManager(url) as there:
        yield here, there


async def drain(subscription: Subscription, seconds: float = QUIET_SECONDS) -> list[object]:
    """What the subscription receives until it has been quiet for `seconds`."""
    items: list[object] = []
    while True:
        try:
            async with asyncio.timeout(seconds):
                items.append(await anext(subscription))
        except TimeoutError:
            return items


def heard(items: list[object]) -> list[tuple[str, int]]:
    return [(i.context_id, i.revision) for i in items if isinstance(i, ContextEvent)]


async def test_each_commit_is_heard_once_whoever_made_it(sqlite_url: str) -> None:
    async with two_managers(sqlite_url) as (here, there):
        room = await here.create_context(Context(title="room"))
        subscription = await here.subscribe_all()
        for n in range(5):
            await here.update_context(room, {"data": {"here": n}})
            await there.update_context(room, {"data": {"there": n}})
        created_there = await there.create_context(Context(title="made there"))
        items = await drain(subscription)
        await subscription.close()
    expected = [(room, revision) for revision in range(2, 12)] + [(created_there, 1)]
    assert sorted(heard(items)) == sorted(expected)
    assert not [item for item in items if isinstance(item, Gap)]
    ops = [item.op for item in items if isinstance(item, ContextEvent)]
    assert ops.count("create") == 1


async def test_a_follower_hears_another_process_within_the_interval(sqlite_url: str) -> None:
    async with two_managers(sqlite_url) as (here, there):
        room = await here.create_context(Context(title="room"))
        async with await here.subscribe(room, poll_interval=3600) as stream:
            for n in range(1, 6):
                await there.update_context(room, {"data": {"n": n}})
                async with asyncio.timeout(5):
                    event = await anext(stream)
                assert (event.revision, event.changes[0]["value"]) == (n + 1, n)


async def test_a_quiet_commit_is_not_announced_by_the_feed(sqlite_url: str) -> None:
    async with two_managers(sqlite_url) as (here, _):
        room = await here.create_context(Context(title="room"))
        subscription = await here.subscribe_all()  # the bus itself: no replay, no refill
        await here.update_context(room, {"data": {"quiet": True}}, sync=False)
        assert await drain(subscription) == []
        await here.update_context(room, {"data": {"loud": True}})
        assert heard(await drain(subscription)) == [(room, 3)]
        await subscription.close()


async def started(stream: EventStream) -> None:
    """A stream subscribes to the bus when first read."""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(0.1):
            await anext(stream)


async def test_the_feed_is_watched_only_while_someone_subscribes(sqlite_url: str) -> None:
    async with ContextManager(sqlite_url) as cm:

        async def feed() -> str:
            state: str = (await cm.health_check())["event_bus"]["commit_feed"]
            return state

        assert await feed() == "idle"
        room = await cm.create_context(Context(title="room"))
        stream = await cm.subscribe(room)
        await started(stream)
        assert await feed() == "following"
        everything = await cm.subscribe_all()
        await stream.close()
        assert await feed() == "following"
        await everything.close()
        assert await feed() == "idle"


async def test_entries_lost_to_the_feed_become_a_gap_and_followers_catch_up(
    sqlite_url: str, db_path: object
) -> None:
    async with two_managers(sqlite_url) as (here, there):
        room = await here.create_context(Context(title="room"))
        subscription = await here.subscribe_all()
        async with await here.subscribe(room, poll_interval=3600) as stream:
            await started(stream)
            # As if thousands of commits had been trimmed from the feed unread.
            with contextlib.closing(sqlite3.connect(str(db_path))) as raw:
                raw.execute(
                    "UPDATE sqlite_sequence SET seq = seq + 20000 WHERE name = 'event_feed'"
                )
                raw.commit()
            await there.update_context(room, {"data": {"after": "the loss"}})
            items = await drain(subscription)
            assert items[0] == Gap(ALL, GapReason.RECONNECT)
            assert heard(items[1:]) == [(room, 2)]
            async with asyncio.timeout(5):
                assert (await anext(stream)).revision == 2
        await subscription.close()


async def test_watch_on_the_command_line_hears_another_process(sqlite_url: str) -> None:
    async with ContextManager(sqlite_url) as cm:
        room = await cm.create_context(Context(title="room"))
    watch = await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "loremaster", "watch", room, "--count", "1", "--json"),
        *("--database-url", sqlite_url),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert watch.stderr is not None
    try:
        async with asyncio.timeout(30):
            assert (await watch.stderr.readline()).startswith(b"watching ")
        async with ContextManager(sqlite_url) as elsewhere:
            await elsewhere.update_context(room, {"data": {"seen": "live"}})
        # `watch` reads the log on its own only every 30 s on SQLite: this came by the feed.
        async with asyncio.timeout(10):
            out, _ = await watch.communicate()
    finally:
        if watch.returncode is None:
            watch.kill()
            await watch.wait()
    assert watch.returncode == 0
    assert b'"revision":2' in out
