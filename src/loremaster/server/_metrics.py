"""The server's Prometheus metrics (served at ``/metrics``)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

__all__ = ["EVENTS_DELIVERED", "REQUEST_SECONDS", "SSE_CONNECTIONS", "WS_CONNECTIONS"]

REQUEST_SECONDS = Histogram(
    "loremaster_http_request_seconds",
    "HTTP request latency by route template, method and status",
    ["route", "method", "status"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
WS_CONNECTIONS = Gauge("loremaster_websocket_connections", "open WebSocket connections")
SSE_CONNECTIONS = Gauge("loremaster_sse_connections", "open server-sent event streams")
EVENTS_DELIVERED = Counter(
    "loremaster_events_delivered_total", "context events sent to clients", ["transport"]
)
