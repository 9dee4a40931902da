"""`follow`: every revision once and in order, from a bus and an events table together,
through races, lost messages, overflow, trimmed tables, cut connections and restarts.

The table is a list the test appends to and publishes from, as the manager would."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import pytest

from loremaster import ContextEvent, DataCorrupted
from loremaster.bus import EventBus, MemoryBus, RedisBus
from loremaster.sync import SNAPSHOT_OP, EventStream, follow, snapshot_event

if TYPE_CHECKING:
    from _redis import CutConnections, PrivateRedis

pytest_plugins = ["_redis"]

WHEN = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


class Table:
    """An events table of one context: what storage would hold and serve."""

    def __init__(self, bus: EventBus, context_id: str = "room") -> None:
        self.bus = bus
        self.context_id = context_id
        self.events: list[ContextEvent] = []
        self.document: dict[str, Any] = {}
        self.reads = 0
        self.kept_from = 1

    async def commit(self, *, publish: bool = True) -> ContextEvent:
        revision = len(self.events) + 1
        self.document = {**self.document, "n": revision}
        event = ContextEvent(
            context_id=self.context_id,
            revision=revision,
            op="update",
            changes=[{"op": "add", "path": "/n", "value": revision}],
            user_id="dm",
            created_at=WHEN,
        )
        self.events.append(event)
        if publish:
            await self.bus.publish(event)
        return event

    def trim(self, keep_from: int) -> None:
        """Forget what retention would: the events before `keep_from`."""
        self.kept_from = keep_from

    async def load_events(
        self, context_id: str, after_revision: int, limit: int
    ) -> Sequence[ContextEvent]:
        assert context_id == self.context_id
        self.reads += 1
        await asyncio.sleep(0)
        first = max(after_revision + 1, self.kept_from)
        return self.events[first - 1 : first - 1 + limit]

    async def load_snapshot(self, context_id: str) -> ContextEvent:
        return snapshot_event(context_id, len(self.events), dict(self.document), WHEN)

    def follow(self, after_revision: int = 0, **options: Any) -> EventStream:
        return follow(
            self.bus,
            self.context_id,
            load_events=self.load_events,
            load_snapshot=self.load_snapshot,
            after_revision=after_revision,
            **options,
        )


async def revisions(stream: EventStream, count: int, seconds: float = 5) -> list[int]:
    async with asyncio.timeout(seconds):
        return [(await anext(stream)).revision for _ in range(count)]


async def quiet(stream: EventStream, seconds: float = 0.2) -> bool:
    try:
        async with asyncio.timeout(seconds):
            await anext(stream)
    except TimeoutError:
        return True
    return False


@pytest.fixture(params=["memory", "redis"])
async def make_bus(request: pytest.FixtureRequest) -> AsyncIterator[Callable[..., EventBus]]:
    made: list[EventBus] = []

    def make(**options: Any) -> EventBus:
        if request.param == "memory":
            bus: EventBus = MemoryBus(**options)
        else:
            url = request.getfixturevalue("redis_url")
            bus = RedisBus(url, prefix=request.getfixturevalue("redis_prefix"), **options)
        made.append(bus)
        return bus

    yield make
    for bus in made:
        await bus.close()


async def test_backlog_then_live_each_once_in_order(make_bus: Callable[..., EventBus]) -> None:
    table = Table(make_bus())
    for _ in range(3):
        await table.commit()
    async with table.follow(batch_size=2) as stream:
        assert await revisions(stream, 3) == [1, 2, 3]
        await table.commit()
        await table.commit()
        assert await revisions(stream, 2) == [4, 5]
        assert stream.revision == 5
        assert await quiet(stream)


async def test_starting_from_a_known_revision(make_bus: Callable[..., EventBus]) -> None:
    table = Table(make_bus())
    for _ in range(4):
        await table.commit()
    async with table.follow(after_revision=2) as stream:
        assert await revisions(stream, 2) == [3, 4]


async def test_a_commit_between_subscribing_and_reading_the_backlog_is_not_lost(
    make_bus: Callable[..., EventBus],
) -> None:
    table = Table(make_bus())
    await table.commit()
    first_read = table.load_events

    async def racing_read(context_id: str, after: int, limit: int) -> Sequence[ContextEvent]:
        stale = await first_read(context_id, after, limit)
        if table.reads == 1:
            await table.commit()  # lands after the backlog was read, before it is yielded
        return stale

    table.load_events = racing_read  # type: ignore[method-assign]
    async with table.follow() as stream:
        assert await revisions(stream, 2) == [1, 2]
        assert await quiet(stream)


async def test_events_published_out_of_order_or_twice_come_once_in_order(
    make_bus: Callable[..., EventBus],
) -> None:
    bus = make_bus()
    table = Table(bus)
    async with table.follow() as stream:
        assert await quiet(stream, 0.05)
        fourth_first = [await table.commit(publish=False) for _ in range(4)]
        for event in (fourth_first[3], fourth_first[0], fourth_first[1], fourth_first[3]):
            await bus.publish(event)
        assert await revisions(stream, 4) == [1, 2, 3, 4]
        await table.commit()
        assert await revisions(stream, 1) == [5]
        assert await quiet(stream)


async def test_a_lost_publication_is_found_by_the_idle_refill(
    make_bus: Callable[..., EventBus],
) -> None:
    table = Table(make_bus())
    async with table.follow(refill_interval=0.1) as stream:
        await table.commit(publish=False)
        assert await revisions(stream, 1) == [1]


async def test_an_overflowing_subscriber_refills_from_the_table(
    make_bus: Callable[..., EventBus],
) -> None:
    table = Table(make_bus(max_pending=2))
    async with table.follow() as stream:
        assert await quiet(stream, 0.05)
        for _ in range(20):
            await table.commit()
        await asyncio.sleep(0.1)  # let them all arrive, and overflow
        assert await revisions(stream, 20) == list(range(1, 21))
        assert await quiet(stream)


async def test_a_trimmed_table_yields_a_snapshot_then_continues(
    make_bus: Callable[..., EventBus],
) -> None:
    table = Table(make_bus())
    for _ in range(5):
        await table.commit()
    table.trim(keep_from=4)
    async with table.follow(after_revision=1) as stream:
        async with asyncio.timeout(5):
            snapshot = await anext(stream)
        assert (snapshot.op, snapshot.revision) == (SNAPSHOT_OP, 5)
        assert snapshot.changes == [{"op": "replace", "path": "", "value": {"n": 5}}]
        await table.commit()
        assert await revisions(stream, 1) == [6]
    async with table.follow(after_revision=3) as stream:
        assert await revisions(stream, 3) == [4, 5, 6]


async def test_a_table_that_skips_past_its_snapshot_is_corrupt() -> None:
    table = Table(MemoryBus())
    for _ in range(3):
        await table.commit()
    table.trim(keep_from=3)

    async def old_snapshot(context_id: str) -> ContextEvent:
        return snapshot_event(context_id, 1, {})

    table.load_snapshot = old_snapshot  # type: ignore[method-assign]
    async with table.follow(after_revision=1) as stream:
        with pytest.raises(DataCorrupted):
            await anext(stream)


async def test_a_loader_error_propagates_and_the_next_read_tries_again() -> None:
    bus = MemoryBus()
    table = Table(bus)
    await table.commit()
    loads = table.load_events
    failing = True

    async def flaky(context_id: str, after: int, limit: int) -> Sequence[ContextEvent]:
        if failing:
            raise OSError("database gone")
        return await loads(context_id, after, limit)

    table.load_events = flaky  # type: ignore[method-assign]
    stream = table.follow()
    with pytest.raises(OSError, match="database gone"):
        await anext(stream)
    failing = False
    assert await revisions(stream, 1) == [1]
    await stream.close()
    assert bus._fanout.mailboxes == {}
    with pytest.raises(StopAsyncIteration):
        await anext(stream)


async def test_closing_the_bus_ends_the_stream() -> None:
    bus = MemoryBus()
    table = Table(bus)
    await table.commit()
    stream = table.follow()
    assert await revisions(stream, 1) == [1]
    await bus.close()
    with pytest.raises(StopAsyncIteration):
        await anext(stream)


# -- Redis: the transport fails, the stream does not ---------------------------------------


async def test_large_events_are_read_from_the_table(redis_url: str, redis_prefix: str) -> None:
    bus = RedisBus(redis_url, prefix=redis_prefix, max_event_bytes=16)
    table = Table(bus)
    try:
        async with table.follow(refill_interval=None) as stream:
            assert await quiet(stream, 0.05)
            reads = table.reads
            await table.commit()
            assert await revisions(stream, 1) == [1]
            assert table.reads > reads
    finally:
        await bus.close()


async def test_a_cut_connection_loses_nothing(
    redis_url: str, redis_prefix: str, cut_connections: CutConnections
) -> None:
    name = f"lm-{redis_prefix[7:19]}"
    subscriber = RedisBus(redis_url, prefix=redis_prefix, client_name=name)
    publisher = RedisBus(redis_url, prefix=redis_prefix)
    table = Table(publisher)
    try:
        stream = follow(
            subscriber,
            table.context_id,
            load_events=table.load_events,
            load_snapshot=table.load_snapshot,
            refill_interval=None,
        )
        async with stream:
            await table.commit()
            assert await revisions(stream, 1) == [1]
            await cut_connections(name)
            for _ in range(3):
                await table.commit()  # published while the subscriber may be away
            assert await revisions(stream, 3) == [2, 3, 4]
            await table.commit()
            assert await revisions(stream, 1) == [5]
    finally:
        await subscriber.close()
        await publisher.close()


async def test_a_redis_restart_loses_nothing(private_redis: PrivateRedis) -> None:
    subscriber = RedisBus(private_redis.url, timeout=1, max_backoff=0.2)
    publisher = RedisBus(private_redis.url, timeout=1)
    table = Table(publisher)
    try:
        stream = follow(
            subscriber,
            table.context_id,
            load_events=table.load_events,
            load_snapshot=table.load_snapshot,
            refill_interval=None,
        )
        async with stream:
            await table.commit()
            assert await revisions(stream, 1) == [1]
            await private_redis.stop()
            for _ in range(2):
                await table.commit(publish=False)  # committed; Redis down, nobody told
            await private_redis.start()
            assert await revisions(stream, 2, seconds=10) == [2, 3]
            await table.commit()
            assert await revisions(stream, 1) == [4]
    finally:
        await subscriber.close()
        await publisher.close()


def test_snapshot_events_replace_the_whole_document() -> None:
    import jsonpatch

    event = snapshot_event("c", 7, {"a": [1]}, WHEN)
    assert (event.op, event.revision, event.user_id) == ("snapshot", 7, None)
    assert jsonpatch.apply_patch({"old": True}, event.changes) == {"a": [1]}
    assert snapshot_event("c", 1, {}).created_at.tzinfo is not None
