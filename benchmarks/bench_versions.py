"""Versions that cost what changed, side by side with LangGraph's checkpointer.

Prints:
- stored bytes of 1,000 versions of a 200 KB context where each edit changes one small
  field, under the full, incremental and hybrid strategies (target: hybrid <= 3% of full);
- median and worst time to rebuild any of those versions on PostgreSQL and SQLite with
  K = 50 (target: worst <= 10 ms on local PostgreSQL);
- the time to list a page of 50 versions of a context with 100,000 versions (target <= 5 ms);
- a 500-turn conversation stored turn by turn by LangGraph's SQLite checkpointer (a
  one-node `MessagesState` chat graph: each turn saves checkpoints holding the whole message
  list) beside loremaster with a version per turn: bytes on disk and median time spent
  saving a turn at turn 500 (targets: >= 20x fewer bytes, >= 5x faster writes); and the
  bytes stored per byte of the messages' text: the SQLite file of each (loremaster's
  target: <= 4x), and loremaster's tables and indexes on PostgreSQL (the contexts
  partition of conversations, messages, events, versions and branches; target: <= 6x).

Run: python benchmarks/bench_versions.py [--quick]   (needs the `bench` extra: make bench)
"""

from __future__ import annotations

import gc
import random
import sqlite3
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

from loremaster import Context, ContextManager, ConversationContext, Message

from _common import QUICK, median_ms, postgres_database, prose, row, run

VERSIONS = 300 if QUICK else 1_000
REBUILDS = 100 if QUICK else 300
HISTORY = 20_000 if QUICK else 100_000
TURNS = 200 if QUICK else 500
TAIL = 50  # the turns whose write latency is "at turn N"
K = 50


def world(rng: random.Random, size: int = 200 * 1024) -> dict[str, Any]:
    """A campaign world of about `size` bytes of JSON: places with prose descriptions."""
    places: dict[str, Any] = {}
    while sum(len(p["text"]) + 40 for p in places.values()) < size:
        places[f"place-{len(places)}"] = {"text": prose(rng, 40), "visited": False}
    return {"round": 0, "places": places}


async def _versions_of_a_big_context(url: str, strategy: str) -> tuple[ContextManager, str]:
    cm = ContextManager(
        database_url=url,
        version_strategy=strategy,
        version_snapshot_every=K,
        max_versions=10 * VERSIONS,
        max_size_mb=5,
    )
    await cm.initialize()
    context_id = await cm.create_context(
        Context(title="The world", data=world(random.Random(7))), user_id="dm"
    )
    for i in range(1, VERSIONS):
        await cm.update_context(context_id, {"data": {"round": i}}, user_id="dm")
    return cm, context_id


async def _stored_bytes(cm: ContextManager, context_id: str) -> int:
    history = await cm.get_version_history(context_id, limit=1000)
    total = sum(v.size_bytes for v in history)
    while len(history) == 1000:
        history = await cm.get_version_history(context_id, limit=1000, before=history[-1].number)
        total += sum(v.size_bytes for v in history)
    return total


async def strategies(tmp: Path) -> None:
    sizes = {}
    for strategy in ("full", "incremental", "hybrid"):
        cm, context_id = await _versions_of_a_big_context(
            f"sqlite:///{tmp}/{strategy}.db", strategy
        )
        sizes[strategy] = await _stored_bytes(cm, context_id)
        await cm.close()
    print(f"{VERSIONS:,} versions of a 200 KB context, one small field changed each time (K={K})")
    row("figure", "bytes", "% of full")
    for strategy, size in sizes.items():
        share = 100 * size / sizes["full"]
        target, ok = ("<= 3%", share <= 3) if strategy == "hybrid" else ("", None)
        row(f"stored by {strategy}", size, f"{share:.2f}%", target=target, ok=ok)


async def _rebuild_times(cm: ContextManager, context_id: str, picks: list[Any]) -> list[float]:
    durations = []
    for version in picks:
        started = time.perf_counter()
        await cm.get_version(context_id, version.version_id, include_messages=False)
        durations.append(time.perf_counter() - started)
    return durations


async def rebuilds(url: str, backend: str) -> None:
    """Rebuild random versions; then again with the setup's objects frozen out of the
    garbage collector's reach (`gc.freeze`, as long-running servers do), because the
    worst single figure is otherwise a full collection of the benchmark's own heap."""
    cm, context_id = await _versions_of_a_big_context(url, "hybrid")
    history = await cm.get_version_history(context_id, limit=1000)
    picks = random.Random(3).sample(history, min(REBUILDS, len(history)))
    durations = await _rebuild_times(cm, context_id, picks)
    gc.collect()
    gc.freeze()
    frozen = await _rebuild_times(cm, context_id, picks)
    gc.unfreeze()
    await cm.close()
    p99 = statistics.quantiles(durations, n=100)[-1] * 1000
    worst, worst_frozen = max(durations) * 1000, max(frozen) * 1000
    target, ok = ("<= 10 ms", worst_frozen <= 10) if backend == "PostgreSQL" else ("", None)
    row(f"{backend}: rebuild a version, median ms", median_ms(durations))
    row(f"{backend}: rebuild a version, p99 ms", p99)
    row(f"{backend}: rebuild a version, worst ms", worst)
    row(f"{backend}: worst ms, setup frozen out of the GC", worst_frozen, target=target, ok=ok)


def _sqlite_owner(db: sqlite3.Connection) -> tuple[str, str]:
    """The column by which a version names its context, and its value for the context whose
    id is parameter 1: the context's row since migration 9, its id before (compare.py runs
    this script on earlier releases too)."""
    columns = {row[1] for row in db.execute("PRAGMA table_info(versions)")}
    if "context_row" in columns:
        return "context_row", "(SELECT row_id FROM contexts WHERE context_id = ?1)"
    return "context_id", "?1"


async def _fill_history(url: str, cm: ContextManager, context_id: str) -> None:
    """Add HISTORY small versions in bulk (the listing, not the writing, is measured)."""
    if url.startswith("sqlite"):
        with sqlite3.connect(url.removeprefix("sqlite:///")) as db:
            column, owner = _sqlite_owner(db)
            db.execute(
                f"INSERT INTO versions (version_id, {column}, number, branch, parent_id, kind, "
                "payload, size_bytes, message_seq, view, turn_count, revision, author, message, "
                "tags, created_at, checksum) "
                f"SELECT lower(hex(randomblob(16))), {owner}, n + 1, 'main', NULL, "
                "'delta', x'00', 1, 0, '[]', 0, n, 'dm', '', "
                "CASE WHEN n % 1000 = 0 THEN '[\"milestone\"]' ELSE '[]' END, n, 'x' "
                "FROM (WITH RECURSIVE s(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM s "
                "WHERE n < ?2) SELECT n FROM s)",
                (context_id, HISTORY),
            )
        return
    import asyncpg

    conn = await asyncpg.connect(url)
    try:
        await conn.execute(
            "INSERT INTO versions (version_id, context_id, number, branch, parent_id, kind, "
            "payload, size_bytes, message_seq, view, turn_count, revision, author, message, "
            "tags, created_at, checksum) "
            "SELECT md5(n::text || $1), $1::uuid, n + 1, 'main', NULL, "
            "'delta', '\\x00', 1, 0, '[]', 0, n, 'dm', '', "
            "CASE WHEN n % 1000 = 0 THEN ARRAY['milestone'] ELSE ARRAY[]::text[] END, now(), 'x' "
            "FROM generate_series(1, $2) AS n",
            context_id,
            HISTORY,
        )
        await conn.execute("ANALYZE versions")
    finally:
        await conn.close()


async def history_listing(url: str, backend: str) -> None:
    async with ContextManager(database_url=url, max_versions=10 * HISTORY) as cm:
        context_id = await cm.create_context(Context(title="long history"), user_id="dm")
        await _fill_history(url, cm, context_id)
        pages = {
            "newest page": {},
            "a page in the middle": {"before": HISTORY // 2},
            "by tag": {"tag": "milestone"},
        }
        for label, options in pages.items():
            durations = []
            for _ in range(100):
                started = time.perf_counter()
                page = await cm.get_version_history(context_id, limit=50, **options)
                durations.append(time.perf_counter() - started)
            assert len(page) == 50 or label == "by tag"
            ms = median_ms(durations)
            row(f"{backend}: {label} of 50, median ms", ms, target="<= 5 ms", ok=ms <= 5)


def _turn(rng: random.Random, i: int) -> list[Message]:
    return [
        Message(role="user", content=f"Turn {i}: " + prose(rng, 40)),
        Message(role="assistant", content=prose(rng, 80)),
    ]


def _file_bytes(path: Path) -> int:
    with sqlite3.connect(path) as db:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return path.stat().st_size + sum(
        p.stat().st_size for p in path.parent.glob(path.name + "-*") if p.exists()
    )


def _text_bytes() -> int:
    """The conversation's text: what each message's parts say, in UTF-8."""
    rng = random.Random(11)
    return sum(len(m.text.encode()) for i in range(1, TURNS + 1) for m in _turn(rng, i))


_CONVERSATION_TABLES = ("contexts_conversation", "messages", "events", "versions", "branches")


async def _postgres_bytes(url: str) -> int:
    """The tables holding a conversation, with their indexes (and TOAST), as written."""
    import asyncpg

    conn = await asyncpg.connect(url)
    try:
        return int(
            await conn.fetchval(
                "SELECT sum(pg_total_relation_size(oid)) FROM pg_class "
                "WHERE relname = ANY($1::text[]) AND relkind = 'r'",
                list(_CONVERSATION_TABLES),
            )
        )
    finally:
        await conn.close()


async def loremaster_turns(url: str) -> tuple[list[float], int]:
    rng = random.Random(11)
    durations = []
    async with ContextManager(database_url=url, max_versions=10 * TURNS) as cm:
        context_id = await cm.create_context(ConversationContext(title="500 turns"), user_id="dm")
        for i in range(1, TURNS + 1):
            messages = _turn(rng, i)
            started = time.perf_counter()
            await cm.append_messages(context_id, messages, user_id="dm")  # + its version
            durations.append(time.perf_counter() - started)
        versions = len(await cm.get_version_history(context_id, limit=1000))
    return durations[-TAIL:], versions


class _TimedSaver(AsyncSqliteSaver):
    """LangGraph's SQLite checkpointer, adding up the time spent saving."""

    spent = 0.0

    async def aput(self, *args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return await super().aput(*args, **kwargs)
        finally:
            self.spent += time.perf_counter() - started

    async def aput_writes(self, *args: Any, **kwargs: Any) -> None:
        started = time.perf_counter()
        try:
            await super().aput_writes(*args, **kwargs)
        finally:
            self.spent += time.perf_counter() - started


async def langgraph_turns(path: Path) -> tuple[int, list[float]]:
    """A one-node `MessagesState` chat graph with the SQLite checkpointer, one invoke per
    turn; only the checkpointer's time is counted, not the graph's."""
    import aiosqlite
    from langchain_core.messages import AIMessage, HumanMessage
    from langgraph.graph import START, MessagesState, StateGraph

    rng = random.Random(11)
    turns = [_turn(rng, i) for i in range(1, TURNS + 1)]
    replies = iter(turn[1].text for turn in turns)

    def reply(state: MessagesState) -> dict[str, Any]:
        return {"messages": [AIMessage(content=next(replies))]}

    builder = StateGraph(MessagesState)
    builder.add_node("reply", reply)
    builder.add_edge(START, "reply")
    durations = []
    async with aiosqlite.connect(str(path)) as conn:
        saver = _TimedSaver(conn)
        graph = builder.compile(checkpointer=saver)
        config: Any = {"configurable": {"thread_id": "campaign"}}
        for turn in turns:
            before = saver.spent
            await graph.ainvoke({"messages": [HumanMessage(content=turn[0].text)]}, config)
            durations.append(saver.spent - before)
    return _file_bytes(path), durations[-TAIL:]


async def against_langgraph(tmp: Path) -> None:
    our_times, versions = await loremaster_turns(f"sqlite:///{tmp}/loremaster.db")
    ours = _file_bytes(tmp / "loremaster.db")
    theirs, their_times = await langgraph_turns(tmp / "langgraph.db")
    text = _text_bytes()
    print(f"\n{TURNS}-turn conversation, a user and an assistant message per turn, SQLite")
    print(f"({text:,} bytes of text)")
    row("figure", "loremaster", "LangGraph", "ratio")
    row("bytes on disk", ours, theirs, theirs / ours, target=">= 20x", ok=theirs / ours >= 20)
    row(
        "bytes on disk per byte of text",
        ours / text,
        theirs / text,
        theirs / ours,
        target="<= 4x",
        ok=ours / text <= 4,
    )
    ours_ms, theirs_ms = median_ms(our_times), median_ms(their_times)
    row(
        f"median write ms, turns {TURNS - TAIL + 1}-{TURNS}",
        ours_ms,
        theirs_ms,
        theirs_ms / ours_ms,
        target=">= 5x",
        ok=theirs_ms / ours_ms >= 5,
    )
    print(f"(loremaster kept {versions} versions: one per turn, plus the first)")
    async with postgres_database() as url:
        await loremaster_turns(url)
        stored = await _postgres_bytes(url)
    row("PostgreSQL: tables and indexes", stored)
    row(
        "PostgreSQL: bytes per byte of text",
        stored / text,
        target="<= 6x",
        ok=stored / text <= 6,
    )


async def main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        print(f"bench_versions{' (quick)' if QUICK else ''}")
        await strategies(tmp)
        print()
        async with postgres_database() as url:
            await rebuilds(url, "PostgreSQL")
        await rebuilds(f"sqlite:///{tmp}/rebuild.db", "SQLite")
        print(f"\nhistory of {HISTORY:,} versions")
        async with postgres_database() as url:
            await history_listing(url, "PostgreSQL")
        await history_listing(f"sqlite:///{tmp}/history.db", "SQLite")
        await against_langgraph(tmp)


if __name__ == "__main__":
    run(main)
