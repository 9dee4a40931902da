"""Liveness, readiness, health and statistics."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.responses import Response

from ._http import json_response
from ._service import CallerDep, ManagerDep

__all__ = ["router"]

router = APIRouter(tags=["operations"])


@router.get("/healthz")
async def liveness() -> Response:
    """The process answers (nothing else is checked)."""
    return json_response({"status": "ok"})


@router.get("/readyz")
async def readiness(manager: ManagerDep) -> Response:
    """The database (and Redis, when configured) answer: 200, else 503."""
    health = await manager.health_check()
    return json_response(health, 200 if health["status"] == "ok" else 503)


@router.get("/v1/health")
async def health(manager: ManagerDep, caller: CallerDep) -> Response:
    """The manager's health check: storage, schema version, event bus; ``degraded`` with
    the reason while reads are served from caches."""
    return json_response(await manager.health_check())


@router.get("/v1/stats")
async def stats(manager: ManagerDep, caller: CallerDep) -> Response:
    """The manager's performance statistics (operation latencies, cache hit rates)."""
    return json_response(await manager.get_performance_stats())
