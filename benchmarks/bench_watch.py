"""bench_watch: one SQLite file, no Redis — hearing another process's commits.

A subscriber process follows N contexts; the main process writes them. Beside the commit
feed (`PRAGMA data_version` every 50 ms, the feed read when it moves), the naive way at
the same latency: every stream reading the event log every 50 ms (the library's own
refill, with the feed turned off). Figures: CPU the subscriber burns while nothing is
committed (its own idle process subtracted), commit -> delivery latency, and what the
feed's trigger adds to a write.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import sqlite3
import statistics
import tempfile
import time
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from loremaster import Context, ContextManager

from _common import QUICK, row, run, timed

INTERVAL = 0.05
IDLE_SECONDS = 2.0 if QUICK else 5.0
UPDATES = 100 if QUICK else 400
PACE = 0.02
SPAWN = multiprocessing.get_context("spawn")
MODES = ("feed", "naive")


def _manager(url: str, mode: str) -> ContextManager:
    return ContextManager(url, watch_interval=INTERVAL if mode == "feed" else 0)


async def _subscriber(url: str, mode: str, ids: list[str], pipe: Connection) -> None:
    async with _manager(url, mode) as cm:
        started = time.process_time()
        await asyncio.sleep(IDLE_SECONDS)
        baseline = time.process_time() - started
        poll = 3600.0 if mode == "feed" else INTERVAL
        streams = [await cm.subscribe(cid, poll_interval=poll) for cid in ids]
        arrivals: dict[tuple[str, int], float] = {}

        async def read(stream: Any) -> None:
            async for event in stream:
                arrivals[(event.context_id, event.revision)] = time.time()

        readers = [asyncio.create_task(read(stream)) for stream in streams]
        await asyncio.sleep(0.5)  # every stream subscribed
        started = time.process_time()
        await asyncio.sleep(IDLE_SECONDS)
        idle = time.process_time() - started - baseline
        pipe.send(("ready", idle / IDLE_SECONDS))
        await asyncio.to_thread(pipe.recv)  # the writer is done
        await asyncio.sleep(1.0)
        for reader in readers:
            reader.cancel()
        for stream in streams:
            await stream.close()
        pipe.send(("arrivals", arrivals))


def subscriber_process(url: str, mode: str, ids: list[str], pipe: Connection) -> None:
    asyncio.run(_subscriber(url, mode, ids, pipe))


async def _writes(url: str, ids: list[str]) -> dict[tuple[str, int], float]:
    """Each update's (context, revision) and when its call began."""
    called: dict[tuple[str, int], float] = {}
    async with ContextManager(url) as cm:
        for n in range(UPDATES):
            cid = ids[n % len(ids)]
            began = time.time()
            context = await cm.update_context(cid, {"data": {"n": time.time_ns()}})
            called[(cid, context.revision)] = began
            await asyncio.sleep(PACE)
    return called


async def measure(url: str, mode: str, ids: list[str]) -> tuple[float, list[float]]:
    """(idle share of a core, delivery latencies in ms)."""
    here, there = SPAWN.Pipe()
    process = SPAWN.Process(target=subscriber_process, args=(url, mode, ids, there))
    process.start()
    try:
        kind, idle = await asyncio.to_thread(here.recv)
        assert kind == "ready"
        called = await _writes(url, ids)
        here.send("done")
        kind, arrivals = await asyncio.to_thread(here.recv)
    finally:
        process.join(timeout=30)
        if process.is_alive():
            process.kill()
    latencies = [(arrivals[key] - at) * 1000 for key, at in called.items() if key in arrivals]
    assert len(latencies) == len(called), f"{mode}: {len(latencies)} of {len(called)} delivered"
    return idle, latencies


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


async def update_median_ms(path: Path, *, trigger: bool) -> float:
    """A one-key update's median, with the feed's trigger or with it dropped."""
    async with ContextManager(f"sqlite:///{path}", enable_versioning=False) as cm:
        cid = await cm.create_context(Context(title="w"))
        if not trigger:
            with contextlib.closing(sqlite3.connect(path)) as raw:
                raw.execute("DROP TRIGGER event_feed_add")
                raw.commit()
        counter = iter(range(10**9))
        durations = await timed(
            lambda: cm.update_context(cid, {"data": {"n": next(counter)}}),
            300 if QUICK else 1000,
        )
    return statistics.median(durations) * 1000


async def main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite:///{Path(folder) / 'watch.db'}"
        async with ContextManager(url) as cm:
            ids = [await cm.create_context(Context(title=f"c{n}")) for n in range(100)]
        print(
            f"bench_watch: one SQLite file, no Redis; a subscriber process, the writer in "
            f"another; {IDLE_SECONDS:g} s idle, {UPDATES} updates {PACE * 1000:g} ms apart; "
            f"both look every {INTERVAL * 1000:g} ms"
        )
        row("figure", "commit feed", "naive poll", target="target")
        for count in (1, 100):
            results = {mode: await measure(url, mode, ids[:count]) for mode in MODES}
            idle = {mode: results[mode][0] * 100 for mode in MODES}
            row(
                f"{count} subscribed: idle CPU, % of a core",
                idle["feed"],
                idle["naive"],
                target="feed <= 1",
                ok=idle["feed"] <= 1,
            )
            for fraction, name in ((0.5, "p50"), (0.99, "p99")):
                figures = [percentile(results[mode][1], fraction) for mode in MODES]
                ok = figures[0] <= 100 if name == "p50" else None
                row(
                    f"{count} subscribed: call -> delivery {name} ms",
                    *figures,
                    target="<= 100" if ok is not None else "",
                    ok=ok,
                )
        with_trigger = await update_median_ms(Path(folder) / "with.db", trigger=True)
        without = await update_median_ms(Path(folder) / "without.db", trigger=False)
        row("update_context median ms, feed trigger / none", with_trigger, without)


if __name__ == "__main__":
    run(main)
