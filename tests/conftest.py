from __future__ import annotations

import asyncio
import os
import sqlite3
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest
from hypothesis import HealthCheck, settings

from loremaster import ContextManager

# Timing is noise on a shared 2-core machine: judge properties, not how fast examples come.
settings.register_profile("loremaster", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("loremaster")

POSTGRES_URL = os.environ.get(
    "LOREMASTER_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test"
)
IN_CI = os.environ.get("CI", "").lower() == "true"
TABLES = ("contexts", "messages", "events")


def with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{name}"))


async def _admin(statement: str) -> None:
    conn = await asyncpg.connect(POSTGRES_URL, timeout=5)
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


@pytest.fixture(scope="session")
def postgres_template() -> Iterator[str]:
    """A migrated database that each PostgreSQL test copies (CREATE DATABASE ... TEMPLATE).

    Unreachable PostgreSQL skips the PostgreSQL tests, except in CI, where it fails them.
    """
    name = f"lm_template_{os.getpid()}"
    try:
        asyncio.run(_admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        asyncio.run(_admin(f"CREATE DATABASE {name}"))
    except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
        if IN_CI:
            pytest.fail(f"PostgreSQL is required in CI and unreachable at {POSTGRES_URL}: {exc}")
        pytest.skip(f"PostgreSQL unreachable at {POSTGRES_URL}: {exc}")

    async def migrate() -> None:
        manager = ContextManager(database_url=with_database(POSTGRES_URL, name))
        await manager.initialize()
        await manager.close()

    asyncio.run(migrate())
    yield name
    asyncio.run(_admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))


def _scratch_database(template: str | None) -> Iterator[str]:
    name = f"lm_{uuid.uuid4().hex[:16]}"
    copy = f" TEMPLATE {template}" if template else ""
    asyncio.run(_admin(f"CREATE DATABASE {name}{copy}"))
    yield with_database(POSTGRES_URL, name)
    asyncio.run(_admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))


@pytest.fixture
def postgres_url(postgres_template: str) -> Iterator[str]:
    """A fresh, migrated PostgreSQL database for one test."""
    yield from _scratch_database(postgres_template)


@pytest.fixture
def empty_postgres_url(postgres_template: str) -> Iterator[str]:
    """A fresh PostgreSQL database with no schema at all (the template proves the server
    is reachable, or skips)."""
    yield from _scratch_database(None)


def _per_backend(request: pytest.FixtureRequest, postgres_fixture: str) -> str:
    fixture = "sqlite_url" if request.param == "sqlite" else postgres_fixture
    url: str = request.getfixturevalue(fixture)
    return url


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_db_url(request: pytest.FixtureRequest) -> str:
    """A database with no schema yet, once per backend."""
    return _per_backend(request, "empty_postgres_url")


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "loremaster.db"


@pytest.fixture
def sqlite_url(db_path: Path) -> str:
    return f"sqlite:///{db_path}"


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest) -> str:
    """The contract suite runs once per storage backend."""
    return _per_backend(request, "postgres_url")


@pytest.fixture
async def manager(db_url: str) -> AsyncIterator[ContextManager]:
    async with ContextManager(database_url=db_url) as cm:
        yield cm


async def table_counts(url: str) -> dict[str, int]:
    """Rows in each table, read behind the library's back."""
    if url.startswith("sqlite:///"):
        with sqlite3.connect(url.removeprefix("sqlite:///")) as conn:
            return {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in TABLES}
    conn = await asyncpg.connect(url)
    try:
        return {t: await conn.fetchval(f"SELECT count(*) FROM {t}") for t in TABLES}
    finally:
        await conn.close()
