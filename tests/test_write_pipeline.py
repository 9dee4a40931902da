"""What every committed write owes the rest of the system, whatever route committed it:
retention, hard deletes, unannounced updates, session validation, merges and the errors
of writes that give up. Checked through the public API only, on both backends, with
Redis where caches in other processes are concerned.

With Redis, a manager trusts a row it cached for 5 seconds, because every change is
announced and drops it; so a change that is not announced stays invisible to other
processes for up to 5 seconds. "At once" below is well inside that window: only an
announcement (or a read that does not trust a stale row) can meet it.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

import asyncpg
import pytest

from loremaster import (
    CollaborativeContext,
    Context,
    ContextEvent,
    ContextManager,
    ContextNotFound,
    ContextState,
    ConversationContext,
    PermissionDenied,
    RevisionConflict,
    SessionContext,
    ValidationFailed,
)
from loremaster.sync import EventStream

if TYPE_CHECKING:
    from _redis import PrivateRedis

pytest_plugins = ["_redis"]

T = TypeVar("T")

TINY = 1e-6  # days: under a tenth of a second
AT_ONCE = 1.0  # seconds: far less than the 5 s a trusted cache serves a row unchecked


@pytest.fixture
def own_redis_url(private_redis: PrivateRedis) -> str:
    """A Redis server of the test's own. On a shared one, other test runs cut every
    manager's bus connections now and then (the lost-connection tests): a manager that
    lost its connection stops trusting its cache and reads storage, which would hide the
    stale rows these tests look for."""
    return private_redis.url


async def _soon(check: Callable[[], Awaitable[bool]], within: float = AT_ONCE) -> bool:
    """Whether `check` comes true within `within` seconds (polled)."""
    loop = asyncio.get_running_loop()
    until = loop.time() + within
    while not await check():
        if loop.time() >= until:
            return False
        await asyncio.sleep(0.02)
    return True


def _count(stats: dict[str, Any], operation: str) -> int:
    """How many calls of `operation` the performance stats counted."""
    count: int = stats["operations"].get(operation, {}).get("count", 0)
    return count


async def _operations(cm: ContextManager, operation: str) -> int:
    return _count(await cm.get_performance_stats(), operation)


@contextlib.asynccontextmanager
async def _two_processes(
    db_url: str, redis_url: str, **writer_settings: Any
) -> AsyncIterator[tuple[ContextManager, ContextManager]]:
    """A writer and a reader, as two server processes would be: one database, one Redis."""
    async with (
        ContextManager(database_url=db_url, redis_url=redis_url, **writer_settings) as writer,
        ContextManager(database_url=db_url, redis_url=redis_url) as reader,
    ):
        yield writer, reader


async def _trusting(cm: ContextManager) -> None:
    """Wait until `cm` hears every change (Redis), and so trusts the rows it caches.

    Other test runs sharing the Redis server may cut its connections for a moment."""

    async def trusted() -> bool:
        return bool((await cm.get_performance_stats())["cache"]["trusted"])

    assert await _soon(trusted, within=5), "with Redis, the manager trusts its cache"


async def _cache_in(reader: ContextManager, context_id: str) -> None:
    """Have `reader` cache the context, and check that it now serves it from memory."""
    await _trusting(reader)
    await reader.get_context(context_id, include_messages=False)
    before = (await reader.get_performance_stats())["cache"]
    await reader.get_context(context_id, include_messages=False)
    after = (await reader.get_performance_stats())["cache"]
    assert after["trusted"], "with Redis, the reader trusts its cache"
    assert after["hits"] == before["hits"] + 1, "the second read came from the cache"


async def _next_event(stream: EventStream, within: float = AT_ONCE) -> ContextEvent | None:
    """The stream's next event, or None if none comes within `within` seconds."""
    try:
        event: ContextEvent = await asyncio.wait_for(anext(stream), within)
    except TimeoutError:
        return None
    return event


async def _outcome(write: Awaitable[T]) -> T | RevisionConflict:
    """What a write returned, or the `RevisionConflict` it gave up with."""
    try:
        return await write
    except RevisionConflict as exc:
        return exc


async def _last_accessed(url: str, context_id: str) -> Any:
    """The context's stored last_accessed, read behind the library's back."""
    query = "SELECT last_accessed FROM contexts WHERE context_id = "
    if url.startswith("sqlite:///"):
        with contextlib.closing(sqlite3.connect(url.removeprefix("sqlite:///"))) as conn:
            return conn.execute(query + "?", (context_id,)).fetchone()[0]
    conn = await asyncpg.connect(url)
    try:
        return await conn.fetchval(query + "$1", context_id)
    finally:
        await conn.close()


async def _live_stream(cm: ContextManager, context_id: str) -> EventStream:
    """A subscription to the context that is past its replay of the event log and waits
    on the bus: it has heard one change (a title change, revision 2)."""
    stream = await cm.subscribe(context_id, user_id="dm")
    await cm.update_context(context_id, {"title": "renamed"}, user_id="dm")
    event = await _next_event(stream, within=10)
    assert event is not None
    assert event.revision == 2
    return stream


# -- 1. retention's archive is a change like any other ---------------------------------------


async def test_an_archive_by_retention_is_announced_to_subscribers(db_url: str) -> None:
    """Retention archiving an idle context commits a change (op ``archive``); a live
    subscriber must hear it as it hears any other change, at once, not on its next read
    of the event log (30 seconds away by default)."""
    async with ContextManager(database_url=db_url, auto_archive_days=TINY) as cm:
        idle = await cm.create_context(Context(title="forgotten"), user_id="dm")
        stream = await _live_stream(cm, idle)
        try:
            await asyncio.sleep(0.2)
            assert (await cm.run_cleanup()).archived == [idle]
            event = await _next_event(stream)
            assert event is not None, "the subscriber heard nothing of the archive"
            assert (event.op, event.revision) == ("archive", 3)
        finally:
            await stream.close()


async def test_an_archive_by_retention_reaches_other_processes_at_once(
    db_url: str, own_redis_url: str
) -> None:
    """Another process (Redis on, its cache trusted) that cached the context must show it
    ``archived`` as soon as retention has archived it, and its subscriber must hear the
    archive: the archive is announced like every other commit."""
    async with _two_processes(db_url, own_redis_url, auto_archive_days=TINY) as (cleaner, other):
        idle = await cleaner.create_context(Context(title="forgotten"), user_id="dm")
        stream = await _live_stream(other, idle)
        try:
            await asyncio.sleep(0.2)
            await _cache_in(other, idle)
            assert (await cleaner.run_cleanup()).archived == [idle]

            async def archived() -> bool:
                context = await other.get_context(idle, include_messages=False)
                return context.state is ContextState.ARCHIVED

            assert await _soon(archived), "the other process still serves the active row"
            event = await _next_event(stream)
            assert event is not None, "the other process's subscriber heard nothing"
            assert (event.op, event.revision) == ("archive", 3)
        finally:
            await stream.close()


# -- 2. every commit invalidates caches everywhere -------------------------------------------


async def test_a_hard_delete_reaches_other_processes_at_once(
    db_url: str, own_redis_url: str
) -> None:
    """After a hard delete in one process, another process that cached the context (and
    trusts its cache, Redis being on) must answer ``ContextNotFound`` at once, not serve
    the deleted row for up to 5 seconds."""
    async with _two_processes(db_url, own_redis_url) as (deleter, other):
        doomed = await deleter.create_context(Context(title="doomed"), user_id="dm")
        await _cache_in(other, doomed)
        await deleter.delete_context(doomed, user_id="dm", hard_delete=True)

        async def gone() -> bool:
            try:
                await other.get_context(doomed, include_messages=False)
            except ContextNotFound:
                return True
            return False

        assert await _soon(gone), "the other process still serves the hard-deleted row"


async def test_an_update_without_sync_still_reaches_other_caches_at_once(
    db_url: str, own_redis_url: str
) -> None:
    """``sync=False`` may spare subscribers the event, never the cache invalidation:
    another process that cached the context must show the new value at once."""
    async with _two_processes(db_url, own_redis_url) as (writer, other):
        room = await writer.create_context(Context(title="before"), user_id="dm")
        await _cache_in(other, room)
        await writer.update_context(room, {"title": "quietly"}, user_id="dm", sync=False)

        async def renamed() -> bool:
            context = await other.get_context(room, include_messages=False)
            return context.title == "quietly"

        assert await _soon(renamed), "the other process still serves the old row"


# -- 3. a session is checked the same way on create and on update ----------------------------


@pytest.mark.parametrize("form", ["merge patch", "json patch", "moved from data"])
async def test_an_update_may_not_point_a_session_at_an_unreadable_conversation(
    db_url: str, form: str
) -> None:
    """Creating a session that names a conversation its creator cannot read is refused
    (``session.unknown_conversation``: to alice, bob's conversation is as good as
    missing). Updating a session to name one must be refused the same way, whatever the
    form of the changes, and change nothing."""
    async with ContextManager(database_url=db_url) as cm:
        mine = await cm.create_context(ConversationContext(title="mine"), user_id="alice")
        bobs = await cm.create_context(ConversationContext(title="bob's"), user_id="bob")
        with pytest.raises(ValidationFailed) as created:
            await cm.create_context(
                SessionContext(title="s", active_conversations=[bobs]), user_id="alice"
            )
        assert [(i.path, i.code) for i in created.value.issues] == [
            ("/active_conversations/0", "session.unknown_conversation")
        ]

        session = await cm.create_context(
            SessionContext(title="s", active_conversations=[mine]), user_id="alice"
        )
        before = await cm.get_context(session, user_id="alice")
        await cm.update_context(session, {"data": {"note": bobs}}, user_id="alice")
        before = await cm.get_context(session, user_id="alice")
        changes: Any = {
            "merge patch": {"active_conversations": [mine, bobs]},
            "json patch": [{"op": "add", "path": "/active_conversations/-", "value": bobs}],
            # the id smuggled in as data, then moved where only looked-up ids may go
            "moved from data": [
                {"op": "move", "from": "/data/note", "path": "/active_conversations/-"}
            ],
        }[form]
        with pytest.raises(ValidationFailed) as updated:
            await cm.update_context(session, changes, user_id="alice")
        assert [(i.path, i.code) for i in updated.value.issues] == [
            ("/active_conversations/1", "session.unknown_conversation")
        ]
        after = await cm.get_context(session, user_id="alice")
        assert isinstance(after, SessionContext)
        assert (after.revision, after.active_conversations) == (before.revision, [mine])


async def test_a_reader_who_may_not_write_a_session_is_refused_before_any_lookup(
    db_url: str,
) -> None:
    """Who may not write learns nothing from a session update, and nothing is looked up,
    changed or cached on their behalf: the permission is checked first."""
    async with ContextManager(database_url=db_url) as cm:
        mine = await cm.create_context(ConversationContext(title="mine"), user_id="alice")
        session = await cm.create_context(
            SessionContext(title="s", active_conversations=[mine], permissions={"bob": ["read"]}),
            user_id="alice",
        )
        moves = [
            {"op": "add", "path": "/active_conversations/-", "value": mine},
            {"op": "replace", "path": "/title", "value": "bob's"},
        ]
        with pytest.raises(PermissionDenied):
            await cm.update_context(session, moves, user_id="bob")
        after = await cm.get_context(session, user_id="alice")
        assert (after.revision, after.title) == (1, "s")


async def test_validating_a_session_does_not_read_its_conversations_as_a_user_would(
    db_url: str,
) -> None:
    """Checking a session's conversations is not a read by a user: creating or updating a
    session that names conversation C leaves C's last_accessed as it was (even with
    every public read touching it, access_touch_seconds=0) and counts no ``get_context``
    in the performance stats."""
    async with ContextManager(database_url=db_url, access_touch_seconds=0) as cm:
        first = await cm.create_context(ConversationContext(title="first"), user_id="alice")
        second = await cm.create_context(ConversationContext(title="second"), user_id="alice")
        accessed = {c: await _last_accessed(db_url, c) for c in (first, second)}
        reads = await _operations(cm, "get_context")

        session = await cm.create_context(
            SessionContext(title="s", active_conversations=[first]), user_id="alice"
        )
        assert await _operations(cm, "get_context") == reads, "create read through get_context"
        assert await _last_accessed(db_url, first) == accessed[first], "create touched it"

        updated = await cm.update_context(
            session, {"active_conversations": [first, second]}, user_id="alice"
        )
        assert isinstance(updated, SessionContext)
        assert updated.active_conversations == [first, second]
        assert await _operations(cm, "get_context") == reads, "update read through get_context"
        assert {c: await _last_accessed(db_url, c) for c in (first, second)} == accessed


# -- 4. a merge makes its merge point itself --------------------------------------------------


async def test_a_merge_records_its_merge_point_without_calling_create_version(
    db_url: str,
) -> None:
    """A source branch with changes since its last version gets a "merge point" version
    (what the merge took in) when merged. The merge makes it itself: it succeeds, counts
    no ``create_version`` operation, and the merge point stays in the source branch's
    history, holding the source as merged and named by the merge version."""
    async with ContextManager(database_url=db_url, version_every_changes=5) as cm:
        context_id = await cm.create_context(Context(title="draft"), user_id="dm")
        await cm.create_branch(context_id, "b", user_id="dm")
        await cm.update_context(context_id, {"title": "on b"}, user_id="dm", branch="b")
        assert await cm.get_version_history(context_id, "dm", branch="b") == []

        result = await cm.merge_branch(context_id, "b", user_id="dm")

        assert result.merged
        assert (await cm.get_context(context_id, "dm")).title == "on b"
        stats = await cm.get_performance_stats()
        assert _count(stats, "merge_branch") == 1
        assert stats["operations"]["merge_branch"]["errors"] == 0
        assert _count(stats, "create_version") == 0, "the merge called create_version"
        [point] = await cm.get_version_history(context_id, "dm", branch="b")
        assert (point.branch, point.message, point.author) == ("b", "merge point", "dm")
        assert not point.automatic
        assert result.version is not None
        assert result.version.merged_version_id == point.version_id
        assert (await cm.get_version(context_id, point.version_id, "dm")).title == "on b"


# -- 5. a write that gives up says where the context really is --------------------------------


@pytest.mark.parametrize(
    ("expected_revision", "strategy"),
    [(1, "provider_priority"), (2, None)],
    ids=["settling-keeps-missing-the-latest", "nothing-newer-in-the-cache"],
)
async def test_a_stale_update_that_gives_up_reports_the_real_revision(
    db_url: str, own_redis_url: str, expected_revision: int, strategy: str | None
) -> None:
    """A manager (Redis on, cache trusted) holds revision 2 of a room when another
    process commits revision 3 and its announcement is lost (that process could not reach
    Redis; here it has none), so the manager's cache still trusts revision 2. A stale update
    through the first manager must either settle against what is really committed, or,
    if it gives up, raise `RevisionConflict` whose ``actual_revision`` is the real
    current revision (3), not a made-up one (the expected revision again)."""
    async with (
        ContextManager(database_url=db_url, redis_url=own_redis_url) as cm,
        ContextManager(database_url=db_url) as unheard,
    ):
        await _trusting(cm)
        room = await cm.create_context(CollaborativeContext(title="r"), user_id="dm")
        await cm.update_context(room, {"shared_state": {"a": 1}}, user_id="dm")
        await unheard.update_context(room, {"shared_state": {"b": 1}}, user_id="dm")
        real = (await unheard.get_context(room, "dm", include_messages=False)).revision
        assert real == 3

        outcome = await _outcome(
            cm.update_context(
                room,
                {"shared_state": {"c": 1}},
                user_id="dm",
                expected_revision=expected_revision,
                strategy=strategy,
            )
        )
        if isinstance(outcome, RevisionConflict):
            assert outcome.expected_revision == expected_revision
            assert outcome.actual_revision == real, f"made-up revisions: {outcome}"
        else:
            assert isinstance(outcome, CollaborativeContext)
            assert outcome.revision > real
            assert outcome.shared_state == {"a": 1, "b": 1, "c": 1}


async def test_a_merge_that_gives_up_reports_the_real_revision(
    db_url: str, own_redis_url: str
) -> None:
    """A merge computed on a cached row that is no longer current (its last change was
    not announced) must either succeed against what is really committed or, if it gives
    up, raise `RevisionConflict` naming the real current revision, never 0 and 0."""
    async with (
        ContextManager(database_url=db_url, redis_url=own_redis_url) as cm,
        ContextManager(database_url=db_url) as unheard,
    ):
        await _trusting(cm)
        context_id = await cm.create_context(Context(title="draft"), user_id="dm")
        await cm.create_branch(context_id, "b", user_id="dm")
        await cm.update_context(context_id, {"title": "on b"}, user_id="dm", branch="b")
        await cm.get_context(context_id, "dm", include_messages=False)
        await unheard.update_context(context_id, {"description": "main moved"}, user_id="dm")
        real = (await unheard.get_context(context_id, "dm", include_messages=False)).revision

        outcome = await _outcome(cm.merge_branch(context_id, "b", user_id="dm"))
        if isinstance(outcome, RevisionConflict):
            assert outcome.actual_revision == real, f"made-up revisions: {outcome}"
            assert outcome.expected_revision != outcome.actual_revision
        else:
            assert outcome.merged
            assert outcome.revision is not None
            assert outcome.revision > real
            merged = await unheard.get_context(context_id, "dm", include_messages=False)
            assert (merged.title, merged.description) == ("on b", "main moved")
