"""Real-time sync over Redis: commit-to-delivery latency and sustained events/s, beside the
floor of a bare redis-py publish -> subscriber round trip, measured in the same run.

The store is PostgreSQL (a fresh database); the bus is Redis Pub/Sub
(`LOREMASTER_BENCH_REDIS_URL`, default redis://127.0.0.1:6379/0). Two processes: this one
writes (one `ContextManager`, one writer), a spawned one holds 1, 10 or 50 subscribers
(`cm.subscribe` streams of one `ContextManager`, each read by a task of its own).

Latency. Update i sets `data.seq = i` and stamps `data.at` with the writer's wall clock
just before `update_context` is called. The writer records the wall clock when
`update_context` returns: that is the commit time the writer can report (the change has
committed by then, and its event has been handed to Redis). A subscriber records the wall
clock when its stream yields the event. "commit -> delivery" is delivery minus that return
time, for every subscriber and event, matched by `seq` (both processes read one host's
clock). It understates the truth by what lies between the commit and the return (the
publish's round trip among it; an event may even arrive before the writer resumes, which
gives negative values), so "call -> delivery", from the stamp taken before the call and so
holding the whole write to PostgreSQL, is printed beside it as the bound from above: the
true figure lies between the two. Updates are paced (one every PACE seconds), so the
figures are latency, not queueing. Target: p99 <= 15 ms for 50 subscribers, loopback.

Sustained events/s. One writer commits updates back to back while every subscriber
receives them: events/s is the number of updates over the time from the first call to the
last delivery at the slowest subscriber; deliveries/s multiplies by the subscribers; the
writer's own rate (commits/s) is beside.

The floor does the same with nothing but redis-py: the writer process publishes a
70-byte message of the same shape as loremaster's wire format carrying the seq, with the
same two stamps around `publish`; the subscriber process holds as many redis-py `PubSub`
objects (one connection each, the way redis-py is used) and records receipt times.

Run: python benchmarks/bench_sync.py [--quick]
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

import orjson
from redis.asyncio import Redis

from loremaster import Context, ContextEvent, ContextManager

from _common import QUICK, postgres_database, row, run

REDIS_URL = os.environ.get("LOREMASTER_BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
SUBSCRIBERS = (1, 10, 50)
LATENCY_SAMPLES = 100 if QUICK else 500
PACE = 0.005
THROUGHPUT_EVENTS = 500 if QUICK else 3_000
COLLECT_SECONDS = 120.0
TARGET_P99_MS = 15.0
WARM_UP = 0
"""The seq of the event each subscriber must have received before measuring starts: a
stream subscribes, and reads the table once, on its first wait."""

Receipts = list[list[tuple[int, float]]]
"""Per subscriber, (seq, wall clock at delivery) in the order delivered."""


# -- the subscriber process -----------------------------------------------------------------


def seq_of(event: ContextEvent) -> int | None:
    """The update's seq; WARM_UP for a warm-up update (it sets `data.warm`)."""
    for change in event.changes:
        if change.get("path") == "/data/seq":
            value: int = change["value"]
            return value
        if change.get("path") == "/data/warm":
            return WARM_UP
    return None


async def collect(
    sources: list[Callable[[], Awaitable[int | None]]], count: int, say: Callable[[str], None]
) -> Receipts:
    """Read each source in a task of its own until it has delivered seqs 1 to `count`
    (or COLLECT_SECONDS pass). Says "listening" once the tasks wait, and "ready" once each
    has received the warm-up event."""
    receipts: Receipts = [[] for _ in sources]
    warming = len(sources)

    async def read(
        source: Callable[[], Awaitable[int | None]], into: list[tuple[int, float]]
    ) -> None:
        nonlocal warming
        while await source() != WARM_UP:
            pass
        warming -= 1
        if warming == 0:
            say("ready")
        while len(into) < count:
            seq = await source()
            if seq is not None:
                into.append((seq, time.time()))

    tasks = [asyncio.create_task(read(s, r)) for s, r in zip(sources, receipts, strict=True)]
    await asyncio.sleep(0)
    say("listening")
    _, pending = await asyncio.wait(tasks, timeout=COLLECT_SECONDS)
    for task in pending:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    return receipts


async def library_subscribers(
    cm: ContextManager, context_id: str, n: int, count: int, say: Callable[[str], None]
) -> Receipts:
    streams = [await cm.subscribe(context_id) for _ in range(n)]

    def source(stream: Any) -> Callable[[], Awaitable[int | None]]:
        async def next_seq() -> int | None:
            return seq_of(await anext(stream))

        return next_seq

    try:
        return await collect([source(s) for s in streams], count, say)
    finally:
        for stream in streams:
            await stream.close()


async def raw_subscribers(channel: str, n: int, count: int, say: Callable[[str], None]) -> Receipts:
    client = Redis.from_url(REDIS_URL)
    pubsubs = [client.pubsub() for _ in range(n)]
    try:
        for pubsub in pubsubs:
            await pubsub.subscribe(channel)

        def source(pubsub: Any) -> Callable[[], Awaitable[int | None]]:
            async def next_seq() -> int | None:
                message = await pubsub.get_message(timeout=None)
                if message is None or message["type"] != "message":
                    return None
                seq: int = orjson.loads(message["data"])[2]
                return seq

            return next_seq

        return await collect([source(p) for p in pubsubs], count, say)
    finally:
        for pubsub in pubsubs:
            await pubsub.aclose()
        await client.aclose()


def subscriber_process(pipe: Connection) -> None:
    """Serve the writer's requests: ("library", database_url, context_id, n, count),
    ("raw", channel, n, count) or ("stop",); says "listening" and "ready" (see `collect`),
    then sends the receipts."""

    async def serve() -> None:
        managers: dict[str, ContextManager] = {}
        try:
            while True:
                request = await asyncio.to_thread(pipe.recv)
                if request[0] == "stop":
                    return
                if request[0] == "library":
                    _, database_url, context_id, n, count = request
                    if database_url not in managers:
                        cm = ContextManager(database_url=database_url, redis_url=REDIS_URL)
                        await cm.initialize()
                        managers[database_url] = cm
                    receipts = await library_subscribers(
                        managers[database_url], context_id, n, count, pipe.send
                    )
                else:
                    _, channel, n, count = request
                    receipts = await raw_subscribers(channel, n, count, pipe.send)
                pipe.send(receipts)
        finally:
            for cm in managers.values():
                await cm.close()

    asyncio.run(serve())


class Subscribers:
    """The spawned subscriber process, seen from the writer."""

    def __init__(self) -> None:
        spawn = multiprocessing.get_context("spawn")
        self._pipe, child = spawn.Pipe()
        self._process = spawn.Process(target=subscriber_process, args=(child,))
        self._process.start()

    async def ask(self, request: tuple[Any, ...], warm_up: Callable[[], Awaitable[object]]) -> None:
        """Have the subscribers set up, and send the warm-up event (seq 0) once they
        listen, again every second until each has received it."""
        self._pipe.send(request)
        assert await asyncio.to_thread(self._pipe.recv) == "listening"
        while True:
            await warm_up()
            if await asyncio.to_thread(self._pipe.poll, 1.0):
                assert self._pipe.recv() == "ready"
                return

    async def receipts(self) -> Receipts:
        answer: Receipts = await asyncio.to_thread(self._pipe.recv)
        return answer

    def stop(self) -> None:
        self._pipe.send(("stop",))
        self._process.join(timeout=30)
        if self._process.is_alive():
            self._process.kill()


# -- the writer ------------------------------------------------------------------------------


@dataclass
class Figures:
    p50: float = float("nan")
    p99: float = float("nan")
    upper_p50: float = float("nan")
    upper_p99: float = float("nan")
    events_per_s: float = float("nan")
    deliveries_per_s: float = float("nan")
    writes_per_s: float = float("nan")
    complete: bool = True


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def latencies(receipts: Receipts, reference: dict[int, float]) -> list[float]:
    return [(at - reference[seq]) * 1000 for one in receipts for seq, at in one]


def latency(
    figures: Figures, receipts: Receipts, called: dict[int, float], returned: dict[int, float]
) -> None:
    from_return = latencies(receipts, returned)
    from_call = latencies(receipts, called)
    figures.p50, figures.p99 = percentile(from_return, 0.5), percentile(from_return, 0.99)
    figures.upper_p50, figures.upper_p99 = percentile(from_call, 0.5), percentile(from_call, 0.99)


def complete(receipts: Receipts, count: int) -> bool:
    """Every subscriber got every seq exactly once, in order."""
    expected = list(range(1, count + 1))
    return all([seq for seq, _ in one] == expected for one in receipts)


async def library_run(
    cm: ContextManager, subscribers: Subscribers, url: str, n: int, count: int, *, pace: float
) -> tuple[Receipts, dict[int, float], dict[int, float], float]:
    """`count` updates of a fresh context to `n` subscribers: the receipts, the call and
    the commit time of each seq, and when the writer finished."""
    context_id = await cm.create_context(Context(title=f"{n} subscribers", data={"seq": 0}))
    warm_ups = iter(range(1, 1000))
    await subscribers.ask(
        ("library", url, context_id, n, count),
        lambda: cm.update_context(context_id, {"data": {"warm": next(warm_ups)}}),
    )
    called: dict[int, float] = {}
    committed: dict[int, float] = {}
    for seq in range(1, count + 1):
        called[seq] = time.time()
        await cm.update_context(context_id, {"data": {"seq": seq, "at": called[seq]}})
        committed[seq] = time.time()
        if pace:
            await asyncio.sleep(pace)
    return await subscribers.receipts(), called, committed, time.time()


async def raw_run(
    client: Redis, subscribers: Subscribers, n: int, count: int, *, pace: float
) -> tuple[Receipts, dict[int, float], dict[int, float], float]:
    """The same with a bare publish: the receipts, when each publish was called and when
    it returned, and when the publisher finished."""
    channel = f"lmbench:{os.getpid()}:{time.monotonic_ns()}"
    warm_up = orjson.dumps([1, 0, WARM_UP, "update", [], "dm", 0])
    await subscribers.ask(("raw", channel, n, count), lambda: client.publish(channel, warm_up))
    called: dict[int, float] = {}
    returned: dict[int, float] = {}
    for seq in range(1, count + 1):
        called[seq] = time.time()
        change = [{"op": "replace", "path": "/data/seq", "value": seq}]
        payload = orjson.dumps([1, 0, seq, "update", change, "dm", int(called[seq] * 1e6)])
        await client.publish(channel, payload)
        returned[seq] = time.time()
        if pace:
            await asyncio.sleep(pace)
    return await subscribers.receipts(), called, returned, time.time()


def rates(
    figures: Figures, receipts: Receipts, started: float, finished: float, count: int
) -> None:
    last = max(at for one in receipts for _, at in one)
    span = last - started
    figures.events_per_s = count / span
    figures.deliveries_per_s = count * len(receipts) / span
    figures.writes_per_s = count / (finished - started)


async def library_figures(subscribers: Subscribers, url: str, n: int) -> Figures:
    figures = Figures()
    async with ContextManager(database_url=url, redis_url=REDIS_URL) as cm:
        receipts, called, committed, _ = await library_run(
            cm, subscribers, url, n, LATENCY_SAMPLES, pace=PACE
        )
        figures.complete = complete(receipts, LATENCY_SAMPLES)
        latency(figures, receipts, called, committed)

        receipts, called, _, finished = await library_run(
            cm, subscribers, url, n, THROUGHPUT_EVENTS, pace=0
        )
        figures.complete &= complete(receipts, THROUGHPUT_EVENTS)
        rates(figures, receipts, called[1], finished, THROUGHPUT_EVENTS)
    return figures


async def raw_figures(subscribers: Subscribers, n: int) -> Figures:
    figures = Figures()
    client = Redis.from_url(REDIS_URL)
    try:
        receipts, called, returned, _ = await raw_run(
            client, subscribers, n, LATENCY_SAMPLES, pace=PACE
        )
        figures.complete = complete(receipts, LATENCY_SAMPLES)
        latency(figures, receipts, called, returned)
        receipts, called, _, finished = await raw_run(
            client, subscribers, n, THROUGHPUT_EVENTS, pace=0
        )
        figures.complete &= complete(receipts, THROUGHPUT_EVENTS)
        rates(figures, receipts, called[1], finished, THROUGHPUT_EVENTS)
    finally:
        await client.aclose()
    return figures


async def main() -> None:
    library: dict[int, Figures] = {}
    raw: dict[int, Figures] = {}
    async with postgres_database() as url:
        async with ContextManager(database_url=url):
            pass  # the schema, before the subscriber process opens it too
        subscribers = Subscribers()
        try:
            for n in SUBSCRIBERS:
                library[n] = await library_figures(subscribers, url, n)
                raw[n] = await raw_figures(subscribers, n)
        finally:
            subscribers.stop()  # its managers close before the database is dropped

    print(
        f"bench_sync: PostgreSQL + Redis Pub/Sub, writer and subscribers in 2 processes; "
        f"{LATENCY_SAMPLES} paced updates for latency, {THROUGHPUT_EVENTS:,} back to back "
        f"for events/s{' (quick)' if QUICK else ''}"
    )
    row("figure", "loremaster", "redis-py", target="target")
    for n in SUBSCRIBERS:
        lib, floor = library[n], raw[n]
        label = f"{n} subscriber{'s' if n > 1 else ''}"
        row(f"{label}: commit -> delivery p50 ms", lib.p50, floor.p50)
        ok = lib.p99 <= TARGET_P99_MS if n == max(SUBSCRIBERS) else None
        target = f"<= {TARGET_P99_MS:g}" if ok is not None else ""
        row(f"{label}: commit -> delivery p99 ms", lib.p99, floor.p99, target=target, ok=ok)
        row(f"{label}: call -> delivery p50 ms", lib.upper_p50, floor.upper_p50)
        row(f"{label}: call -> delivery p99 ms", lib.upper_p99, floor.upper_p99)
        row(f"{label}: events/s sustained, 1 writer", lib.events_per_s, floor.events_per_s)
        row(f"{label}: deliveries/s", lib.deliveries_per_s, floor.deliveries_per_s)
        row(f"{label}: writer alone, commits (publishes)/s", lib.writes_per_s, floor.writes_per_s)
        if not (lib.complete and floor.complete):
            state = f"loremaster {lib.complete}, bare redis-py {floor.complete}"
            print(f"  {label}: every event delivered once and in order? {state}")


if __name__ == "__main__":
    run(main)
