"""Presence: the same behaviour in memory and in Redis; what only Redis does after."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from redis.asyncio import Redis

from loremaster import BackendUnavailable, UsageError
from loremaster.sync import MemoryPresence, PresenceTracker, RedisPresence

pytest_plugins = ["_redis"]


@pytest.fixture(params=["memory", "redis"])
async def presence(request: pytest.FixtureRequest) -> AsyncIterator[PresenceTracker]:
    tracker: PresenceTracker
    if request.param == "memory":
        tracker = MemoryPresence(ttl=5)
    else:
        url = request.getfixturevalue("redis_url")
        tracker = RedisPresence(url, prefix=request.getfixturevalue("redis_prefix"), ttl=5)
    yield tracker
    await tracker.close()


async def test_a_heartbeat_makes_a_user_present_with_what_they_do(
    presence: PresenceTracker,
) -> None:
    entry = await presence.heartbeat("room", "bob", viewing="/shared_state/map")
    assert (entry.user_id, entry.viewing, entry.typing) == ("bob", "/shared_state/map", False)
    assert entry.expires_at - entry.last_seen == timedelta(seconds=5)
    await presence.heartbeat("room", "alice", typing=True)
    members = await presence.members("room")
    assert [(m.user_id, m.viewing, m.typing) for m in members] == [
        ("alice", None, True),
        ("bob", "/shared_state/map", False),
    ]
    assert abs(members[1].last_seen - entry.last_seen) < timedelta(milliseconds=2)
    assert await presence.members("elsewhere") == []


async def test_a_new_heartbeat_replaces_the_old_one(presence: PresenceTracker) -> None:
    first = await presence.heartbeat("room", "bob", typing=True)
    await asyncio.sleep(0.01)
    second = await presence.heartbeat("room", "bob", viewing="messages")
    [member] = await presence.members("room")
    assert (member.viewing, member.typing) == ("messages", False)
    assert member.last_seen > first.last_seen
    assert second.expires_at > first.expires_at


async def test_entries_expire_without_heartbeats(presence: PresenceTracker) -> None:
    await presence.heartbeat("room", "bob", ttl=0.2)
    await presence.heartbeat("room", "alice", ttl=0.2)
    await asyncio.sleep(0.1)
    await presence.heartbeat("room", "alice", ttl=2)
    await asyncio.sleep(0.2)
    assert [m.user_id for m in await presence.members("room")] == ["alice"]
    await presence.heartbeat("room", "alice", ttl=0.1)
    await asyncio.sleep(0.2)
    assert await presence.members("room") == []
    assert not await presence.leave("room", "alice")


async def test_leaving_is_at_once(presence: PresenceTracker) -> None:
    await presence.heartbeat("room", "bob")
    await presence.heartbeat("room", "alice")
    assert await presence.leave("room", "bob")
    assert not await presence.leave("room", "bob")
    assert [m.user_id for m in await presence.members("room")] == ["alice"]


async def test_ttls_must_be_positive(presence: PresenceTracker) -> None:
    with pytest.raises(UsageError):
        await presence.heartbeat("room", "bob", ttl=0)
    with pytest.raises(UsageError):
        MemoryPresence(ttl=-1)


async def test_memory_forgets_rooms_nobody_looks_at_again() -> None:
    presence = MemoryPresence(ttl=0.05)
    await presence.heartbeat("abandoned", "bob")
    await asyncio.sleep(0.1)
    await presence.heartbeat("room", "alice")
    assert list(presence._contexts) == ["room"]


# -- Redis only -----------------------------------------------------------------------------


async def test_redis_presence_is_shared_and_its_keys_expire(
    redis_url: str, redis_prefix: str
) -> None:
    one = RedisPresence(redis_url, prefix=redis_prefix, ttl=5)
    other = RedisPresence(redis_url, prefix=redis_prefix, ttl=5)
    client = Redis.from_url(redis_url)
    try:
        await one.heartbeat("room", "bob", ttl=0.3)
        await other.heartbeat("room", "alice", ttl=0.6)
        assert [m.user_id for m in await one.members("room")] == ["alice", "bob"]
        keys = sorted([k async for k in client.scan_iter(match=f"{redis_prefix}*")])
        assert keys == [
            f"{redis_prefix}presence:{{room}}".encode(),
            f"{redis_prefix}presence:{{room}}:expiry".encode(),
        ]
        for key in keys:
            assert 300 < await client.pttl(key) <= 600  # the last member's expiry
        await asyncio.sleep(1)
        assert [k async for k in client.scan_iter(match=f"{redis_prefix}*")] == []
    finally:
        await client.aclose()
        await one.close()
        await other.close()


async def test_redis_presence_unreachable_is_backend_unavailable() -> None:
    presence = RedisPresence("redis://127.0.0.1:1/0", timeout=0.5)
    try:
        with pytest.raises(BackendUnavailable):
            await presence.heartbeat("room", "bob")
    finally:
        await presence.close()
