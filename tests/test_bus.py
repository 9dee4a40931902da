"""The event bus contract, on the in-process bus and on Redis; then what only Redis does:
several processes, lost connections, a silent server, and the wire format."""

from __future__ import annotations

import asyncio
import sys
import textwrap
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import pytest

from loremaster import BackendUnavailable, ContextEvent, UsageError
from loremaster.bus import ALL, EventBus, Gap, GapReason, MemoryBus, RedisBus, Subscription
from loremaster.bus._wire import pack_event, pack_quiet, unpack_message

if TYPE_CHECKING:
    from _redis import CutConnections, PrivateRedis

pytest_plugins = ["_redis"]

WHEN = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def event(revision: int, context_id: str = "c1", **changes: object) -> ContextEvent:
    return ContextEvent(
        context_id=context_id,
        revision=revision,
        op="update",
        changes=[{"op": "replace", "path": f"/{k}", "value": v} for k, v in changes.items()],
        user_id="dm",
        created_at=WHEN,
    )


async def take(subscription: Subscription, count: int, seconds: float = 5) -> list[object]:
    async with asyncio.timeout(seconds):
        return [await anext(subscription) for _ in range(count)]


async def nothing_more(subscription: Subscription, seconds: float = 0.2) -> bool:
    try:
        async with asyncio.timeout(seconds):
            await anext(subscription)
    except TimeoutError:
        return True
    return False


# -- the contract, on both buses ------------------------------------------------------------

Pair = tuple[EventBus, EventBus]
"""(subscriber's bus, publisher's bus): one bus in process, two Redis clients."""


@pytest.fixture(params=["memory", "redis"])
async def buses(request: pytest.FixtureRequest) -> AsyncIterator[Callable[..., Awaitable[Pair]]]:
    made: list[EventBus] = []

    async def make(**options: int) -> Pair:
        if request.param == "memory":
            bus = MemoryBus(**options)
            made.append(bus)
            return bus, bus
        url: str = request.getfixturevalue("redis_url")
        prefix: str = request.getfixturevalue("redis_prefix")
        pair = (RedisBus(url, prefix=prefix, **options), RedisBus(url, prefix=prefix))
        made.extend(pair)
        return pair

    yield make
    for bus in made:
        await bus.close()


async def test_subscribers_get_their_contexts_events_in_order(
    buses: Callable[..., Awaitable[Pair]],
) -> None:
    subscriber_bus, publisher = await buses()
    first = await subscriber_bus.subscribe("c1")
    second = await subscriber_bus.subscribe("c1")
    other = await subscriber_bus.subscribe("c2")
    for revision in (1, 2, 3):
        await publisher.publish(event(revision, hp=revision))
    assert await take(first, 3) == [event(1, hp=1), event(2, hp=2), event(3, hp=3)]
    assert await take(second, 3) == [event(1, hp=1), event(2, hp=2), event(3, hp=3)]
    assert await nothing_more(other)


async def test_many_subscriptions_made_at_once_each_get_their_own(
    buses: Callable[..., Awaitable[Pair]],
) -> None:
    subscriber_bus, publisher = await buses()
    contexts = [f"c{i % 20}" for i in range(60)]
    subscriptions = await asyncio.gather(*(subscriber_bus.subscribe(c) for c in contexts))
    for index, context_id in enumerate(sorted(set(contexts))):
        await publisher.publish(event(index + 1, context_id))
    for context_id, subscription in zip(contexts, subscriptions, strict=True):
        [received] = await take(subscription, 1)
        assert isinstance(received, ContextEvent)
        assert received.context_id == context_id
    await asyncio.gather(*(s.close() for s in subscriptions[::2]))
    await publisher.publish(event(99, "c1"))
    assert await take(subscriptions[1], 1) == [event(99, "c1")]


async def test_closing_ends_iteration(buses: Callable[..., Awaitable[Pair]]) -> None:
    subscriber_bus, publisher = await buses()
    async with await subscriber_bus.subscribe("c1") as subscription:
        await publisher.publish(event(1))
        assert await take(subscription, 1) == [event(1)]
    assert [item async for item in subscription] == []
    stays = await subscriber_bus.subscribe("c1")
    await publisher.publish(event(2))
    assert await take(stays, 1) == [event(2)]
    await subscriber_bus.close()
    assert [item async for item in stays] == []
    with pytest.raises(UsageError):
        await subscriber_bus.publish(event(3))
    with pytest.raises(UsageError):
        await subscriber_bus.subscribe("c1")


async def test_a_slow_subscriber_gets_a_gap_not_unbounded_memory(
    buses: Callable[..., Awaitable[Pair]],
) -> None:
    subscriber_bus, publisher = await buses(max_pending=3)
    slow = await subscriber_bus.subscribe("c1")
    fast = await subscriber_bus.subscribe("c1")
    for revision in range(1, 11):
        await publisher.publish(event(revision))
        await take(fast, 1)
    assert await take(slow, 1) == [Gap("c1", GapReason.OVERFLOW)]
    assert await nothing_more(slow)
    await publisher.publish(event(11))
    assert await take(slow, 1) == [event(11)]


async def test_max_pending_must_be_positive() -> None:
    with pytest.raises(UsageError):
        MemoryBus(max_pending=0)


# -- Redis only -----------------------------------------------------------------------------


async def test_redis_reaches_subscribers_in_other_processes(
    redis_url: str, redis_prefix: str
) -> None:
    script = textwrap.dedent(
        f"""
        import asyncio
        from loremaster.bus import RedisBus

        async def main():
            bus = RedisBus({redis_url!r}, prefix={redis_prefix!r})
            subscriptions = [await bus.subscribe("c1") for _ in range(2)]
            print("ready", flush=True)
            for subscription in subscriptions:
                got = [(await anext(subscription)).revision for _ in range(5)]
                print(*got, flush=True)
            await bus.close()

        asyncio.run(main())
        """
    )
    processes = [
        await asyncio.create_subprocess_exec(
            sys.executable, "-c", script, stdout=asyncio.subprocess.PIPE
        )
        for _ in range(3)
    ]
    try:
        async with asyncio.timeout(30):
            for process in processes:
                assert process.stdout is not None
                assert await process.stdout.readline() == b"ready\n"
            publisher = RedisBus(redis_url, prefix=redis_prefix)
            for revision in range(1, 6):
                await publisher.publish(event(revision))
            await publisher.close()
            for process in processes:
                output, _ = await process.communicate()
                assert output.decode().splitlines() == ["1 2 3 4 5", "1 2 3 4 5"]
                assert process.returncode == 0
    finally:
        for process in processes:
            if process.returncode is None:
                process.kill()
                await process.wait()


async def test_a_cut_connection_reconnects_and_signals_the_gap(
    redis_url: str, redis_prefix: str, cut_connections: CutConnections
) -> None:
    name = f"lm-{redis_prefix[7:19]}"
    subscriber = RedisBus(redis_url, prefix=redis_prefix, client_name=name)
    publisher = RedisBus(redis_url, prefix=redis_prefix)
    try:
        subscription = await subscriber.subscribe("c1")
        await publisher.publish(event(1))
        assert await take(subscription, 1) == [event(1)]
        assert await cut_connections(name) == 1
        assert await take(subscription, 1) == [Gap("c1", GapReason.RECONNECT)]
        assert subscriber.connected
        await publisher.publish(event(3))
        assert await take(subscription, 1) == [event(3)]
    finally:
        await subscriber.close()
        await publisher.close()


async def test_a_restarted_server_is_survived(private_redis: PrivateRedis) -> None:
    subscriber = RedisBus(private_redis.url, timeout=1, max_backoff=0.2)
    publisher = RedisBus(private_redis.url, timeout=1)
    try:
        subscription = await subscriber.subscribe("c1")
        await publisher.publish(event(1))
        assert await take(subscription, 1) == [event(1)]
        await private_redis.stop()
        with pytest.raises(BackendUnavailable):
            await publisher.publish(event(2))
        late = await asyncio.wait_for(subscriber.subscribe("c2"), 2)  # no wait while down
        await private_redis.start()
        assert await take(subscription, 1, seconds=10) == [Gap("c1", GapReason.RECONNECT)]
        assert await take(late, 1) == [Gap("c2", GapReason.RECONNECT)]
        await publisher.publish(event(3))
        assert await take(subscription, 1) == [event(3)]
    finally:
        await subscriber.close()
        await publisher.close()


async def test_a_silent_server_is_noticed_by_the_health_ping(
    private_redis: PrivateRedis,
) -> None:
    subscriber = RedisBus(private_redis.url, timeout=0.5, health_interval=0.2, max_backoff=0.2)
    try:
        subscription = await subscriber.subscribe("c1")
        private_redis.freeze(True)
        async with asyncio.timeout(5):
            while subscriber.connected:
                await asyncio.sleep(0.05)
        private_redis.freeze(False)
        assert await take(subscription, 1, seconds=10) == [Gap("c1", GapReason.RECONNECT)]
    finally:
        private_redis.freeze(False)
        await subscriber.close()


async def test_subscribing_with_redis_unreachable_does_not_hang() -> None:
    bus = RedisBus("redis://127.0.0.1:1/0", timeout=1)
    try:
        async with asyncio.timeout(3):
            subscription = await bus.subscribe("c1")
            with pytest.raises(BackendUnavailable):
                await bus.publish(event(1))
        assert not bus.connected
        assert await nothing_more(subscription)
    finally:
        await bus.close()


async def test_large_events_travel_as_notices(redis_url: str, redis_prefix: str) -> None:
    subscriber = RedisBus(redis_url, prefix=redis_prefix)
    publisher = RedisBus(redis_url, prefix=redis_prefix, max_event_bytes=200)
    try:
        subscription = await subscriber.subscribe("c1")
        await publisher.publish(event(1, note="x" * 50))
        await publisher.publish(event(2, note="x" * 500))
        assert await take(subscription, 2) == [
            event(1, note="x" * 50),
            Gap("c1", GapReason.NOT_SHIPPED, 2),
        ]
    finally:
        await subscriber.close()
        await publisher.close()


# -- the wire format ------------------------------------------------------------------------

VERSION_1_EVENT = bytes.fromhex(
    "97010003a67570646174659183a26f70a77265706c616365a470617468a32f6870a576616c756507"
    "a2646dcf0006176339d93000"
)


def test_wire_format_version_1_is_stable() -> None:
    assert pack_event(event(3, hp=7), 1024) == VERSION_1_EVENT
    assert unpack_message("c1", VERSION_1_EVENT) == event(3, hp=7)
    assert unpack_message("c9", bytes.fromhex("93010105")) == Gap("c9", GapReason.NOT_SHIPPED, 5)


def test_what_cannot_be_read_or_packed_becomes_a_gap() -> None:
    for garbage in (b"", b"\xc1", bytes.fromhex("9102"), bytes.fromhex("93010007")):
        assert unpack_message("c1", garbage) == Gap("c1", GapReason.NOT_SHIPPED)
    huge = event(4, big=2**70)
    assert unpack_message("c1", pack_event(huge, 1024)) == Gap("c1", GapReason.NOT_SHIPPED, 4)


async def test_subscribing_to_all_receives_every_context(
    buses: Callable[..., Awaitable[Pair]],
) -> None:
    subscriber_bus, publisher = await buses()
    everything = await subscriber_bus.subscribe(ALL)
    one = await subscriber_bus.subscribe("c1")
    for revision, context_id in ((1, "c1"), (1, "c2"), (2, "c1")):
        await publisher.publish(event(revision, context_id))
    assert await take(everything, 3) == [event(1, "c1"), event(1, "c2"), event(2, "c1")]
    assert await take(one, 2) == [event(1, "c1"), event(2, "c1")]
    assert await nothing_more(everything)
    await everything.close()
    assert await nothing_more(one)


def test_quiet_messages_are_wire_version_1_kind_2() -> None:
    assert pack_quiet(5) == bytes.fromhex("93010205")
    assert unpack_message("c9", bytes.fromhex("93010205")) == Gap("c9", GapReason.QUIET, 5)
    assert unpack_message("c9", pack_quiet(None)) == Gap("c9", GapReason.QUIET)


async def test_quiet_news_reaches_cache_watchers_only(redis_url: str, redis_prefix: str) -> None:
    """A change not announced (`sync=False`) or a context gone still reaches the `ALL`
    subscriptions (every process's cache watcher); a context's own subscribers hear
    nothing of it."""
    subscriber = RedisBus(redis_url, prefix=redis_prefix)
    publisher = RedisBus(redis_url, prefix=redis_prefix)
    try:
        watcher = await subscriber.subscribe(ALL)
        follower = await subscriber.subscribe("c1")
        await publisher.publish_quiet("c1", 4)
        await publisher.publish_quiet("c1", None)
        await publisher.publish(event(5))
        assert await take(watcher, 3) == [
            Gap("c1", GapReason.QUIET, 4),
            Gap("c1", GapReason.QUIET),
            event(5),
        ]
        assert await take(follower, 1) == [event(5)]
        assert await nothing_more(follower)
    finally:
        await subscriber.close()
        await publisher.close()


async def test_the_in_process_bus_has_no_quiet_news_to_carry() -> None:
    bus = MemoryBus()
    watcher = await bus.subscribe(ALL)
    await bus.publish_quiet("c1", 4)
    assert await nothing_more(watcher)
    await bus.close()
    with pytest.raises(UsageError):
        await bus.publish_quiet("c1", 4)
