"""Schema migrations on every backend: in order, once, concurrently safe, never lossy."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest

from loremaster import ContextManager, ConversationContext
from loremaster.cli import main
from loremaster.storage import open_storage
from loremaster.storage._schema import available_migrations

VERSIONS = [m.version for m in available_migrations("sqlite")]
LATEST = VERSIONS[-1]


def test_both_backends_have_the_same_numbered_migrations() -> None:
    sqlite = [(m.version, m.name) for m in available_migrations("sqlite")]
    postgres = [(m.version, m.name) for m in available_migrations("postgres")]
    assert sqlite == postgres
    # Increasing from 1; a number may be left out while another branch holds it.
    assert sorted(set(VERSIONS)) == VERSIONS
    assert VERSIONS[0] == 1


async def test_initialize_applies_all_in_order(empty_db_url: str) -> None:
    cm = ContextManager(database_url=empty_db_url)
    await cm.initialize(migrate=False)
    before = await cm.migration_status()
    assert before.applied == []
    assert [v for v, _ in before.pending] == VERSIONS
    await cm.close()
    async with ContextManager(database_url=empty_db_url) as cm:
        after = await cm.migration_status()
        assert [v for v, _, _ in after.applied] == VERSIONS
        assert after.pending == []


async def test_managers_starting_at_once_migrate_once(empty_db_url: str) -> None:
    managers = [ContextManager(database_url=empty_db_url) for _ in range(4)]
    await asyncio.gather(*(m.initialize() for m in managers))
    statuses = [await m.migration_status() for m in managers]
    for status in statuses:
        assert [v for v, _, _ in status.applied] == VERSIONS
    context_id = await managers[0].create_context(ConversationContext(title="t"))
    assert (await managers[3].get_context(context_id)).title == "t"
    for manager in managers:
        await manager.close()


OLD_CONTEXT = "6f9619ff-8b86-d011-b42d-00c04fc964ff"
OLD_MESSAGE = '{"id": "m1", "role": "user", "parts": [{"kind": "text", "text": "hi"}]}'


async def _bring_to_version(url: str, version: int) -> None:
    """Apply migrations 1..version only and write rows the way that release did."""
    backend = "postgres" if url.startswith("postgres") else "sqlite"
    old = [m for m in available_migrations(backend) if m.version <= version]
    storage = open_storage(url, deadline=10)
    await storage.open()
    if backend == "sqlite":
        from loremaster.storage.sqlite import _statements

        def apply(conn: Any) -> None:
            conn.execute(
                "CREATE TABLE schema_version (version INTEGER PRIMARY KEY, "
                "name TEXT NOT NULL, applied_at INTEGER NOT NULL)"
            )
            for migration in old:
                for statement in _statements(migration.script):
                    conn.execute(statement)
                conn.execute(
                    "INSERT INTO schema_version VALUES (?, ?, 0)",
                    (migration.version, migration.name),
                )
            conn.execute(
                "INSERT INTO contexts (context_id, context_type, title, data, metadata, extra, "
                "state, collaborators, permissions, revision, message_count, turn_count, "
                "doc_bytes, created_at, last_modified, last_accessed) VALUES (?, "
                "'conversation', 'from the old schema', '{}', '{}', '{}', 'active', '[]', '{}', "
                "2, 1, 1, 10, 0, 0, 0)",
                (OLD_CONTEXT,),
            )
            conn.execute(
                "INSERT INTO messages (context_id, branch, seq, message_id, role, body, "
                "search_text, created_at) VALUES (?, 'main', 1, 'm1', 'user', ?, 'hi', 0)",
                (OLD_CONTEXT, OLD_MESSAGE),
            )

        await storage._writer.call(apply)  # type: ignore[attr-defined]
    else:
        async with storage.pool.acquire() as conn:  # type: ignore[attr-defined]
            await conn.execute(
                "CREATE TABLE schema_version (version INTEGER PRIMARY KEY, name TEXT NOT NULL, "
                "applied_at TIMESTAMPTZ NOT NULL DEFAULT now())"
            )
            for migration in old:
                await conn.execute(migration.script)
                await conn.execute(
                    "INSERT INTO schema_version (version, name) VALUES ($1, $2)",
                    migration.version,
                    migration.name,
                )
            await conn.execute(
                "INSERT INTO contexts (context_id, context_type, title, data, metadata, extra, "
                "state, revision, message_count, turn_count, doc_bytes, created_at, "
                "last_modified, last_accessed) VALUES ($1, 'conversation', "
                "'from the old schema', '{}', '{}', '{}', 'active', 2, 1, 1, 10, now(), now(), "
                "now())",
                uuid.UUID(OLD_CONTEXT),
            )
            await conn.execute(
                "INSERT INTO messages (context_id, branch, seq, message_id, role, body, "
                "search_text, created_at) VALUES ($1, 'main', 1, 'm1', 'user', $2, 'hi', now())",
                uuid.UUID(OLD_CONTEXT),
                OLD_MESSAGE,
            )
    await storage.close()


@pytest.mark.parametrize("version", VERSIONS[:-1])
async def test_upgrading_keeps_the_data(empty_db_url: str, version: int) -> None:
    await _bring_to_version(empty_db_url, version)
    old = ContextManager(database_url=empty_db_url)
    await old.initialize(migrate=False)
    pending = [v for v, _ in (await old.migration_status()).pending]
    assert pending == [v for v in VERSIONS if v > version]
    await old.close()

    async with ContextManager(database_url=empty_db_url) as new:
        assert (await new.migration_status()).version == LATEST
        context = await new.get_context(OLD_CONTEXT)
        assert context.title == "from the old schema"
        assert [m.text for m in context.messages] == ["hi"]  # type: ignore[attr-defined]
        await new.append_messages(OLD_CONTEXT, {"role": "assistant", "content": "hello again"})
        assert (await new.get_context(OLD_CONTEXT)).message_count == 2  # type: ignore[attr-defined]


def test_db_status_and_migrate_commands(empty_db_url: str, capsys: object) -> None:
    # `db status` only reads: a SQLite file that is not there yet is an error, not made.
    missing = 1 if empty_db_url.startswith("sqlite") else 0
    assert main(["db", "status", "--json", "--database-url", empty_db_url]) == missing
    assert main(["db", "migrate", "--database-url", empty_db_url]) == 0
    assert main(["db", "status", "--database-url", empty_db_url]) == 0
