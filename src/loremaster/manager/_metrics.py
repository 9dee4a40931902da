"""In-process performance figures: per-operation counts and latency percentiles."""

from __future__ import annotations

import functools
import time
from collections import defaultdict, deque
from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar, cast

__all__ = ["Metrics", "measured"]

_SAMPLES = 2048


def _percentile(ordered: list[float], fraction: float) -> float:
    index = min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))
    return ordered[index]


@dataclass
class _Operation:
    count: int = 0
    errors: int = 0
    total_seconds: float = 0.0
    recent: deque[float] = field(default_factory=lambda: deque(maxlen=_SAMPLES))

    def summary(self) -> dict[str, Any]:
        ordered = sorted(self.recent)
        figures: dict[str, Any] = {"count": self.count, "errors": self.errors}
        if ordered:
            figures |= {
                "mean_ms": round(self.total_seconds / self.count * 1000, 3),
                "p50_ms": round(_percentile(ordered, 0.50) * 1000, 3),
                "p95_ms": round(_percentile(ordered, 0.95) * 1000, 3),
                "p99_ms": round(_percentile(ordered, 0.99) * 1000, 3),
                "max_ms": round(ordered[-1] * 1000, 3),
            }
        return figures


@dataclass
class Metrics:
    """Latencies of the last 2,048 calls of each operation, and cache hits and misses."""

    operations: dict[str, _Operation] = field(default_factory=lambda: defaultdict(_Operation))
    cache_hits: int = 0
    cache_misses: int = 0

    @contextmanager
    def measure(self, operation: str) -> Iterator[None]:
        started = time.perf_counter()
        entry = self.operations[operation]
        try:
            yield
        except BaseException:
            entry.errors += 1
            raise
        finally:
            elapsed = time.perf_counter() - started
            entry.count += 1
            entry.total_seconds += elapsed
            entry.recent.append(elapsed)

    def cache_lookup(self, hit: bool) -> None:
        if hit:
            self.cache_hits += 1
        else:
            self.cache_misses += 1

    def snapshot(self) -> dict[str, Any]:
        lookups = self.cache_hits + self.cache_misses
        return {
            "operations": {name: op.summary() for name, op in sorted(self.operations.items())},
            "cache": {
                "hits": self.cache_hits,
                "misses": self.cache_misses,
                "hit_rate": round(self.cache_hits / lookups, 4) if lookups else None,
            },
        }


_Method = TypeVar("_Method", bound=Callable[..., Coroutine[Any, Any, Any]])


class _Measurable(Protocol):
    _core: _HasMetrics


class _HasMetrics(Protocol):
    metrics: Metrics


def measured(method: _Method) -> _Method:
    """A facade method, counted with its latency in the statistics under its name."""
    name = method.__name__

    @functools.wraps(method)
    async def counted(self: _Measurable, *args: Any, **kwargs: Any) -> Any:
        with self._core.metrics.measure(name):
            return await method(self, *args, **kwargs)

    return cast(_Method, counted)
