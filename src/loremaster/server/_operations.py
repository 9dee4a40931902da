"""Liveness, readiness, metrics, health and statistics; and what runs around every route:
rate limits, request ids, the access log and latency metrics (`install_operations`)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable
from contextlib import asynccontextmanager
from typing import Any, cast

from fastapi import APIRouter, FastAPI, Request
from prometheus_client import CONTENT_TYPE_LATEST
from redis.asyncio import Redis
from redis.exceptions import RedisError
from starlette.responses import Response

from ..bus import redis_client
from ._http import json_response
from ._observe import Observe
from ._ratelimit import LIMITED_PREFIX, MemoryBuckets, RateLimit, RedisBuckets, TokenBuckets
from ._scrape import scrape
from ._service import CallerDep, ManagerDep, Service, ServiceDep

__all__ = ["install_operations", "router"]

router = APIRouter(tags=["operations"])

READY_SECONDS = 3.0
"""The longest /readyz waits for the database or Redis before calling it unreachable."""
REDIS_SECONDS = 0.5
"""The server's own Redis calls (a bucket, a readiness ping) give up after this long."""


def _redis_of(request: Request) -> Redis | None:
    redis: Redis | None = request.app.state.redis
    return redis


@router.get("/healthz")
async def liveness() -> Response:
    """The process answers (nothing else is checked)."""
    return json_response({"status": "ok"})


async def _database_ready(service: Service) -> dict[str, Any]:
    try:
        async with asyncio.timeout(READY_SECONDS):
            health = await service.manager.health_check()
    except TimeoutError:
        return {"status": "unavailable", "error": f"no answer within {READY_SECONDS:g} s"}
    return {key: health[key] for key in ("status", "error", "reason") if key in health}


async def _redis_ready(redis: Redis) -> dict[str, Any]:
    try:
        async with asyncio.timeout(READY_SECONDS):
            await cast("Awaitable[bool]", redis.ping())  # typed for both clients at once
    except (RedisError, OSError, TimeoutError) as exc:
        return {"status": "unavailable", "error": str(exc) or "no answer"}
    return {"status": "ok"}


@router.get("/readyz")
async def readiness(request: Request, service: ServiceDep) -> Response:
    """200 while the database (and Redis, when configured) answer; 503 when either does
    not, or while reads are degraded to caches."""
    checks = {"database": await _database_ready(service)}
    redis = _redis_of(request)
    if redis is not None:
        checks["redis"] = await _redis_ready(redis)
    ready = all(check["status"] == "ok" for check in checks.values())
    body = {"status": "ok" if ready else "unavailable", **checks}
    return json_response(body, 200 if ready else 503)


@router.get("/metrics", response_class=Response, responses={200: {"content": {"text/plain": {}}}})
async def metrics(manager: ManagerDep) -> Response:
    """Prometheus metrics of this process (docs/server.md#metrics)."""
    return Response(await scrape(manager), media_type=CONTENT_TYPE_LATEST)


@router.get("/v1/health")
async def health(manager: ManagerDep, caller: CallerDep) -> Response:
    """The manager's health check: storage, schema version, event bus; ``degraded`` with
    the reason while reads are served from caches."""
    return json_response(await manager.health_check())


@router.get("/v1/stats")
async def stats(manager: ManagerDep, caller: CallerDep) -> Response:
    """The manager's performance statistics (operation latencies, cache hit rates)."""
    return json_response(await manager.get_performance_stats())


_RATE_LIMITED = {
    "description": "Too many requests: the error shape, code rate_limited",
    "headers": {"Retry-After": {"description": "seconds to wait", "schema": {"type": "integer"}}},
    "content": {"application/json": {"schema": {"type": "object"}}},
}


def _document_rate_limits(app: FastAPI) -> None:
    """Every /v1 operation may answer 429: say so in the OpenAPI document."""
    make = app.openapi

    def openapi() -> dict[str, Any]:
        fresh = app.openapi_schema is None
        schema = make()
        for path, operations in schema["paths"].items() if fresh else ():
            if path.startswith(LIMITED_PREFIX):
                for operation in operations.values():
                    operation.setdefault("responses", {}).setdefault("429", _RATE_LIMITED)
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def _closing_redis(app: FastAPI, redis: Redis) -> None:
    """Close the server's Redis client when the application shuts down."""
    inner = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(app: Any) -> AsyncIterator[Any]:
        try:
            async with inner(app) as state:
                yield state
        finally:
            await redis.aclose()

    app.router.lifespan_context = lifespan


def install_operations(app: FastAPI, service: Service) -> None:
    """Rate limits (when ``LOREMASTER_RATE_LIMIT`` is above 0) inside, request ids, the
    access log and latency metrics outside every route. Buckets are in Redis when the
    manager has a Redis URL; /readyz pings the same client."""
    url = service.manager.settings.redis_url
    redis = None
    if url is not None:
        redis = redis_client(url, timeout=REDIS_SECONDS, client_name="loremaster-server")
        _closing_redis(app, redis)
    app.state.redis = redis
    rate, burst = service.settings.rate_limit, service.settings.rate_burst
    if rate > 0:
        buckets: TokenBuckets = (
            MemoryBuckets(rate, burst) if redis is None else RedisBuckets(redis, rate, burst)
        )
        app.add_middleware(RateLimit, buckets=buckets, rate=rate, burst=burst)
        _document_rate_limits(app)
    app.add_middleware(Observe)
