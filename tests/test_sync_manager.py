"""Real-time sync through the manager: subscriptions, locks, conflict strategies, rooms,
presence and cache coherence, on both backends (and Redis where it matters)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import pytest

from loremaster import (
    CollaborativeContext,
    Context,
    ContextManager,
    ContextNotFound,
    LockHeld,
    LockLost,
    PermissionDenied,
    RevisionConflict,
    ValidationFailed,
)
from loremaster.models import ContextEvent

if TYPE_CHECKING:
    from _redis import CutConnections

pytest_plugins = ["_redis"]


@pytest.fixture(params=["in-process", "redis"])
def bus_url(request: pytest.FixtureRequest) -> str | None:
    if request.param == "in-process":
        return None
    url: str = request.getfixturevalue("redis_url")
    return url


@pytest.fixture
async def cm(db_url: str, bus_url: str | None) -> AsyncIterator[ContextManager]:
    async with ContextManager(database_url=db_url, redis_url=bus_url) as manager:
        yield manager


@pytest.fixture
async def two_processes(
    postgres_url: str, redis_url: str
) -> AsyncIterator[tuple[ContextManager, ContextManager]]:
    """A reader and a writer, as two server processes would be: one PostgreSQL, one Redis."""
    async with (
        ContextManager(database_url=postgres_url, redis_url=redis_url) as reader,
        ContextManager(database_url=postgres_url, redis_url=redis_url) as writer,
    ):
        yield reader, writer


async def _room(cm: ContextManager, **fields: Any) -> str:
    return await cm.create_context(
        CollaborativeContext(title="Party Planning Session", **fields), user_id="dm"
    )


async def _take(stream: Any, count: int) -> list[ContextEvent]:
    return [await asyncio.wait_for(anext(stream), 10) for _ in range(count)]


async def test_spec_real_time_collaboration_example(cm: ContextManager) -> None:
    context_manager = cm
    collab_context = CollaborativeContext(
        title="Party Planning Session",
        room_id="room_abc123",
        active_participants=["player1", "player2", "dm"],
    )
    context_id = await context_manager.create_context(collab_context, user_id="dm")

    # Join session
    await context_manager.join_collaborative_session(context_id, user_id="player3")

    # Acquire lock for editing
    await context_manager.acquire_context_lock(context_id, user_id="player1")

    # Update shared state
    await context_manager.update_context(
        context_id,
        {"shared_state": {"quest": "Dragon's Lair", "level": 5}},
        user_id="player1",
        sync=True,  # Real-time sync
    )

    room = await context_manager.get_context(context_id)
    assert isinstance(room, CollaborativeContext)
    assert room.shared_state == {"quest": "Dragon's Lair", "level": 5}
    assert room.active_participants == ["player1", "player2", "dm", "player3"]
    with pytest.raises(LockHeld):
        await context_manager.update_context(context_id, {"title": "x"}, user_id="player3")


async def test_a_subscriber_sees_every_revision_once_in_order(cm: ContextManager) -> None:
    room = await _room(cm)
    stream = await cm.subscribe(room, user_id="dm")
    for level in range(1, 21):
        await cm.update_context(room, {"shared_state": {"level": level}}, user_id="dm")
    events = await _take(stream, 20)
    assert [e.revision for e in events] == list(range(2, 22))
    assert events[-1].changes == [{"op": "replace", "path": "/shared_state/level", "value": 20}]
    replay = await cm.subscribe(room, since_revision=15)
    assert [e.revision for e in await _take(replay, 6)] == list(range(16, 22))
    await stream.close()
    await replay.close()
    with pytest.raises(ContextNotFound):
        await cm.subscribe(room, user_id="stranger")


async def test_a_trimmed_log_starts_a_follower_with_a_snapshot(db_url: str) -> None:
    async with ContextManager(database_url=db_url, event_retention_days=1e-9) as cm:
        room = await _room(cm)
        for level in range(3):
            await cm.update_context(room, {"shared_state": {"level": level}}, user_id="dm")
        await asyncio.sleep(0.01)
        assert (await cm.run_cleanup()).events_trimmed == 3
        stream = await cm.subscribe(room, since_revision=0)
        [snapshot] = await _take(stream, 1)
        assert (snapshot.op, snapshot.revision) == ("snapshot", 4)
        assert snapshot.changes[0]["value"]["shared_state"] == {"level": 2}
        await cm.update_context(room, {"title": "Later"}, user_id="dm")
        [later] = await _take(stream, 1)
        assert (later.op, later.revision) == ("update", 5)
        await stream.close()


async def test_locks_keep_others_out_and_fence_an_expired_holder(cm: ContextManager) -> None:
    room = await _room(cm, collaborators=["ana", "bo"])
    first = await cm.acquire_context_lock(room, user_id="ana", timeout=0.3)
    with pytest.raises(LockHeld) as held:
        await cm.update_context(room, {"title": "bo was here"}, user_id="bo")
    assert held.value.holder == "ana"
    with pytest.raises(LockHeld):
        await cm.acquire_context_lock(room, user_id="bo")
    await cm.update_context(room, {"title": "ana's"}, user_id="ana")

    await asyncio.sleep(0.4)  # ana is paused past her lease
    second = await cm.acquire_context_lock(room, user_id="bo", timeout=5)
    assert second.token > first.token
    with pytest.raises(LockLost):
        await cm.update_context(room, {"title": "ana, late"}, user_id="ana")
    await cm.update_context(room, {"title": "bo's"}, user_id="bo")
    renewed = await cm.renew_context_lock(room, user_id="bo", timeout=10)
    assert (renewed.token, renewed.expires_at > second.expires_at) == (second.token, True)
    await cm.release_context_lock(room, user_id="bo")
    await cm.update_context(room, {"title": "anyone's"}, user_id="ana")
    assert (await cm.get_context(room)).title == "anyone's"
    with pytest.raises(LockLost):
        await cm.renew_context_lock(room, user_id="bo")


async def test_taking_a_held_lock_again_never_shortens_it(cm: ContextManager) -> None:
    room = await _room(cm, collaborators=["ana", "bo"])
    long = await cm.acquire_context_lock(room, user_id="ana", timeout=60)
    again = await cm.acquire_context_lock(room, user_id="ana", timeout=0.1)
    renewed = await cm.renew_context_lock(room, user_id="ana", timeout=0.1)
    assert again.token == renewed.token == long.token
    assert again.expires_at >= long.expires_at
    assert renewed.expires_at >= long.expires_at
    await asyncio.sleep(0.3)
    with pytest.raises(LockHeld):
        await cm.update_context(room, {"title": "bo's"}, user_id="bo")
    longer = await cm.acquire_context_lock(room, user_id="ana", timeout=120)
    assert longer.expires_at > long.expires_at


async def test_expired_lease_alone_also_refuses_its_holder(cm: ContextManager) -> None:
    room = await _room(cm, collaborators=["ana"])
    await cm.acquire_context_lock(room, user_id="ana", timeout=0.2)
    await asyncio.sleep(0.3)
    with pytest.raises(LockLost):
        await cm.update_context(room, {"title": "still mine?"}, user_id="ana")
    await cm.update_context(room, {"title": "not locked now"}, user_id="ana")


async def _stale(cm: ContextManager, room: str, strategy: str | None, **origin: Any) -> Any:
    """Revision 2 sets hp and gold; a writer who read revision 1 sets hp and mp."""
    await cm.update_context(room, {"shared_state": {"hp": 5, "gold": 1}}, user_id="dm")
    return await cm.update_context(
        room,
        {"shared_state": {"hp": 9, "mp": 3}},
        user_id="ana",
        expected_revision=1,
        strategy=strategy,
        origin=origin or None,
    )


async def test_automatic_merge_lands_different_paths_and_refuses_overlaps(
    cm: ContextManager,
) -> None:
    room = await _room(cm, collaborators=["ana"])
    await cm.update_context(room, {"shared_state": {"gold": 1}}, user_id="dm")
    merged = await cm.update_context(
        room, {"shared_state": {"mp": 3}}, user_id="ana", expected_revision=1
    )
    assert merged.shared_state == {"gold": 1, "mp": 3}
    same = await cm.update_context(
        room, {"shared_state": {"gold": 1}}, user_id="ana", expected_revision=1
    )
    assert same.revision == merged.revision  # the same value is no conflict: nothing to do
    other = await _room(cm, collaborators=["ana"])
    with pytest.raises(RevisionConflict):
        await _stale(cm, other, None)
    assert (await cm.get_context(other)).shared_state == {"hp": 5, "gold": 1}


async def test_latest_wins_takes_the_incoming_value_and_keeps_other_paths(
    cm: ContextManager,
) -> None:
    room = await _room(cm, collaborators=["ana"])
    updated = await _stale(cm, room, "latest_wins")
    assert updated.shared_state == {"hp": 9, "gold": 1, "mp": 3}


async def test_manual_merge_records_the_overlap_and_a_person_resolves_it(
    cm: ContextManager,
) -> None:
    room = await _room(cm, collaborators=["ana"])
    updated = await _stale(cm, room, "manual_merge")
    assert updated.shared_state == {"hp": 5, "gold": 1, "mp": 3}
    [conflict] = await cm.list_conflicts(room)
    assert conflict.strategy == "manual_merge"
    assert [(p.path, p.base, p.current, p.incoming) for p in conflict.paths] == [
        ("/shared_state/hp", None, 5, 9)
    ]
    events = await cm.get_events(room)
    assert {
        "op": "add",
        "path": "/conflicts/-",
        "value": {"conflict_id": conflict.conflict_id},
    } in (events[-1].changes)
    with pytest.raises(ValidationFailed):
        await cm.resolve_conflict(conflict.conflict_id, {"/shared_state/hp": "mine"}, "ana")
    resolved = await cm.resolve_conflict(conflict.conflict_id, {"/shared_state/hp": "incoming"})
    assert resolved.shared_state["hp"] == 9
    assert await cm.list_conflicts(room) == []
    with pytest.raises(ValidationFailed):
        await cm.resolve_conflict(conflict.conflict_id, {"/shared_state/hp": "current"})


async def test_user_choice_is_offered_to_the_named_user(cm: ContextManager) -> None:
    policy = {"strategy": "user_choice", "chooser": "dm"}
    room = await _room(cm, collaborators=["ana"], conflict_policy=policy)
    await _stale(cm, room, None)
    [conflict] = await cm.list_conflicts(room)
    assert conflict.resolver == "dm"
    with pytest.raises(PermissionDenied):
        await cm.resolve_conflict(conflict.conflict_id, {"/shared_state/hp": "incoming"}, "ana")
    kept = await cm.resolve_conflict(conflict.conflict_id, {"/shared_state/hp": "current"}, "dm")
    assert kept.shared_state == {"hp": 5, "gold": 1, "mp": 3}


async def test_provider_priority_ranks_who_wrote_each_path(cm: ContextManager) -> None:
    policy = {"strategy": "provider_priority", "provider_ranking": ["anthropic", "user"]}
    room = await _room(cm, collaborators=["ana"], conflict_policy=policy)
    won = await _stale(cm, room, None, provider="anthropic")
    assert won.shared_state["hp"] == 9  # the assistant outranks the person who wrote hp
    assert (await cm.get_events(room))[-1].provider == "anthropic"
    other = await _room(cm, collaborators=["ana"], conflict_policy=policy)
    lost = await _stale(cm, other, None, provider="openai")  # unlisted: ranks last
    assert lost.shared_state == {"hp": 5, "gold": 1, "mp": 3}


async def test_joining_a_room(cm: ContextManager) -> None:
    room = await _room(cm, max_participants=2)
    joined = await cm.join_collaborative_session(room, user_id="ana")
    assert isinstance(joined, CollaborativeContext)
    assert (joined.active_participants, joined.collaborators) == (["ana"], ["ana"])
    await cm.update_context(room, {"shared_state": {"ana": "here"}}, user_id="ana")
    again = await cm.join_collaborative_session(room, user_id="ana")
    assert again.revision == joined.revision + 1  # already in: nothing changes
    await cm.join_collaborative_session(room, user_id="bo")
    with pytest.raises(ValidationFailed) as full:
        await cm.join_collaborative_session(room, user_id="cy")
    assert full.value.issues[0].code == "room_full"
    left = await cm.leave_collaborative_session(room, user_id="ana")
    assert isinstance(left, CollaborativeContext)
    assert left.active_participants == ["bo"]
    assert "ana" in left.collaborators
    assert [e.op for e in await cm.get_events(room)][-4:] == ["join", "update", "join", "leave"]

    closed = await _room(cm, join_policy="members")
    with pytest.raises(ContextNotFound):
        await cm.join_collaborative_session(closed, user_id="stranger")
    with pytest.raises(ValidationFailed):
        await cm.join_collaborative_session(
            await cm.create_context(Context(title="not a room")), user_id="ana"
        )


async def test_presence_is_ephemeral_and_makes_no_change(cm: ContextManager) -> None:
    room = await _room(cm, collaborators=["ana"])
    revision = (await cm.get_context(room)).revision
    entry = await cm.update_presence(room, "ana", viewing="map", typing=True)
    assert (entry.viewing, entry.typing) == ("map", True)
    assert [(p.user_id, p.viewing) for p in await cm.get_presence(room, "dm")] == [("ana", "map")]
    assert (await cm.get_context(room)).revision == revision
    with pytest.raises(ContextNotFound):
        await cm.update_presence(room, "stranger")


async def test_caches_follow_changes_made_by_other_processes(
    two_processes: tuple[ContextManager, ContextManager],
) -> None:
    reader, writer = two_processes
    room = await _room(writer)
    await reader.get_context(room)
    assert (await reader.get_performance_stats())["cache"]["trusted"]
    for _ in range(5):
        await reader.get_context(room)  # served from memory
    await writer.update_context(room, {"title": "Renamed"}, user_id="dm")
    for _ in range(100):
        if (await reader.get_context(room)).title == "Renamed":
            break
        await asyncio.sleep(0.01)
    assert (await reader.get_context(room)).title == "Renamed"
    cache = (await reader.get_performance_stats())["cache"]
    assert cache["hits"] >= 5


async def test_a_cache_is_not_trusted_across_a_lost_connection(
    two_processes: tuple[ContextManager, ContextManager], cut_connections: CutConnections
) -> None:
    reader, writer = two_processes
    room = await _room(writer)
    for attempt in range(5):
        await reader.get_context(room)  # cached
        await cut_connections("loremaster-bus")  # the announcement will be missed
        title = f"while away {attempt}"
        await writer.update_context(room, {"title": title}, user_id="dm")
        while not (await reader.health_check())["event_bus"]["connected"]:
            await asyncio.sleep(0.001)
        assert (await reader.get_context(room)).title == title  # reconnected, gap pending


async def test_a_shared_cache_in_redis_serves_other_processes_and_never_stale_rows(
    postgres_url: str, redis_url: str
) -> None:
    settings = {"database_url": postgres_url, "redis_url": redis_url, "cache_l2": True}
    async with ContextManager(**settings) as writer, ContextManager(**settings) as reader:
        room = await _room(writer)
        stored = await writer.get_context(room)
        assert (await reader.get_context(room)) == stored  # from Redis, checked by revision
        assert (await reader.get_performance_stats())["cache"]["hits"] == 1
        async with ContextManager(database_url=postgres_url) as elsewhere:
            await elsewhere.update_context(room, {"title": "Changed behind its back"})
        async with ContextManager(**settings) as fresh:
            assert (await fresh.get_context(room)).title == "Changed behind its back"


async def test_choosing_current_keeps_what_was_committed_since(cm: ContextManager) -> None:
    room = await _room(cm, collaborators=["ana"], conflict_policy={"strategy": "manual_merge"})
    await _stale(cm, room, None)  # hp: 5 committed, 9 incoming
    await cm.update_context(room, {"shared_state": {"hp": 1}}, user_id="dm")
    [conflict] = await cm.list_conflicts(room)
    kept = await cm.resolve_conflict(conflict.conflict_id, {"/shared_state/hp": "current"}, "dm")
    assert kept.shared_state["hp"] == 1
    with pytest.raises(ValidationFailed):
        await cm.resolve_conflict(None, {})  # type: ignore[arg-type]


async def test_the_lock_holder_writes_every_way_and_is_fenced_every_way(
    cm: ContextManager,
) -> None:
    from loremaster import ConversationContext

    talk = await cm.create_context(ConversationContext(title="t", collaborators=["bo"]), "dm")
    await cm.acquire_context_lock(talk, user_id="bo", timeout=0.3)
    await cm.append_messages(talk, {"role": "user", "content": "mine"}, user_id="bo")
    await cm.create_version(talk, user_id="bo", message="mine too")
    with pytest.raises(LockHeld):
        await cm.append_messages(talk, {"role": "user", "content": "no"}, user_id="dm")
    await asyncio.sleep(0.4)
    with pytest.raises(LockLost):
        await cm.append_messages(talk, {"role": "user", "content": "late"}, user_id="bo")
    for timeout in (float("nan"), float("inf"), 1e12, 0, -1):
        with pytest.raises(ValidationFailed):
            await cm.acquire_context_lock(talk, user_id="bo", timeout=timeout)


async def test_a_stale_update_on_a_fresh_branch_merges(cm: ContextManager) -> None:
    room = await _room(cm, collaborators=["ana"])
    await cm.create_branch(room, "plan-b", user_id="dm")
    branch = await cm.get_context(room, branch="plan-b")
    await cm.update_context(room, {"shared_state": {"gold": 1}}, user_id="dm", branch="plan-b")
    merged = await cm.update_context(
        room,
        {"shared_state": {"mp": 3}},
        user_id="ana",
        expected_revision=branch.revision,
        branch="plan-b",
    )
    assert merged.shared_state == {"gold": 1, "mp": 3}


async def test_a_conflict_on_a_branch_is_kept_and_resolved_there(cm: ContextManager) -> None:
    room = await _room(cm)
    await cm.create_branch(room, "b", user_id="dm")
    first = await cm.update_context(room, {"title": "b1"}, user_id="dm", branch="b")
    await cm.update_context(room, {"title": "b2"}, user_id="dm", branch="b")
    kept = await cm.update_context(
        room,
        {"title": "b3"},
        user_id="dm",
        branch="b",
        expected_revision=first.revision,
        strategy="manual_merge",
    )
    assert kept.title == "b2"
    [conflict] = await cm.list_conflicts(room)
    await cm.resolve_conflict(conflict.conflict_id, {"/title": "incoming"}, "dm")
    assert (await cm.get_context(room, branch="b")).title == "b3"
    assert (await cm.get_context(room)).title == "Party Planning Session"


async def test_an_unannounced_change_reaches_a_trusted_cache_within_seconds(
    two_processes: tuple[ContextManager, ContextManager],
) -> None:
    reader, writer = two_processes
    room = await _room(writer)
    await reader.get_context(room)
    await writer.update_context(room, {"title": "quietly"}, user_id="dm", sync=False)
    loop = asyncio.get_running_loop()
    until = loop.time() + 8
    while (await reader.get_context(room)).title != "quietly":  # read all along
        assert loop.time() < until
        await asyncio.sleep(0.2)
