"""Presence in Redis, shared by every process: per context, a hash of entries and a sorted
set of their expiry times, both under one hash tag so they live on one cluster slot.

Redis 7.0 has no expiry per hash field, so each write prunes expired members in the same
script, and both keys expire with their last member: an abandoned room leaves nothing.
Times come from the Redis server's clock, the same for every process.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
from redis.commands.core import AsyncScript
from redis.exceptions import RedisError

from ..bus import redis_client
from ..errors import BackendUnavailable
from ._presence import PresenceEntry, check_ttl

__all__ = ["RedisPresence"]

_NOW_AND_PRUNE = """
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
local stale = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now)
for _, member in ipairs(stale) do
    redis.call('HDEL', KEYS[1], member)
end
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
"""

_HEARTBEAT = (
    _NOW_AND_PRUNE
    + """
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('ZADD', KEYS[2], now + tonumber(ARGV[3]), ARGV[1])
local last = redis.call('ZRANGE', KEYS[2], -1, -1, 'WITHSCORES')[2]
redis.call('PEXPIREAT', KEYS[1], last)
redis.call('PEXPIREAT', KEYS[2], last)
return now
"""
)

_MEMBERS = (
    _NOW_AND_PRUNE
    + """
local found = {}
local live = redis.call('ZRANGE', KEYS[2], 0, -1, 'WITHSCORES')
for i = 1, #live, 2 do
    local payload = redis.call('HGET', KEYS[1], live[i])
    if payload then
        table.insert(found, live[i])
        table.insert(found, payload)
        table.insert(found, live[i + 1])
    end
end
return found
"""
)

_LEAVE = (
    _NOW_AND_PRUNE
    + """
redis.call('ZREM', KEYS[2], ARGV[1])
return redis.call('HDEL', KEYS[1], ARGV[1])
"""
)


class RedisPresence:
    """Presence shared through Redis. Keys: ``{prefix}presence:{<context_id>}`` (entries)
    and ``{prefix}presence:{<context_id>}:expiry``."""

    def __init__(
        self,
        url: str,
        *,
        prefix: str = "loremaster:",
        ttl: float = 30.0,
        timeout: float = 5.0,
        client_name: str = "loremaster-presence",
    ) -> None:
        self._prefix = f"{prefix}presence:"
        self._ttl = check_ttl(ttl)
        self._client = redis_client(url, timeout=timeout, client_name=client_name)
        self._heartbeat = self._client.register_script(_HEARTBEAT)
        self._members = self._client.register_script(_MEMBERS)
        self._leave = self._client.register_script(_LEAVE)

    async def heartbeat(
        self,
        context_id: str,
        user_id: str,
        *,
        viewing: str | None = None,
        typing: bool = False,
        ttl: float | None = None,
    ) -> PresenceEntry:
        ttl_ms = max(1, round(check_ttl(self._ttl if ttl is None else ttl) * 1000))
        payload = orjson.dumps({"viewing": viewing, "typing": typing, "ttl_ms": ttl_ms})
        now = int(await self._run(self._heartbeat, context_id, user_id, payload, ttl_ms))
        return PresenceEntry(user_id, _at(now), _at(now + ttl_ms), viewing, typing)

    async def leave(self, context_id: str, user_id: str) -> bool:
        return bool(await self._run(self._leave, context_id, user_id))

    async def members(self, context_id: str) -> list[PresenceEntry]:
        found = await self._run(self._members, context_id)
        entries = []
        for i in range(0, len(found), 3):
            user_id, payload, expires = found[i].decode(), orjson.loads(found[i + 1]), found[i + 2]
            expires_ms = int(expires)
            entries.append(
                PresenceEntry(
                    user_id,
                    _at(expires_ms - payload["ttl_ms"]),
                    _at(expires_ms),
                    payload["viewing"],
                    payload["typing"],
                )
            )
        return sorted(entries, key=lambda e: e.user_id)

    async def close(self) -> None:
        await self._client.aclose()

    async def _run(self, script: AsyncScript, context_id: str, *args: Any) -> Any:
        entries = f"{self._prefix}{{{context_id}}}"
        try:
            return await script(keys=[entries, f"{entries}:expiry"], args=args)
        except RedisError as exc:
            raise BackendUnavailable(f"Redis presence failed: {exc}") from exc


def _at(milliseconds: int) -> datetime:
    return datetime.fromtimestamp(milliseconds / 1000, UTC)
