"""Storage on PostgreSQL and SQLite side by side, and the raw asyncpg floor.

Prints, per backend:
- median latency of appending one message at conversation length 10 and 10,000
  (target: ratio <= 1.3);
- batched append throughput (target >= 20,000 messages/s on local PostgreSQL);
- create and get throughput;
- on PostgreSQL, the same inserts done with bare asyncpg in the same run: the floor
  (target: loremaster's overhead over the raw driver <= 2x);
- full-text search over 100,000 contexts, median (target <= 20 ms).

Run: python benchmarks/bench_storage.py [--quick]
"""

from __future__ import annotations

import asyncio
import functools
import random
import time
import uuid
from datetime import UTC, datetime

import asyncpg
import orjson

from loremaster import Context, ContextManager, ConversationContext, Message

from _common import (
    QUICK,
    append_next,
    conversation_of,
    median_ms,
    messages,
    postgres_database,
    row,
    run,
    timed,
)

SAMPLES = 100 if QUICK else 300
LONG = 2_000 if QUICK else 10_000
BATCH = 1_000
BATCHES = 10 if QUICK else 40
SEARCH_CONTEXTS = 20_000 if QUICK else 100_000
SYLLABLES = [
    "dra",
    "gon",
    "el",
    "mir",
    "tha",
    "kor",
    "vel",
    "bar",
    "un",
    "ith",
    "ar",
    "os",
    "quen",
    "zul",
    "fae",
    "rin",
    "mor",
    "tal",
    "esh",
    "vok",
]


async def library_figures(url: str) -> dict[str, float]:
    rng = random.Random(11)
    figures: dict[str, float] = {}
    async with ContextManager(database_url=url, auto_cleanup=False) as cm:
        for length in (10, LONG):
            context_id = await conversation_of(cm, length, rng)
            pending = iter(messages(rng, SAMPLES))
            append = functools.partial(append_next, cm, context_id, pending)
            figures[f"append_{length}"] = median_ms(await timed(append, SAMPLES))

        targets = [
            await cm.create_context(ConversationContext(title=f"batched {i}"))
            for i in range(BATCHES // 10 + 1)
        ]
        batches = [messages(rng, BATCH) for _ in range(BATCHES)]
        started = time.perf_counter()
        for index, batch in enumerate(batches):
            await cm.append_messages(targets[index // 10], batch)
        figures["batched_per_s"] = BATCH * BATCHES / (time.perf_counter() - started)

        async def writer(target: str, own: list[list[Message]]) -> None:
            for batch in own:
                await cm.append_messages(target, batch)

        pairs = [await cm.create_context(ConversationContext(title=f"w{i}")) for i in range(2)]
        halves = [batches[: BATCHES // 2][:10], batches[BATCHES // 2 :][:10]]
        started = time.perf_counter()
        await asyncio.gather(*(writer(t, h) for t, h in zip(pairs, halves, strict=True)))
        written = BATCH * sum(len(half) for half in halves)
        figures["batched_2_per_s"] = written / (time.perf_counter() - started)

        contexts = [Context(title=f"npc {i}", data={"hp": i}) for i in range(SAMPLES)]
        pending_contexts = iter(contexts)
        durations = await timed(lambda: cm.create_context(next(pending_contexts)), SAMPLES)
        figures["create_ms"] = median_ms(durations)
        figures["create_per_s"] = SAMPLES / sum(durations)
        many = [Context(title=f"crowd {i}") for i in range(BATCH)]
        started = time.perf_counter()
        ids = await cm.create_contexts(many)
        figures["create_batched_per_s"] = BATCH / (time.perf_counter() - started)

        uncached = ContextManager(database_url=url, cache_size=0, auto_cleanup=False)
        await uncached.initialize()
        picks = iter(rng.choices(ids, k=SAMPLES))
        durations = await timed(lambda: uncached.get_context(next(picks)), SAMPLES)
        await uncached.close()
        figures["get_ms"] = median_ms(durations)
        figures["get_per_s"] = SAMPLES / sum(durations)
    return figures


async def raw_floor(url: str) -> dict[str, float]:
    """The same statements loremaster runs, with bare asyncpg and no library logic."""
    rng = random.Random(11)
    conn = await asyncpg.connect(url)
    figures: dict[str, float] = {}
    try:
        context_id = uuid.uuid4()
        now = datetime.now(UTC)
        await conn.execute(
            "INSERT INTO contexts (context_id, context_type, title, data, metadata, extra, state, "
            "collaborators, permissions, revision, doc_bytes, created_at, last_modified, "
            "last_accessed) VALUES ($1, 'conversation', 'raw', '{}', '{}', '{}', 'active', "
            "'{}', '{}', 1, 0, $2, $2, $2)",
            context_id,
            now,
        )
        state = {"revision": 1, "seq": 0}

        async def append(batch: list[Message]) -> None:
            bodies = [orjson.dumps(m.model_dump(mode="json")).decode() for m in batch]
            seqs = list(range(state["seq"] + 1, state["seq"] + 1 + len(batch)))
            async with conn.transaction():
                await conn.fetchrow(
                    "SELECT * FROM contexts WHERE context_id = $1 FOR UPDATE", context_id
                )
                await conn.execute(
                    "INSERT INTO messages (context_id, branch, seq, message_id, role, body, "
                    "search_text, created_at) SELECT $1, 'main', m.seq, m.id, m.role, "
                    "m.body::jsonb, m.text, now() FROM unnest($2::bigint[], $3::text[], "
                    "$4::text[], $5::text[], $6::text[]) AS m(seq, id, role, body, text)",
                    context_id,
                    seqs,
                    [m.id for m in batch],
                    [m.role.value for m in batch],
                    bodies,
                    [m.text for m in batch],
                )
                await conn.execute(
                    "UPDATE contexts SET revision = $2, message_count = $3 "
                    "WHERE context_id = $1 AND context_type = 'conversation'",
                    context_id,
                    state["revision"] + 1,
                    seqs[-1],
                )
                await conn.execute(
                    "INSERT INTO events (context_id, revision, op, changes, created_at) "
                    "VALUES ($1, $2, 'append_messages', $3, now())",
                    context_id,
                    state["revision"] + 1,
                    orjson.dumps(
                        [
                            {"op": "add", "path": "/messages/-", "value": orjson.Fragment(b)}
                            for b in bodies
                        ]
                    ).decode(),
                )
            state["revision"] += 1
            state["seq"] = seqs[-1]

        singles = iter(messages(rng, SAMPLES))
        figures["append_ms"] = median_ms(await timed(lambda: append([next(singles)]), SAMPLES))
        batches = [messages(rng, BATCH) for _ in range(BATCHES)]
        started = time.perf_counter()
        for batch in batches:
            await append(batch)
        figures["batched_per_s"] = BATCH * BATCHES / (time.perf_counter() - started)

        async def create() -> None:
            new_id = uuid.uuid4()
            async with conn.transaction():
                await conn.execute(
                    "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", str(new_id)
                )
                await conn.fetchval("SELECT 1 FROM contexts WHERE context_id = $1", new_id)
                await conn.execute(
                    "INSERT INTO contexts (context_id, context_type, title, data, metadata, extra, "
                    "state, collaborators, permissions, revision, doc_bytes, created_at, "
                    "last_modified, last_accessed) VALUES ($1, 'generic', 'npc', '{\"hp\": 1}', "
                    "'{}', '{}', 'active', '{}', '{}', 1, 0, now(), now(), now())",
                    new_id,
                )
                await conn.execute(
                    "INSERT INTO events (context_id, revision, op, changes, created_at) "
                    "VALUES ($1, 1, 'create', '[]', now())",
                    new_id,
                )

        figures["create_ms"] = median_ms(await timed(create, SAMPLES))
        ids = [
            r["context_id"] for r in await conn.fetch("SELECT context_id FROM contexts LIMIT 500")
        ]
        picks = iter(rng.choices(ids, k=SAMPLES))
        figures["get_ms"] = median_ms(
            await timed(
                lambda: conn.fetchrow("SELECT * FROM contexts WHERE context_id = $1", next(picks)),
                SAMPLES,
            )
        )
    finally:
        await conn.close()
    return figures


def vocabulary(rng: random.Random, size: int = 3000) -> list[str]:
    words: set[str] = set()
    while len(words) < size:
        words.add("".join(rng.choice(SYLLABLES) for _ in range(rng.randint(2, 3))))
    return sorted(words)


async def search_figures(url: str) -> dict[str, float]:
    rng = random.Random(5)
    words = vocabulary(rng)
    async with ContextManager(database_url=url, auto_cleanup=False) as cm:
        for _ in range(0, SEARCH_CONTEXTS, BATCH):
            await cm.create_contexts(
                [
                    Context(
                        title=" ".join(rng.choices(words, k=3)),
                        description=" ".join(rng.choices(words, k=20)),
                    )
                    for _ in range(BATCH)
                ]
            )
        queries = iter([" ".join(rng.choices(words, k=rng.randint(1, 2))) for _ in range(SAMPLES)])
        durations = await timed(lambda: cm.search_contexts(next(queries), limit=20), SAMPLES)
        return {"search_ms": median_ms(durations)}


async def main() -> None:
    results: dict[str, dict[str, float]] = {}
    async with postgres_database() as url:
        results["postgresql"] = await library_figures(url)
    async with postgres_database() as url:
        async with ContextManager(database_url=url):
            pass  # the schema, so the raw statements write the same tables
        results["raw asyncpg"] = await raw_floor(url)
    async with postgres_database() as url:
        results["postgresql"] |= await search_figures(url)
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        results["sqlite"] = await library_figures(f"sqlite:///{folder}/bench.db")
        results["sqlite"] |= await search_figures(f"sqlite:///{folder}/search.db")

    pg, raw, lite = results["postgresql"], results["raw asyncpg"], results["sqlite"]
    print(f"bench_storage: {SAMPLES} samples per median{' (quick)' if QUICK else ''}")
    row("figure", "postgresql", "raw asyncpg", "sqlite", target="target")
    row(
        "append 1 message at length 10, median ms",
        pg["append_10"],
        raw["append_ms"],
        lite["append_10"],
    )
    row(
        f"append 1 message at length {LONG:,}, median ms",
        pg[f"append_{LONG}"],
        None,
        lite[f"append_{LONG}"],
    )
    ratio_pg = pg[f"append_{LONG}"] / pg["append_10"]
    ratio_lite = lite[f"append_{LONG}"] / lite["append_10"]
    ok = max(ratio_pg, ratio_lite) <= 1.3
    row(f"ratio length {LONG:,} / length 10", ratio_pg, None, ratio_lite, target="<= 1.3", ok=ok)
    row(
        "batched appends, 1 writer, messages/s",
        pg["batched_per_s"],
        raw["batched_per_s"],
        lite["batched_per_s"],
    )
    ok = pg["batched_2_per_s"] >= 20_000
    row(
        "batched appends, 2 writers, messages/s",
        pg["batched_2_per_s"],
        None,
        lite["batched_2_per_s"],
        target=">= 20,000 (pg)",
        ok=ok,
    )
    row("create_context, median ms", pg["create_ms"], raw["create_ms"], lite["create_ms"])
    row("create_context, contexts/s (one client)", pg["create_per_s"], None, lite["create_per_s"])
    row(
        "create_contexts batch of 1,000, contexts/s",
        pg["create_batched_per_s"],
        None,
        lite["create_batched_per_s"],
    )
    row("get_context (uncached), median ms", pg["get_ms"], raw["get_ms"], lite["get_ms"])
    row("get_context (uncached), contexts/s", pg["get_per_s"], None, lite["get_per_s"])
    inserts: dict[str, float] = {
        "single append": pg["append_10"] / raw["append_ms"],
        "batched append": raw["batched_per_s"] / pg["batched_per_s"],
        "create": pg["create_ms"] / raw["create_ms"],
    }
    for name, overhead in inserts.items():
        row(
            f"overhead over raw asyncpg: {name}",
            f"{overhead:.2f}x",
            target="<= 2x",
            ok=overhead <= 2,
        )
    # A raw fetchrow builds no model; the difference is validating the row into one.
    row("overhead over raw asyncpg: get (row -> model)", f"{pg['get_ms'] / raw['get_ms']:.2f}x")
    label = f"search over {SEARCH_CONTEXTS:,} contexts, median ms"
    ok = max(pg["search_ms"], lite["search_ms"]) <= 20
    row(label, pg["search_ms"], None, lite["search_ms"], target="<= 20", ok=ok)


if __name__ == "__main__":
    run(main)
