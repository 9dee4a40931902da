"""Moving a whole database: the full export and import, both directions.

Prints, for 200 conversations of 50 messages, each appended one by one (so 51 versions and
51 events each): the time, contexts per second and MB per second of `export --full` from
SQLite, its import into PostgreSQL, the export from PostgreSQL and its import into a new
SQLite file; and whether the last dump equals the first (it must: every row the same).

Run: python benchmarks/bench_transfer.py [--quick]
"""

from __future__ import annotations

import random
import tempfile
import time
from pathlib import Path

from loremaster import ContextManager, ConversationContext

from _common import QUICK, postgres_database, prose, row, run

CONTEXTS = 40 if QUICK else 200
MESSAGES = 50


async def build(url: str) -> None:
    rng = random.Random(7)
    async with ContextManager(database_url=url) as cm:
        ids = await cm.create_contexts(
            [ConversationContext(title=f"campaign {n}") for n in range(CONTEXTS)]
        )
        roles = ("user", "assistant")
        for turn in range(MESSAGES):
            await cm.append_messages_batch(
                {cid: [{"role": roles[turn % 2], "content": prose(rng)}] for cid in ids}
            )


async def export_to(url: str, path: Path) -> float:
    started = time.perf_counter()
    async with ContextManager(database_url=url) as cm:
        with path.open("wb") as dump:
            async for line in cm.export_full():
                dump.write(line)
    return time.perf_counter() - started


async def import_from(url: str, path: Path) -> float:
    started = time.perf_counter()
    async with ContextManager(database_url=url) as cm:
        with path.open("rb") as dump:
            report = await cm.import_full(dump)
    assert report.imported == CONTEXTS, report
    return time.perf_counter() - started


def report(label: str, seconds: float, path: Path) -> None:
    megabytes = path.stat().st_size / 1e6
    row(label, seconds, CONTEXTS / seconds, megabytes / seconds)


async def main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        base = Path(folder)
        source, back = f"sqlite:///{base / 'source.db'}", f"sqlite:///{base / 'back.db'}"
        await build(source)
        first, second = base / "sqlite.jsonl", base / "postgres.jsonl"
        print(
            f"bench_transfer: {CONTEXTS} conversations x {MESSAGES} messages, "
            f"{MESSAGES + 1} versions and events each"
        )
        row("", "seconds", "contexts/s", "MB/s")
        report("export --full from SQLite", await export_to(source, first), first)
        lines = sum(1 for _ in first.open("rb"))
        async with postgres_database() as postgres:
            report("import into PostgreSQL", await import_from(postgres, first), first)
            report("export --full from PostgreSQL", await export_to(postgres, second), second)
        report("import into SQLite", await import_from(back, second), second)
        third = base / "back.jsonl"
        await export_to(back, third)
        same = first.read_bytes().split(b"\n", 1)[1] == third.read_bytes().split(b"\n", 1)[1]
        print(
            f"dump: {lines:,} lines, {first.stat().st_size / 1e6:.1f} MB; "
            f"SQLite -> PostgreSQL -> SQLite dump equals the first: {same}"
        )


if __name__ == "__main__":
    run(main)
