"""Rate limits per user: a token bucket of ``LOREMASTER_RATE_LIMIT`` requests a second and
``LOREMASTER_RATE_BURST`` at once, kept in Redis when the manager has a Redis URL (one
atomic script, so every server process draws on the same bucket) and in the process
otherwise. Over the limit: 429 with ``Retry-After``.

A request is counted against the user its bearer token names; one whose token does not
authenticate (it will be answered 401) against its client address."""

from __future__ import annotations

import logging
import math
import time
from typing import Protocol

from redis.asyncio import Redis
from redis.exceptions import RedisError
from starlette.requests import HTTPConnection
from starlette.types import ASGIApp, Receive, Scope, Send

from ._problems import ApiError, error_response
from ._service import caller_of

__all__ = ["LIMITED_PREFIX", "MemoryBuckets", "RateLimit", "RedisBuckets", "TokenBuckets"]

log = logging.getLogger("loremaster.server")

LIMITED_PREFIX = "/v1/"
"""The routes counted: the API, not the probes (/healthz, /readyz) nor /metrics."""

KEY_PREFIX = "loremaster:ratelimit:"
"""Under the ``loremaster:`` prefix of the manager's other Redis keys and channels."""

_MAX_BUCKETS = 100_000
"""In-process buckets kept; the least recently used goes first (it comes back full)."""

_REDIS_RETRY_SECONDS = 1.0
"""After Redis fails, buckets stay in the process this long before Redis is tried again."""

# KEYS[1] the bucket; ARGV rate (tokens/s) and burst. Redis's clock, so that servers whose
# clocks differ share one bucket. Returns the seconds until a token is due ("0": taken).
_TAKE = """
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(state[1]) or burst
local at = tonumber(state[2]) or now
tokens = math.min(burst, tokens + math.max(0, now - at) * rate)
local wait = 0
if tokens >= 1 then tokens = tokens - 1 else wait = (1 - tokens) / rate end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil(burst / rate * 1000) + 1000)
return tostring(wait)
"""


class TokenBuckets(Protocol):
    async def take(self, key: str) -> float:
        """Take one token of `key`'s bucket: 0 if there was one, else the seconds until
        there will be (nothing taken)."""
        ...


class MemoryBuckets:
    """Buckets of this process only."""

    def __init__(self, rate: float, burst: int) -> None:
        self._rate = rate
        self._burst = float(burst)
        self._buckets: dict[str, tuple[float, float]] = {}

    async def take(self, key: str) -> float:
        now = time.monotonic()
        tokens, at = self._buckets.pop(key, (self._burst, now))
        tokens = min(self._burst, tokens + (now - at) * self._rate)
        wait = 0.0 if tokens >= 1 else (1 - tokens) / self._rate
        self._buckets[key] = (tokens - 1 if wait == 0 else tokens, now)
        if len(self._buckets) > _MAX_BUCKETS:
            del self._buckets[next(iter(self._buckets))]
        return wait


class RedisBuckets:
    """Buckets in Redis, shared by every process. While Redis fails, each process limits
    on its own (`MemoryBuckets`) and says so once in the log (docs/decisions.md §75)."""

    def __init__(self, client: Redis, rate: float, burst: int) -> None:
        self._script = client.register_script(_TAKE)
        self._rate = rate
        self._burst = burst
        self._local = MemoryBuckets(rate, burst)
        self._retry_at = 0.0

    async def take(self, key: str) -> float:
        if time.monotonic() < self._retry_at:
            return await self._local.take(key)
        try:
            wait = await self._script(keys=[KEY_PREFIX + key], args=[self._rate, self._burst])
        except (RedisError, OSError) as exc:
            if self._retry_at == 0.0:
                log.warning("rate limits are per process until Redis answers again: %s", exc)
            self._retry_at = time.monotonic() + _REDIS_RETRY_SECONDS
            return await self._local.take(key)
        if self._retry_at:
            log.info("rate limits are shared through Redis again")
            self._retry_at = 0.0
        return float(wait)


def _bucket_key(scope: Scope) -> str:
    """The user the request authenticates as, else its client address."""
    try:
        return "user:" + caller_of(HTTPConnection(scope)).name
    except ApiError:
        client = scope.get("client")
        return "addr:" + (client[0] if client else "unknown")


def rate_limited(wait: float, rate: float, burst: int) -> ApiError:
    seconds = max(1, math.ceil(wait))
    return ApiError(
        429,
        "rate_limited",
        f"too many requests: {rate:g} a second, {burst} at once; retry in {seconds} s",
        {"retry_after": seconds},
        {"Retry-After": str(seconds)},
    )


class RateLimit:
    """Counts every request (and WebSocket handshake) under /v1/ against its user's
    bucket; over the limit it is answered 429 before it reaches a route."""

    def __init__(self, app: ASGIApp, buckets: TokenBuckets, rate: float, burst: int) -> None:
        self.app = app
        self._buckets = buckets
        self._rate = rate
        self._burst = burst

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan" or not scope["path"].startswith(LIMITED_PREFIX):
            await self.app(scope, receive, send)
            return
        wait = await self._buckets.take(_bucket_key(scope))
        if wait == 0:
            await self.app(scope, receive, send)
            return
        response = error_response(rate_limited(wait, self._rate, self._burst))
        if scope["type"] == "http":
            await response(scope, receive, send)
        elif "websocket.http.response" in scope.get("extensions", {}):
            await send(
                {
                    "type": "websocket.http.response.start",
                    "status": response.status_code,
                    "headers": response.raw_headers,
                }
            )
            await send({"type": "websocket.http.response.body", "body": response.body})
        else:
            await send({"type": "websocket.close", "code": 1013})
