"""Retention and maintenance, on every backend."""

from __future__ import annotations

import asyncio

from loremaster import Context, ContextManager, ContextState, ConversationContext

from conftest import table_counts

TINY = 1e-6  # days: under a tenth of a second


async def test_idle_contexts_are_archived_as_a_change(db_url: str) -> None:
    async with ContextManager(database_url=db_url, auto_archive_days=TINY) as cm:
        idle = await cm.create_context(Context(title="forgotten"))
        await asyncio.sleep(0.2)
        fresh = await cm.create_context(Context(title="in use"))

        preview = await cm.run_cleanup(dry_run=True)
        assert preview.archived == [idle]
        assert (await cm.get_context(idle, include_messages=False)).state is ContextState.ACTIVE

        report = await cm.run_cleanup()
        assert report.archived == [idle]
        archived = await cm.get_context(idle)
        assert archived.state is ContextState.ARCHIVED
        assert archived.revision == 2
        events = await cm.get_events(idle)
        assert [(e.op, e.user_id) for e in events] == [("create", None), ("archive", None)]
        assert (await cm.get_context(fresh)).state is ContextState.ACTIVE
        assert (await cm.run_cleanup()).archived == []


async def test_soft_deleted_contexts_are_purged_after_the_grace_period(db_url: str) -> None:
    async with ContextManager(database_url=db_url, deleted_retention_days=TINY) as cm:
        gone = await cm.create_context(
            ConversationContext(title="old", messages=[{"role": "user", "content": "x"}])
        )
        kept = await cm.create_context(Context(title="kept"))
        await cm.delete_context(gone)
        await asyncio.sleep(0.2)
        recent = await cm.create_context(Context(title="recently deleted"))
        await cm.delete_context(recent)

        assert (await cm.run_cleanup(dry_run=True)).purged == [gone]
        assert (await table_counts(db_url))["messages"] == 1
        report = await cm.run_cleanup()
        assert report.purged == [gone]
        assert await table_counts(db_url) == {"contexts": 2, "messages": 0, "events": 3}
        assert (await cm.get_context(kept)).title == "kept"
        assert (await cm.get_context(recent, include_deleted=True)).state is ContextState.DELETED


async def test_old_events_are_trimmed_but_each_context_keeps_its_latest(db_url: str) -> None:
    async with ContextManager(database_url=db_url, event_retention_days=TINY) as cm:
        busy = await cm.create_context(Context(title="busy"))
        for n in range(4):
            await cm.update_context(busy, {"data": {"n": n}})
        quiet = await cm.create_context(Context(title="quiet"))
        await asyncio.sleep(0.2)
        await cm.update_context(busy, {"data": {"n": 99}})

        assert (await cm.run_cleanup(dry_run=True)).events_trimmed == 5
        assert (await cm.run_cleanup()).events_trimmed == 5
        assert [e.revision for e in await cm.get_events(busy)] == [6]
        assert [e.revision for e in await cm.get_events(quiet)] == [1]
        assert (await cm.get_context(busy)).data == {"n": 99}


async def test_maintenance_runs_once_per_interval_across_managers(db_url: str) -> None:
    settings = {"cleanup_interval": 1.0, "statistics_refresh_seconds": 3600}
    async with (
        ContextManager(database_url=db_url, **settings) as a,
        ContextManager(database_url=db_url, **settings) as b,
    ):
        await a.create_context(Context(title="t"))
        ran = await asyncio.gather(*(m.run_due_maintenance() for m in (a, b, a, b)))
        assert sorted(job for jobs in ran for job in jobs) == ["retention", "statistics"]
        assert await a.run_due_maintenance() == []
        assert await b.run_due_maintenance() == []


async def test_the_background_task_refreshes_statistics(db_url: str) -> None:
    async with ContextManager(
        database_url=db_url, maintenance_poll_seconds=0.05, statistics_refresh_seconds=0.05
    ) as cm:
        await cm.create_context(Context(title="counted"))
        for _ in range(100):
            if (await cm.get_performance_stats())["storage"]["contexts"] == 1:
                break
            await asyncio.sleep(0.05)
        assert (await cm.get_performance_stats())["storage"]["contexts"] == 1
