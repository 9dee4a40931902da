"""Idempotency keys through the manager (`cm.idempotency`), shared by every manager and
every process on one database: claimed once, replayed after, per user, for 24 hours."""

from __future__ import annotations

import asyncio
import multiprocessing
import sqlite3
from collections.abc import AsyncIterator
from concurrent.futures import ProcessPoolExecutor
from typing import Any

import asyncpg
import pytest

from loremaster import (
    ContextManager,
    IdempotencyInProgress,
    IdempotencyMismatch,
    StoredResponse,
    ValidationFailed,
)

SPAWN = multiprocessing.get_context("spawn")
CREATED = StoredResponse(201, b'{"id": 1}', {"content-type": "application/json", "etag": '"1"'})


@pytest.fixture
async def managers(db_url: str) -> AsyncIterator[tuple[ContextManager, ContextManager]]:
    async with (
        ContextManager(database_url=db_url) as first,
        ContextManager(database_url=db_url) as second,
    ):
        yield first, second


async def backdate(url: str, hours: float) -> None:
    """Make every key `hours` older, behind the library's back."""
    if url.startswith("sqlite:///"):
        with sqlite3.connect(url.removeprefix("sqlite:///")) as conn:
            shift = int(hours * 3600 * 1_000_000)
            conn.execute("UPDATE idempotency_keys SET created_at = created_at - ?", (shift,))
        return
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(
            "UPDATE idempotency_keys SET created_at = created_at - make_interval(hours => $1)",
            hours,
        )
    finally:
        await conn.close()


async def test_a_key_runs_once_and_then_replays_its_response(
    managers: tuple[ContextManager, ContextManager],
) -> None:
    first, second = managers
    assert await first.idempotency.claim("ana", "create-1", "POST /contexts abc") is None
    with pytest.raises(IdempotencyInProgress) as running:  # the first has not finished
        await second.idempotency.claim("ana", "create-1", "POST /contexts abc")
    assert running.value.key == "create-1"
    await first.idempotency.finish("ana", "create-1", CREATED)
    assert await second.idempotency.claim("ana", "create-1", "POST /contexts abc") == CREATED
    await second.idempotency.finish("ana", "create-1", StoredResponse(500, b"", {}))
    assert await first.idempotency.claim("ana", "create-1", "POST /contexts abc") == CREATED


async def test_a_key_used_for_another_request_is_a_mismatch(manager: ContextManager) -> None:
    keys = manager.idempotency
    assert await keys.claim("ana", "k", "one request") is None
    with pytest.raises(IdempotencyMismatch):
        await keys.claim("ana", "k", "another request")
    await keys.finish("ana", "k", CREATED)
    with pytest.raises(IdempotencyMismatch) as mismatch:
        await keys.claim("ana", "k", "another request")
    assert mismatch.value.key == "k"


async def test_keys_are_per_user(manager: ContextManager) -> None:
    keys = manager.idempotency
    assert await keys.claim("ana", "k", "ana's request") is None
    assert await keys.claim("bo", "k", "bo's request") is None
    await keys.finish("bo", "k", CREATED)
    with pytest.raises(IdempotencyInProgress):
        await keys.claim("ana", "k", "ana's request")


async def test_a_released_claim_lets_the_retry_run(manager: ContextManager) -> None:
    keys = manager.idempotency
    assert await keys.claim("ana", "k", "f") is None
    await keys.release("ana", "k")  # the request failed before writing
    assert await keys.claim("ana", "k", "f") is None
    await keys.finish("ana", "k", CREATED)
    await keys.release("ana", "k")  # too late: the answer stands
    assert await keys.claim("ana", "k", "f") == CREATED


async def test_a_key_expires_after_a_day_and_is_purged(
    manager: ContextManager, db_url: str
) -> None:
    keys = manager.idempotency
    for key in ("done", "abandoned", "recent"):
        assert await keys.claim("ana", key, "f") is None
    await keys.finish("ana", "done", CREATED)
    await backdate(db_url, 23)
    with pytest.raises(IdempotencyInProgress):  # a claim whose process died: held all day
        await keys.claim("ana", "abandoned", "f")
    assert await keys.claim("ana", "done", "f") == CREATED
    await backdate(db_url, 2)
    assert await keys.claim("ana", "abandoned", "another request") is None  # afresh
    assert await keys.claim("ana", "done", "another request") is None
    assert await keys.claim("ana", "recent2", "f") is None
    await backdate(db_url, 25)
    assert await keys.purge(older_than_seconds=30 * 3600) == 1  # "recent", 50 hours old
    assert (await manager.run_cleanup(dry_run=True)).idempotency_keys_purged == 3
    assert (await manager.run_cleanup()).idempotency_keys_purged == 3
    assert await keys.purge() == 0


async def test_twenty_requests_at_once_run_once(
    managers: tuple[ContextManager, ContextManager],
) -> None:
    async def claim(cm: ContextManager) -> str:
        try:
            return "owner" if await cm.idempotency.claim("ana", "race", "f") is None else "replay"
        except IdempotencyInProgress:
            return "in progress"

    outcomes = await asyncio.gather(*(claim(managers[n % 2]) for n in range(20)))
    assert sorted(outcomes) == ["in progress"] * 19 + ["owner"]


@pytest.mark.parametrize(
    ("user_id", "key", "path"),
    [
        (None, "k", "/user_id"),
        ("", "k", "/user_id"),
        ("ana", "", "/key"),
        ("ana", "x" * 256, "/key"),
        ("ana", "clé", "/key"),
        ("ana", "line\nbreak", "/key"),
        ("ana", 7, "/key"),
    ],
)
async def test_a_bad_user_or_key_is_refused(
    manager: ContextManager, user_id: Any, key: Any, path: str
) -> None:
    keys = manager.idempotency
    for call in (
        keys.claim(user_id, key, "f"),
        keys.finish(user_id, key, CREATED),
        keys.release(user_id, key),
    ):
        with pytest.raises(ValidationFailed) as refused:
            await call
        assert refused.value.issues[0].path == path
    assert await keys.claim("ana", "x" * 255, "f") is None  # the longest key, printable
    assert await keys.claim("ana", " !~", "f") is None


@pytest.mark.parametrize(
    ("response", "path"),
    [
        ({"status": 200}, "/response"),
        (StoredResponse(99, b"", {}), "/status"),
        (StoredResponse(True, b"", {}), "/status"),
        (StoredResponse(200, "text", {}), "/body"),  # type: ignore[arg-type]
        (StoredResponse(200, b"", [("etag", "1")]), "/headers"),  # type: ignore[arg-type]
        (StoredResponse(200, b"", {"etag": 1}), "/headers/etag"),  # type: ignore[dict-item]
        (StoredResponse(200, b"", {"etag": "a\x00b"}), "/headers/etag"),
    ],
)
async def test_a_bad_response_is_refused_and_the_claim_stays(
    manager: ContextManager, response: Any, path: str
) -> None:
    keys = manager.idempotency
    assert await keys.claim("ana", "k", "f") is None
    with pytest.raises(ValidationFailed) as refused:
        await keys.finish("ana", "k", response)
    assert refused.value.issues[0].path == path
    with pytest.raises(IdempotencyInProgress):
        await keys.claim("ana", "k", "f")


@pytest.mark.parametrize("age", [-1, True, float("nan"), float("inf"), "60"])
async def test_a_bad_purge_age_is_refused(manager: ContextManager, age: Any) -> None:
    with pytest.raises(ValidationFailed) as refused:
        await manager.idempotency.purge(age)
    assert refused.value.issues[0].path == "/older_than_seconds"


# -- separate processes --------------------------------------------------------------------


def _claim_in_a_process(database_url: str, key: str, finish: bool) -> str:
    """In a process of its own: claim `key` (and finish it, if told); what happened."""

    async def claim() -> str:
        async with ContextManager(database_url=database_url) as cm:
            try:
                found = await cm.idempotency.claim("ana", key, "f")
            except IdempotencyInProgress:
                return "in progress"
            if found is not None:
                return f"replay {found.status}"
            if finish:
                await cm.idempotency.finish("ana", key, CREATED)
            return "owner"

    return asyncio.run(claim())


async def test_processes_sharing_a_database_share_the_keys(db_url: str) -> None:
    loop = asyncio.get_running_loop()
    async with ContextManager(database_url=db_url):  # the schema, before the processes
        pass
    with ProcessPoolExecutor(max_workers=4, mp_context=SPAWN) as pool:

        def claim(key: str, finish: bool) -> asyncio.Future[str]:
            return loop.run_in_executor(pool, _claim_in_a_process, db_url, key, finish)

        assert await claim("warm-up", False) == "owner"  # the pool's processes start
        race = await asyncio.gather(*(claim("race", False) for _ in range(8)))
        assert sorted(race) == ["in progress"] * 7 + ["owner"]  # its owner died unfinished
        assert await claim("done", True) == "owner"
        assert await asyncio.gather(*(claim("done", False) for _ in range(4))) == ["replay 201"] * 4
