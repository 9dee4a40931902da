"""An optional second-level row cache in Redis, shared by every process (CONTEXT_CACHE_L2).

A process that misses its own cache reads the row from Redis instead of the database and
checks its revision against storage (one primary-key lookup), so an entry can never be
served stale; writers store each committed row, newer revisions only (a Lua script
compares them), so a slow writer cannot put an older row back.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable
from typing import cast

from redis.asyncio import Redis
from redis.exceptions import RedisError

from ..storage import ContextRecord

__all__ = ["SharedRows"]

log = logging.getLogger("loremaster.cache")

_STORE_IF_NEWER = """
local stored = redis.call('HGET', KEYS[1], 'revision')
if stored and tonumber(stored) >= tonumber(ARGV[1]) then return 0 end
redis.call('HSET', KEYS[1], 'revision', ARGV[1], 'row', ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1
"""


class SharedRows:
    def __init__(self, client: Redis, *, ttl_seconds: float, prefix: str = "loremaster:") -> None:
        self._client = client
        self._ttl_ms = max(1, int(ttl_seconds * 1000))
        self._prefix = f"{prefix}row:"
        self._store = client.register_script(_STORE_IF_NEWER)

    async def get(self, context_id: str) -> ContextRecord | None:
        try:
            pending = self._client.hget(self._prefix + context_id, "row")
            blob = await cast(Awaitable[bytes | None], pending)
        except RedisError as exc:
            log.warning("shared cache unavailable: %s", exc)
            return None
        return None if blob is None else ContextRecord.from_json(blob)

    async def put(self, record: ContextRecord) -> None:
        key = self._prefix + record.context_id
        try:
            await self._store(keys=[key], args=[record.revision, record.to_json(), self._ttl_ms])
        except RedisError as exc:
            log.warning("shared cache unavailable: %s", exc)

    async def close(self) -> None:
        await self._client.aclose()

    async def discard(self, context_id: str) -> None:
        try:
            await self._client.delete(self._prefix + context_id)
        except RedisError as exc:
            log.warning("shared cache unavailable: %s", exc)
