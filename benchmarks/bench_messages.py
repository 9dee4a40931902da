"""Message storage on the embedded SQLite backend, beside the naive JSON-column approach.

Prints:
- median latency of `append_messages` with one message at conversation length 10 and
  10,000 (target: ratio <= 1.3, appending does not slow down as a conversation grows);
- messages/s of batched appends (target >= 20,000/s);
- median `get_messages(limit=50)` at length 10,000 (target <= 2 ms);
- the same appends and reads done the naive way (the whole message list rewritten in one
  JSON column per append, as many tools do), in the same run.

Run: python benchmarks/bench_messages.py [--quick]
"""

from __future__ import annotations

import asyncio
import functools
import random
import sqlite3
import tempfile
import time
from pathlib import Path

import orjson

from loremaster import ContextManager, ConversationContext, Message

from _common import QUICK, append_next, conversation_of, median_ms, messages, row, timed

SAMPLES = 100 if QUICK else 400
LONG = 2_000 if QUICK else 10_000
BATCH = 1_000
BATCHED_TOTAL = 20_000 if QUICK else 100_000


async def loremaster_figures(folder: Path) -> dict[str, float]:
    rng = random.Random(7)
    async with ContextManager(database_url=f"sqlite:///{folder / 'bench.db'}") as cm:
        figures: dict[str, float] = {}
        for length in (10, LONG):
            context_id = await conversation_of(cm, length, rng)
            pending = iter(messages(rng, SAMPLES))
            append_one = functools.partial(append_next, cm, context_id, pending)
            figures[f"append_{length}"] = median_ms(await timed(append_one, SAMPLES))
            if length == LONG:
                read = functools.partial(cm.get_messages, context_id, limit=50)
                figures["get50"] = median_ms(await timed(read, SAMPLES))

        # Ten batches per conversation keeps each under CONTEXT_MAX_SIZE_MB (10 MB).
        targets = [
            await cm.create_context(ConversationContext(title=f"batched {i}"))
            for i in range(BATCHED_TOTAL // BATCH // 10)
        ]
        batches = [messages(rng, BATCH) for _ in range(BATCHED_TOTAL // BATCH)]
        started = time.perf_counter()
        for index, batch in enumerate(batches):
            await cm.append_messages(targets[index // 10], batch)
        figures["batched_per_s"] = BATCHED_TOTAL / (time.perf_counter() - started)
        return figures


class NaiveStore:
    """The whole message list in one JSON column, rewritten on every append."""

    def __init__(self, path: Path) -> None:
        self.conn = sqlite3.connect(path, isolation_level=None)
        self.conn.execute("PRAGMA journal_mode = WAL")
        self.conn.execute("PRAGMA synchronous = NORMAL")
        self.conn.execute("CREATE TABLE contexts (id TEXT PRIMARY KEY, messages TEXT NOT NULL)")

    def create(self, context_id: str, batch: list[dict[str, object]]) -> None:
        self.conn.execute(
            "INSERT INTO contexts VALUES (?, ?)", (context_id, orjson.dumps(batch).decode())
        )

    def append(self, context_id: str, batch: list[dict[str, object]]) -> None:
        self.conn.execute("BEGIN IMMEDIATE")
        (text,) = self.conn.execute(
            "SELECT messages FROM contexts WHERE id = ?", (context_id,)
        ).fetchone()
        stored = orjson.loads(text)
        stored.extend(batch)
        self.conn.execute(
            "UPDATE contexts SET messages = ? WHERE id = ?",
            (orjson.dumps(stored).decode(), context_id),
        )
        self.conn.execute("COMMIT")

    def last(self, context_id: str, limit: int) -> list[Message]:
        (text,) = self.conn.execute(
            "SELECT messages FROM contexts WHERE id = ?", (context_id,)
        ).fetchone()
        return [Message.model_validate(m) for m in orjson.loads(text)[-limit:]]


def naive_figures(folder: Path) -> dict[str, float]:
    rng = random.Random(7)
    store = NaiveStore(folder / "naive.db")
    figures: dict[str, float] = {}

    def dumped(count: int) -> list[dict[str, object]]:
        return [m.model_dump(mode="json") for m in messages(rng, count)]

    for length in (10, LONG):
        context_id = f"c{length}"
        store.create(context_id, dumped(length))
        durations = []
        for item in dumped(SAMPLES):
            started = time.perf_counter()
            store.append(context_id, [item])
            durations.append(time.perf_counter() - started)
        figures[f"append_{length}"] = median_ms(durations)
        if length == LONG:
            reads = []
            for _ in range(SAMPLES // 4):
                started = time.perf_counter()
                store.last(context_id, 50)
                reads.append(time.perf_counter() - started)
            figures["get50"] = median_ms(reads)
    return figures


def main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        ours = asyncio.run(loremaster_figures(Path(folder)))
        naive = naive_figures(Path(folder))
    long_key = f"append_{LONG}"
    ratio = ours[long_key] / ours["append_10"]
    naive_ratio = naive[long_key] / naive["append_10"]
    print(f"bench_messages: SQLite, {SAMPLES} samples per figure{' (quick)' if QUICK else ''}")
    row("figure", "loremaster", "naive JSON", target="target")
    row("append 1 message at length 10, median ms", ours["append_10"], naive["append_10"])
    row(f"append 1 message at length {LONG:,}, median ms", ours[long_key], naive[long_key])
    row(f"ratio length {LONG:,} / length 10", ratio, naive_ratio, target="<= 1.3", ok=ratio <= 1.3)
    batched = ours["batched_per_s"]
    row("batched appends, messages/s", batched, None, target=">= 20,000", ok=batched >= 20_000)
    get50 = ours["get50"]
    label = f"get_messages(limit=50) at {LONG:,}, median ms"
    row(label, get50, naive["get50"], target="<= 2", ok=get50 <= 2)
    slower = naive[long_key] / ours[long_key]
    print(f"the naive append at length {LONG:,} is {slower:.0f}x slower than loremaster's")


if __name__ == "__main__":
    main()
