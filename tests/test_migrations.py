"""Schema migrations on every backend: in order, once, concurrently safe, never lossy."""

from __future__ import annotations

import asyncio

from loremaster import ContextManager, ConversationContext
from loremaster.cli import main
from loremaster.storage import open_storage
from loremaster.storage._migrations import available_migrations

LATEST = max(m.version for m in available_migrations("sqlite"))


def test_both_backends_have_the_same_numbered_migrations() -> None:
    sqlite = [(m.version, m.name) for m in available_migrations("sqlite")]
    postgres = [(m.version, m.name) for m in available_migrations("postgres")]
    assert sqlite == postgres
    assert [version for version, _ in sqlite] == list(range(1, len(sqlite) + 1))


async def test_initialize_applies_all_in_order(empty_db_url: str) -> None:
    cm = ContextManager(database_url=empty_db_url)
    await cm.initialize(migrate=False)
    before = await cm.migration_status()
    assert before.applied == []
    assert [v for v, _ in before.pending] == list(range(1, LATEST + 1))
    await cm.close()
    async with ContextManager(database_url=empty_db_url) as cm:
        after = await cm.migration_status()
        assert [v for v, _, _ in after.applied] == list(range(1, LATEST + 1))
        assert after.pending == []


async def test_managers_starting_at_once_migrate_once(empty_db_url: str) -> None:
    managers = [ContextManager(database_url=empty_db_url) for _ in range(4)]
    await asyncio.gather(*(m.initialize() for m in managers))
    statuses = [await m.migration_status() for m in managers]
    for status in statuses:
        assert [v for v, _, _ in status.applied] == list(range(1, LATEST + 1))
    context_id = await managers[0].create_context(ConversationContext(title="t"))
    assert (await managers[3].get_context(context_id)).title == "t"
    for manager in managers:
        await manager.close()


async def test_upgrading_keeps_the_data(empty_db_url: str) -> None:
    storage = open_storage(empty_db_url, deadline=10)
    await storage.open()
    first = available_migrations("postgres" if empty_db_url.startswith("postgres") else "sqlite")[0]
    assert first.version == 1
    # Bring the database to version 1 only, the way an older release left it.
    if storage.backend == "sqlite":
        from loremaster.storage.sqlite import _statements

        await storage._writer.call(  # type: ignore[attr-defined]
            lambda conn: [conn.execute(s) for s in _statements(first.script)]
        )
        await storage._writer.call(  # type: ignore[attr-defined]
            lambda conn: [
                conn.execute(
                    "CREATE TABLE schema_version (version INTEGER PRIMARY KEY, name TEXT NOT NULL, "
                    "applied_at INTEGER NOT NULL)"
                ),
                conn.execute("INSERT INTO schema_version VALUES (1, 'initial', 0)"),
            ]
        )
    else:
        async with storage.pool.acquire() as conn:  # type: ignore[attr-defined]
            await conn.execute(first.script)
            await conn.execute(
                "CREATE TABLE schema_version (version INTEGER PRIMARY KEY, name TEXT NOT NULL, "
                "applied_at TIMESTAMPTZ NOT NULL DEFAULT now()); "
                "INSERT INTO schema_version (version, name) VALUES (1, 'initial')"
            )
    await storage.close()

    old = ContextManager(database_url=empty_db_url)
    await old.initialize(migrate=False)
    assert [v for v, _ in (await old.migration_status()).pending] == list(range(2, LATEST + 1))
    context_id = await old.create_context(
        ConversationContext(
            title="from the old schema", messages=[{"role": "user", "content": "hi"}]
        )
    )
    await old.close()

    async with ContextManager(database_url=empty_db_url) as new:
        assert (await new.migration_status()).version == LATEST
        context = await new.get_context(context_id)
        assert context.title == "from the old schema"
        assert [m.text for m in context.messages] == ["hi"]  # type: ignore[attr-defined]
        assert (await new.refresh_statistics())["contexts"] == 1


def test_db_status_and_migrate_commands(empty_db_url: str, capsys: object) -> None:
    assert main(["db", "status", "--json", "--database-url", empty_db_url]) == 0
    assert main(["db", "migrate", "--database-url", empty_db_url]) == 0
    assert main(["db", "status", "--database-url", empty_db_url]) == 0
