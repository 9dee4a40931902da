"""What ``/metrics`` answers: the process's own metrics (`_metrics`, and prometheus-client's
process and GC collectors) and the manager's figures read at scrape time: its cache, the
latencies of its operations, the database pool, the contexts stored."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping
from typing import Any

from prometheus_client import REGISTRY, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.metrics_core import Metric

from ..errors import BackendUnavailable
from ..manager import ContextManager
from ..storage import PostgresStorage

__all__ = ["STATS_SECONDS", "scrape"]

STATS_SECONDS = 2.0
"""The longest a scrape waits for the manager's statistics (they count stored contexts);
past it the scrape answers without them and ``loremaster_manager_stats_up`` is 0."""


class _Families:
    """A collector of metric families made already (what `generate_latest` reads)."""

    def __init__(self, families: Iterable[Metric]) -> None:
        self._families = list(families)

    def collect(self) -> Iterable[Metric]:
        return self._families


def _cache(cache: Mapping[str, Any]) -> Iterable[Metric]:
    yield CounterMetricFamily(
        "loremaster_cache_hits", "context cache lookups that hit", value=cache["hits"]
    )
    yield CounterMetricFamily(
        "loremaster_cache_misses", "context cache lookups that missed", value=cache["misses"]
    )
    yield GaugeMetricFamily(
        "loremaster_cache_hit_ratio",
        "hits / lookups of the context cache since the process started",
        value=cache["hit_rate"] or 0.0,
    )
    yield GaugeMetricFamily(
        "loremaster_cache_entries", "contexts in this process's cache", value=cache["entries"]
    )
    yield CounterMetricFamily(
        "loremaster_stale_serves",
        "reads served from caches while the database was unreachable",
        value=cache["stale_serves"],
    )


def _operations(operations: Mapping[str, Mapping[str, Any]]) -> Iterable[Metric]:
    calls = CounterMetricFamily(
        "loremaster_operations", "manager operations called", labels=["operation"]
    )
    errors = CounterMetricFamily(
        "loremaster_operation_errors", "manager operations that raised", labels=["operation"]
    )
    latency = GaugeMetricFamily(
        "loremaster_operation_latency_seconds",
        "latency of the last 2,048 calls of each manager operation",
        labels=["operation", "quantile"],
    )
    for name, figures in operations.items():
        calls.add_metric([name], figures["count"])
        errors.add_metric([name], figures["errors"])
        for quantile, key in (("0.5", "p50_ms"), ("0.99", "p99_ms")):
            if key in figures:
                latency.add_metric([name, quantile], figures[key] / 1000)
    return calls, errors, latency


def _storage(storage: Mapping[str, Any]) -> Iterable[Metric]:
    if "by_type_and_state" not in storage:
        return
    contexts = GaugeMetricFamily(
        "loremaster_contexts", "contexts stored", labels=["context_type", "state"]
    )
    for group in storage["by_type_and_state"]:
        contexts.add_metric([group["context_type"], group["state"]], group["contexts"])
    yield contexts


def _pool(manager: ContextManager) -> Iterable[Metric]:
    storage = manager.storage
    if not isinstance(storage, PostgresStorage):
        return
    try:
        pool = storage.pool
    except BackendUnavailable:
        return
    connections = GaugeMetricFamily(
        "loremaster_db_pool_connections", "PostgreSQL pool connections", labels=["state"]
    )
    connections.add_metric(["in_use"], pool.get_size() - pool.get_idle_size())
    connections.add_metric(["idle"], pool.get_idle_size())
    yield connections
    yield GaugeMetricFamily(
        "loremaster_db_pool_max", "PostgreSQL pool size at most", value=pool.get_max_size()
    )


async def _manager_families(manager: ContextManager) -> list[Metric]:
    try:
        async with asyncio.timeout(STATS_SECONDS):
            stats = await manager.get_performance_stats()
    except (TimeoutError, BackendUnavailable):
        stats = None
    up = GaugeMetricFamily(
        "loremaster_manager_stats_up",
        f"1 if the manager's statistics came within {STATS_SECONDS:g} s",
        value=0 if stats is None else 1,
    )
    families: list[Metric] = [up, *_pool(manager)]
    if stats is not None:
        families += [
            *_cache(stats["cache"]),
            *_operations(stats["operations"]),
            *_storage(stats["storage"]),
        ]
    return families


async def scrape(manager: ContextManager) -> bytes:
    """The Prometheus text exposition of this process."""
    families = _Families(await _manager_families(manager))
    return generate_latest(REGISTRY) + generate_latest(families)
