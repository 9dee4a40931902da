"""One-key `update_context` on SQLite and PostgreSQL, beside the bare SQL floor.

Prints, per backend, the median and p95 latency of `update_context(id, {"data": {"hp": n}})`
on a context of ~20 KB of fields, with automatic versions (the default: one per change)
and without; and, measured in the same run, the same one-row UPDATE done with the bare
driver (sqlite3 / asyncpg): the floor no library can beat. Compare releases with
`python benchmarks/compare.py`.

Run: python benchmarks/bench_update.py [--quick]
"""

from __future__ import annotations

import random
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from itertools import count
from pathlib import Path

import asyncpg
import orjson

from loremaster import Context, ContextManager

from _common import QUICK, median_ms, postgres_database, prose, row, run, timed

SAMPLES = 300 if QUICK else 2_000
WARM_UP = 50


def world() -> dict[str, object]:
    rng = random.Random(11)
    return {"hp": 0, "lore": {f"npc{i}": prose(rng, 25) for i in range(100)}}


def p95_ms(durations: list[float]) -> float:
    return statistics.quantiles(durations, n=20)[-1] * 1000


async def measure(call: Callable[[], Awaitable[object]]) -> list[float]:
    await timed(call, WARM_UP)
    return await timed(call, SAMPLES)


async def loremaster_updates(url: str, *, versions: bool) -> list[float]:
    async with ContextManager(database_url=url, enable_versioning=versions) as cm:
        context_id = await cm.create_context(Context(title="The world", data=world()))
        hp = count(1)
        return await measure(lambda: cm.update_context(context_id, {"data": {"hp": next(hp)}}))


def sqlite_floor(path: Path) -> list[float]:
    with sqlite3.connect(path, isolation_level=None) as conn:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("CREATE TABLE t (id TEXT PRIMARY KEY, revision INT, data TEXT)")
        conn.execute("INSERT INTO t VALUES ('a', 1, ?)", (orjson.dumps(world()).decode(),))
        document = world()
        durations = []
        for n in range(WARM_UP + SAMPLES):
            started = time.perf_counter()
            document["hp"] = n
            conn.execute("BEGIN IMMEDIATE")
            conn.execute(
                "UPDATE t SET data = ?, revision = revision + 1 WHERE id = 'a'",
                (orjson.dumps(document).decode(),),
            )
            conn.execute("COMMIT")
            durations.append(time.perf_counter() - started)
    return durations[WARM_UP:]


async def postgres_floor(url: str) -> list[float]:
    conn = await asyncpg.connect(url)
    try:
        await conn.execute("CREATE TABLE t (id TEXT PRIMARY KEY, revision INT, data JSONB)")
        await conn.execute(
            "INSERT INTO t VALUES ('a', 1, $1::jsonb)", orjson.dumps(world()).decode()
        )
        document = world()
        n = count()

        async def update() -> None:
            document["hp"] = next(n)
            async with conn.transaction():
                await conn.execute(
                    "UPDATE t SET data = $1::jsonb, revision = revision + 1 WHERE id = 'a'",
                    orjson.dumps(document).decode(),
                )

        return await measure(update)
    finally:
        await conn.close()


def report(label: str, durations: list[float]) -> None:
    row(label, median_ms(durations), p95_ms(durations))


async def main() -> None:
    print(f"One-key update_context, {SAMPLES} samples, a ~20 KB context")
    row("figure (ms)", "median", "p95")
    with tempfile.TemporaryDirectory() as tmp:
        report("sqlite: bare sqlite3 UPDATE (floor)", sqlite_floor(Path(tmp) / "floor.db"))
        for versions in (True, False):
            url = f"sqlite:///{tmp}/lm-{versions}.db"
            durations = await loremaster_updates(url, versions=versions)
            report(f"sqlite: update_context, versions {'on' if versions else 'off'}", durations)
    async with postgres_database() as url:
        report("postgresql: bare asyncpg UPDATE (floor)", await postgres_floor(url))
    for versions in (True, False):
        async with postgres_database() as url:
            durations = await loremaster_updates(url, versions=versions)
        report(f"postgresql: update_context, versions {'on' if versions else 'off'}", durations)


if __name__ == "__main__":
    run(main)
