"""The `Storage` contract, driven directly (no manager), once per backend."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import sqlite3
import time
import uuid
from collections.abc import AsyncIterator
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

from loremaster.errors import RevisionConflict
from loremaster.storage import (
    ContextRecord,
    EventRecord,
    Mutation,
    NewContext,
    Storage,
    open_storage,
    sqlite_path,
)
from loremaster.storage._postgres_sql import write_mutations
from loremaster.storage._sqlite_sql import write_mutation
from test_lost_commit import CommitCutter


def now() -> int:
    return time.time_ns() // 1000


def new_context(title: str = "contract") -> NewContext:
    context_id = str(uuid.uuid4())
    record = ContextRecord(
        context_id=context_id,
        context_type="generic",
        title=title,
        description="",
        data={},
        metadata={},
        extra={},
        state="active",
        owner_id=None,
        collaborators=[],
        permissions={},
        revision=1,
        message_count=0,
        turn_count=0,
        doc_bytes=2,
        messages_bytes=0,
        created_at=now(),
        last_modified=now(),
        last_accessed=now(),
    )
    return NewContext(record, [], EventRecord(context_id, 1, "create", [], None, now()))


def retitled(current: ContextRecord, title: str) -> Mutation:
    """The next revision of `current`, with another title."""
    revision = current.revision + 1
    record = dataclasses.replace(current, title=title, revision=revision, last_modified=now())
    change = [{"op": "replace", "path": "/title", "value": title}]
    return Mutation(
        record, EventRecord(current.context_id, revision, "update", change, None, now())
    )


@pytest.fixture
async def storage(db_url: str) -> AsyncIterator[Storage]:
    storage = open_storage(db_url, deadline=10)
    await storage.open()
    await storage.migrate()
    yield storage
    await storage.close()


async def stored(storage: Storage, new: NewContext) -> ContextRecord:
    await storage.insert_contexts([new])
    record = await storage.load_context(new.record.context_id)
    assert isinstance(record, ContextRecord)
    return record


async def test_a_live_lease_is_refused_until_released(storage: Storage) -> None:
    # Refused to its own holder too: a manager's runs share one holder and must not overlap.
    assert await storage.acquire_lease("retention", "first", ttl=60, every=0)
    assert not await storage.acquire_lease("retention", "second", ttl=60, every=0)
    assert not await storage.acquire_lease("retention", "first", ttl=60, every=0)
    await storage.release_lease("retention", "first", finished=False)
    assert await storage.acquire_lease("retention", "second", ttl=60, every=0)


async def test_a_lease_whose_commit_answer_was_lost_is_still_taken(postgres_url: str) -> None:
    parts = urlsplit(postgres_url)
    cutter = CommitCutter(parts.hostname or "127.0.0.1", parts.port or 5432)
    port = await cutter.start()
    storage = open_storage(
        urlunsplit(parts._replace(netloc=f"{parts.username}@127.0.0.1:{port}")), deadline=20
    )
    await storage.open()
    try:
        cutter.armed = True
        assert await storage.acquire_lease("retention", "first", ttl=60, every=0)
        assert cutter.cuts == 1, "the proxy did not cut the commit"
        assert not await storage.acquire_lease("retention", "second", ttl=60, every=0)
    finally:
        await storage.close()
        await cutter.close()


# -- idempotency keys ----------------------------------------------------------------------


async def test_a_key_is_claimed_once_then_answers_with_its_response(storage: Storage) -> None:
    first = await storage.claim_idempotency_key("ana", "k", "f1", ttl=60)
    assert first.claimed
    pending = await storage.claim_idempotency_key("ana", "k", "f2", ttl=60)
    assert (pending.claimed, pending.fingerprint, pending.status) == (False, "f1", None)
    headers = {"content-type": "application/json", "etag": '"3"'}
    await storage.finish_idempotency_key("ana", "k", status=201, body=b"\x00{}", headers=headers)
    await storage.finish_idempotency_key("ana", "k", status=500, body=b"no", headers={})
    await storage.release_idempotency_key("ana", "k")  # a finished key keeps its answer
    done = await storage.claim_idempotency_key("ana", "k", "f1", ttl=60)
    assert (done.claimed, done.status, done.body, done.headers) == (False, 201, b"\x00{}", headers)
    assert (await storage.claim_idempotency_key("bo", "k", "f1", ttl=60)).claimed  # per user


async def test_a_released_or_expired_claim_is_claimed_afresh(storage: Storage) -> None:
    assert (await storage.claim_idempotency_key("ana", "k", "f1", ttl=60)).claimed
    await storage.release_idempotency_key("ana", "k")
    assert (await storage.claim_idempotency_key("ana", "k", "f2", ttl=60)).claimed
    await storage.finish_idempotency_key("ana", "k", status=200, body=b"", headers={})
    await asyncio.sleep(0.01)
    fresh = await storage.claim_idempotency_key("ana", "k", "f3", ttl=0.005)
    assert (fresh.claimed, fresh.fingerprint, fresh.status) == (True, "f3", None)


async def test_old_keys_are_purged_and_counted(storage: Storage) -> None:
    for key in ("a", "b"):
        await storage.claim_idempotency_key("ana", key, "f", ttl=60)
    await storage.finish_idempotency_key("ana", "a", status=200, body=b"", headers={})
    assert await storage.purge_idempotency_keys(3600, dry_run=False) == 0
    await asyncio.sleep(0.01)
    assert await storage.purge_idempotency_keys(0, dry_run=True) == 2
    assert await storage.purge_idempotency_keys(0, dry_run=False) == 2
    assert (await storage.claim_idempotency_key("ana", "a", "g", ttl=60)).claimed


async def test_of_twenty_claims_at_once_exactly_one_owns_the_key(db_url: str) -> None:
    storages = [open_storage(db_url, deadline=10) for _ in range(4)]
    for storage in storages:
        await storage.open()
    await storages[0].migrate()
    try:
        claims = await asyncio.gather(
            *(
                storages[n % 4].claim_idempotency_key("ana", "race", f"f{n}", ttl=60)
                for n in range(20)
            )
        )
    finally:
        for storage in storages:
            await storage.close()
    [owner] = [claim for claim in claims if claim.claimed]
    assert {claim.fingerprint for claim in claims} == {owner.fingerprint}


async def test_a_claim_whose_commit_answer_was_lost_still_owns_the_key(postgres_url: str) -> None:
    parts = urlsplit(postgres_url)
    cutter = CommitCutter(parts.hostname or "127.0.0.1", parts.port or 5432)
    port = await cutter.start()
    storage = open_storage(
        urlunsplit(parts._replace(netloc=f"{parts.username}@127.0.0.1:{port}")), deadline=20
    )
    await storage.open()
    try:
        cutter.armed = True
        assert (await storage.claim_idempotency_key("ana", "k", "f", ttl=60)).claimed
        assert cutter.cuts == 1, "the proxy did not cut the commit"
        assert not (await storage.claim_idempotency_key("ana", "k", "f", ttl=60)).claimed
    finally:
        await storage.close()
        await cutter.close()


class Boom(Exception):
    """Not one of loremaster's errors."""


async def test_any_exception_of_a_plan_rolls_back_and_is_raised_unchanged(
    storage: Storage, caplog: pytest.LogCaptureFixture, recwarn: pytest.WarningsRecorder
) -> None:
    record = await stored(storage, new_context("before"))
    boom = Boom("the plan failed")

    def plan(current: ContextRecord) -> Mutation:
        raise boom

    with caplog.at_level(logging.WARNING, logger="asyncpg"), caplog.at_level(logging.WARNING):
        with pytest.raises(Boom) as raised:
            await storage.modify_contexts({record.context_id: plan})
        assert raised.value is boom
        unchanged = await storage.load_context(record.context_id)
        assert isinstance(unchanged, ContextRecord)
        assert (unchanged.revision, unchanged.title) == (1, "before")
        after = await storage.modify_context(
            record.context_id, lambda current: retitled(current, "after")
        )
    assert [r.getMessage() for r in caplog.records if r.name in ("asyncpg", "asyncio")] == []
    assert [str(w.message) for w in recwarn] == []
    assert (after.revision, after.title) == (2, "after")
    events = await storage.load_events(record.context_id, since_revision=0, limit=None)
    assert [event.revision for event in events] == [1, 2]


async def test_a_plan_returning_nothing_writes_nothing(storage: Storage) -> None:
    record = await stored(storage, new_context())
    unchanged = await storage.modify_context(record.context_id, lambda current: None)
    assert unchanged == dataclasses.replace(record, read_at=unchanged.read_at)
    events = await storage.load_events(record.context_id, since_revision=0, limit=None)
    assert [event.op for event in events] == ["create"]


# The revision guard: a row write planned on a stale row matches nothing and must raise,
# never report success. Inside a write transaction the row is locked, so the guard is driven
# directly, on a real connection, with a row whose revision is not the stored one.


def stale(record: ContextRecord) -> ContextRecord:
    return dataclasses.replace(record, revision=record.revision + 4)


async def test_a_sqlite_row_write_planned_on_a_stale_row_raises(sqlite_url: str) -> None:
    storage = open_storage(sqlite_url, deadline=10)
    await storage.open()
    await storage.migrate()
    record = await stored(storage, new_context())
    await storage.close()
    with contextlib.closing(sqlite3.connect(sqlite_path(sqlite_url), isolation_level=None)) as conn:
        for document_changed in (True, False):
            mutation = dataclasses.replace(
                retitled(stale(record), "lost"), document_changed=document_changed
            )
            conn.execute("BEGIN IMMEDIATE")
            with pytest.raises(RevisionConflict) as raised:
                write_mutation(conn, stale(record), mutation)
            conn.execute("ROLLBACK")
            assert (raised.value.expected_revision, raised.value.actual_revision) == (5, 1)


async def test_a_postgres_row_write_planned_on_a_stale_row_raises(postgres_url: str) -> None:
    storage = open_storage(postgres_url, deadline=10)
    await storage.open()
    fresh, old = [await stored(storage, new_context()) for _ in range(2)]
    await storage.close()
    conn = await asyncpg.connect(postgres_url)
    try:
        # One write runs alone (its status tells), several are pipelined (looked up after).
        for writes in (
            [(stale(old), retitled(stale(old), "lost"))],
            [(fresh, retitled(fresh, "kept")), (stale(old), retitled(stale(old), "lost"))],
        ):
            transaction = conn.transaction()
            await transaction.start()
            with pytest.raises(RevisionConflict) as raised:
                await write_mutations(conn, writes, uuid.uuid4())  # type: ignore[arg-type]
            await transaction.rollback()
            assert raised.value.context_id == old.context_id
            assert (raised.value.expected_revision, raised.value.actual_revision) == (5, 1)
    finally:
        await conn.close()
