"""PostgreSQL only: the schema in the catalog, and surviving connection loss."""

from __future__ import annotations

import asyncio
import time

import asyncpg
import pytest

from loremaster import BackendUnavailable, ContextManager, ConversationContext


async def fetch(url: str, sql: str) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(url)
    try:
        return list(await conn.fetch(sql))
    finally:
        await conn.close()


async def test_contexts_are_partitioned_by_type_with_a_default(postgres_url: str) -> None:
    partitions = await fetch(
        postgres_url,
        "SELECT c.relname, pg_get_expr(c.relpartbound, c.oid) AS bound FROM pg_inherits i "
        "JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = 'contexts'::regclass "
        "ORDER BY 1",
    )
    assert {row["relname"]: row["bound"] for row in partitions} == {
        "contexts_collaborative": "FOR VALUES IN ('collaborative')",
        "contexts_conversation": "FOR VALUES IN ('conversation')",
        "contexts_default": "DEFAULT",
        "contexts_session": "FOR VALUES IN ('session')",
    }
    strategy = await fetch(
        postgres_url,
        "SELECT partstrat FROM pg_partitioned_table WHERE partrelid = 'contexts'::regclass",
    )
    assert strategy[0]["partstrat"] in ("l", b"l")  # LIST
    key = await fetch(
        postgres_url,
        "SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid "
        "AND a.attnum = ANY(i.indkey) WHERE i.indrelid = 'contexts'::regclass AND i.indisprimary",
    )
    assert {row["attname"] for row in key} == {"context_id", "context_type"}


async def test_indexes_and_the_statistics_view_exist(postgres_url: str) -> None:
    rows = await fetch(
        postgres_url,
        "SELECT indexname, indexdef FROM pg_indexes WHERE tablename IN "
        "('contexts', 'messages', 'events', 'context_statistics')",
    )
    indexes = {row["indexname"]: row["indexdef"] for row in rows}
    assert "USING gin (data)" in indexes["idx_contexts_data"]
    assert "USING gin (metadata)" in indexes["idx_contexts_metadata"]
    text_search = indexes["idx_contexts_text_search"]
    assert "to_tsvector('english'" in text_search
    assert "title" in text_search
    assert "description" in text_search
    assert "to_tsvector('english'::regconfig, search_text)" in indexes["idx_messages_text_search"]
    assert "(context_type, state)" in indexes["idx_contexts_type_state"]
    assert "(owner_id)" in indexes["idx_contexts_owner"]
    assert "(context_id, branch, seq)" in indexes["messages_pkey"]
    assert "(context_id, revision)" in indexes["events_pkey"]
    views = await fetch(postgres_url, "SELECT matviewname FROM pg_matviews")
    assert [row["matviewname"] for row in views] == ["context_statistics"]


async def test_a_new_context_type_lands_in_the_default_partition(postgres_url: str) -> None:
    conn = await asyncpg.connect(postgres_url)
    try:
        await conn.execute(
            "INSERT INTO contexts (context_id, context_type, title, data, metadata, extra, "
            "state, revision, doc_bytes, created_at, last_modified, last_accessed) VALUES "
            "(gen_random_uuid(), 'quest_log', 't', '{}', '{}', '{}', 'active', 1, 0, now(), "
            "now(), now())"
        )
        assert await conn.fetchval("SELECT count(*) FROM contexts_default") == 1
    finally:
        await conn.close()


async def test_writes_survive_killed_connections(postgres_url: str) -> None:
    async with ContextManager(database_url=postgres_url, sync_timeout=30) as cm:
        context_id = await cm.create_context(ConversationContext(title="under fire"))
        stop = asyncio.Event()

        async def kill_connections() -> int:
            admin = await asyncpg.connect(postgres_url)
            killed = 0
            try:
                while not stop.is_set():
                    killed += await admin.fetchval(
                        "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM "
                        "pg_stat_activity WHERE datname = current_database() "
                        "AND pid <> pg_backend_pid()) AS k"
                    )
                    await asyncio.sleep(0.05)
            finally:
                await admin.close()
            return killed

        killer = asyncio.create_task(kill_connections())
        acknowledged: list[int] = []
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline:
            n = len(acknowledged)
            await cm.update_context(context_id, {"data": {f"k{n}": n}})
            await cm.append_messages(context_id, {"role": "user", "content": f"m{n}"})
            acknowledged.append(n)
        stop.set()
        killed = await killer

        assert killed >= 10, "the test did not disturb the writer"
        context = await cm.get_context(context_id)
        assert context.data == {f"k{n}": n for n in acknowledged}
        assert context.revision == 1 + 2 * len(acknowledged)
        assert [m.text for m in context.messages] == [f"m{n}" for n in acknowledged]  # type: ignore[attr-defined]
        events = await cm.get_events(context_id)
        assert [e.revision for e in events] == list(range(1, context.revision + 1))
        # The same manager goes on working.
        await cm.update_context(context_id, {"title": "survived"})
        assert (await cm.health_check())["status"] == "ok"


async def test_unreachable_database_is_backend_unavailable_after_the_deadline() -> None:
    manager = ContextManager(database_url="postgresql://postgres@127.0.0.1:9/none", sync_timeout=1)
    started = time.monotonic()
    with pytest.raises(BackendUnavailable, match="unavailable for 1 s"):
        await manager.initialize()
    assert 0.9 <= time.monotonic() - started < 5


async def test_pool_figures_in_health(postgres_url: str) -> None:
    async with ContextManager(database_url=postgres_url, pool_size=3, pool_max_overflow=2) as cm:
        health = await cm.health_check()
        storage = health["storage"]
        assert storage["backend"] == "postgresql"
        assert storage["server_version"]
        assert storage["database_bytes"] > 0
        assert storage["in_recovery"] is False
        assert storage["pool"]["max"] == 5
        assert 0 <= storage["pool"]["utilization"] <= 1
