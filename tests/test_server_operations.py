"""The server's operations over real server processes: rate limits (in one process and
shared through Redis), request ids, JSON logs, denied requests logged, /metrics, /readyz,
and `loremaster serve --demo`."""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
import websockets
from redis import Redis as SyncRedis
from websockets.exceptions import InvalidStatus

from _postgres import PrivatePostgres, private_postgres  # noqa: F401
from _redis import PrivateRedis, private_redis, redis_url  # noqa: F401
from _server import ServerProcess, StartServer, local_server, start_server  # noqa: F401

DEADLINE_SECONDS = 15.0
BANNER = "loremaster serving on "
"""The one line `loremaster serve` prints before the server logs (on stdout, not a log)."""


def poll(check: Callable[[], Any], seconds: float = DEADLINE_SECONDS) -> Any:
    """`check()` once it returns something true, polled until the deadline."""
    deadline = time.monotonic() + seconds
    while True:
        result = check()
        if result or time.monotonic() > deadline:
            return result
        time.sleep(0.05)


def log_lines(server: ServerProcess) -> list[dict[str, Any]]:
    """The server's log, every line parsed as the JSON object it must be."""
    lines = server.output().splitlines()
    return [json.loads(line) for line in lines if line and not line.startswith(BANNER)]


def logged(server: ServerProcess, **fields: Any) -> list[dict[str, Any]]:
    """The log lines having all of `fields` (polled: a line is written after the answer)."""

    def matching() -> list[dict[str, Any]]:
        return [e for e in log_lines(server) if all(e.get(k) == v for k, v in fields.items())]

    found: list[dict[str, Any]] = poll(matching)
    return found


def error_of(response: httpx.Response) -> dict[str, Any]:
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "details"}
    error: dict[str, Any] = body["error"]
    return error


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def limited(rate: float, burst: int, **env: str) -> dict[str, str]:
    return {"LOREMASTER_RATE_LIMIT": str(rate), "LOREMASTER_RATE_BURST": str(burst), **env}


# -- rate limits ------------------------------------------------------------------------


def documented_statuses(http: httpx.Client) -> set[str]:
    """The statuses the OpenAPI document gives GET /v1/contexts."""
    openapi = http.get("/openapi.json").json()
    return set(openapi["paths"]["/v1/contexts"]["get"]["responses"])


def assert_rate_limited(response: httpx.Response) -> int:
    assert response.status_code == 429, response.text
    retry_after = response.headers["Retry-After"]
    assert retry_after.isdigit()
    assert int(retry_after) >= 1
    error = error_of(response)
    assert error["code"] == "rate_limited"
    assert error["details"] == {"retry_after": int(retry_after)}
    return int(retry_after)


def test_a_user_over_the_limit_gets_429_others_and_the_probes_do_not(
    start_server: StartServer,  # noqa: F811
) -> None:
    server = start_server(env=limited(1, 3, LOREMASTER_API_KEYS="key-a=alice,key-b=bob"))
    with httpx.Client(base_url=server.url, timeout=10) as http:
        for _ in range(3):
            assert http.get("/v1/contexts", headers=bearer("key-a")).status_code == 200
        refused = http.get("/v1/contexts", headers=bearer("key-a"))
        refused_at = time.monotonic()
        retry_after = assert_rate_limited(refused)
        assert http.get("/v1/contexts", headers=bearer("key-b")).status_code == 200
        for path in ("/healthz", "/readyz", "/metrics") * 3:
            assert http.get(path).status_code == 200, path

        again = poll(lambda: http.get("/v1/contexts", headers=bearer("key-a")).status_code == 200)
        assert again
        assert time.monotonic() - refused_at <= retry_after + 1
        assert "429" in documented_statuses(http)


def test_requests_that_do_not_authenticate_are_limited_by_address(
    start_server: StartServer,  # noqa: F811
) -> None:
    server = start_server(env=limited(0.2, 2, LOREMASTER_API_KEYS="key-a=alice"))
    with httpx.Client(base_url=server.url, timeout=10) as http:
        statuses = [http.get("/v1/contexts", headers=bearer("guess")).status_code for _ in "abc"]
        assert statuses == [401, 401, 429]
        assert http.get("/v1/contexts", headers=bearer("key-a")).status_code == 200


def test_limits_are_off_at_zero(start_server: StartServer) -> None:  # noqa: F811
    server = start_server(env=limited(0, 1))
    with httpx.Client(base_url=server.url, timeout=10) as http:
        assert {http.get("/v1/contexts").status_code for _ in range(20)} == {200}
        assert "429" not in documented_statuses(http)


async def test_websocket_handshakes_are_counted_and_carry_the_request_id(
    start_server: StartServer,  # noqa: F811
) -> None:
    server = start_server(env=limited(0.2, 2))
    socket_url = server.url.replace("http://", "ws://") + "/v1/ws"
    async with websockets.connect(socket_url, additional_headers={"X-Request-ID": "ws-1"}) as ws:
        assert ws.response.headers["X-Request-ID"] == "ws-1"
    assert httpx.get(f"{server.url}/v1/contexts").status_code == 200
    with pytest.raises(InvalidStatus) as refused:
        await websockets.connect(socket_url)
    assert refused.value.response.status_code == 429
    assert int(refused.value.response.headers["Retry-After"]) >= 1
    assert json.loads(refused.value.response.body or b"")["error"]["code"] == "rate_limited"
    [entry] = logged(server, status=429)
    assert (entry["path"], entry["level"]) == ("/v1/ws", "warning")


@pytest.fixture
def shared_user(redis_url: str) -> Iterator[str]:  # noqa: F811
    """A user of this test's own; its bucket is removed from Redis afterwards."""
    user = f"user-{uuid.uuid4().hex[:12]}"
    yield user
    with SyncRedis.from_url(redis_url) as client:
        client.delete(f"loremaster:ratelimit:user:{user}")


def test_two_processes_sharing_redis_share_the_bucket(
    start_server: StartServer,  # noqa: F811
    redis_url: str,  # noqa: F811
    shared_user: str,
) -> None:
    env = limited(0.2, 4, LOREMASTER_API_KEYS=f"key={shared_user}", CONTEXT_REDIS_URL=redis_url)
    servers = [start_server(env=env), start_server(env=env)]
    with httpx.Client(timeout=10, headers=bearer("key")) as http:
        statuses = [http.get(f"{servers[n % 2].url}/v1/contexts").status_code for n in range(6)]
    assert statuses == [200, 200, 200, 200, 429, 429]
    with SyncRedis.from_url(redis_url) as client:
        assert client.exists(f"loremaster:ratelimit:user:{shared_user}")


async def test_without_redis_each_process_limits_on_its_own_and_is_not_ready(
    start_server: StartServer,  # noqa: F811
    private_redis: PrivateRedis,  # noqa: F811
) -> None:
    env = limited(0.2, 3, CONTEXT_REDIS_URL=private_redis.url)
    server = start_server(env=env)
    with httpx.Client(base_url=server.url, timeout=10) as http:
        assert http.get("/readyz").json() == {
            "status": "ok",
            "database": {"status": "ok"},
            "redis": {"status": "ok"},
        }
        assert http.get("/v1/contexts").status_code == 200
        await private_redis.stop()
        statuses = [http.get("/v1/contexts").status_code for _ in range(4)]
        assert statuses == [200, 200, 200, 429]  # a full bucket of the process's own
        not_ready = http.get("/readyz")
        assert not_ready.status_code == 503
        assert not_ready.json()["redis"]["status"] == "unavailable"
        assert not_ready.json()["database"] == {"status": "ok"}
    assert logged(server, logger="loremaster.server", level="warning")[0]["message"].startswith(
        "rate limits are per process until Redis answers again"
    )


# -- logs and request ids ---------------------------------------------------------------


def test_denied_requests_are_logged_with_user_and_route(
    start_server: StartServer,  # noqa: F811
) -> None:
    server = start_server(env=limited(0.2, 3, LOREMASTER_API_KEYS="key-gm=dm,key-r=reader"))
    with httpx.Client(base_url=server.url, timeout=10) as http:
        created = http.post(
            "/v1/contexts",
            json={
                "context_type": "conversation",
                "title": "t",
                "permissions": {"reader": ["read"]},
            },
            headers=bearer("key-gm"),
        )
        assert created.status_code == 201, created.text
        url = f"/v1/contexts/{created.json()['context_id']}"
        assert http.get(url).status_code == 401
        assert http.patch(url, json={"title": "mine"}, headers=bearer("key-r")).status_code == 403
        assert http.get(url, headers=bearer("key-r")).status_code == 200
        assert http.get(url, headers=bearer("key-r")).status_code == 200
        assert http.get(url, headers=bearer("key-r")).status_code == 429

    template = "/v1/contexts/{context_id}"
    for status, user in ((401, None), (403, "reader"), (429, "reader")):
        [entry] = logged(server, status=status)
        assert entry["level"] == "warning"
        assert entry["message"] == f"{entry['method']} {template} {status} denied"
        assert (entry["user"], entry["route"], entry["path"]) == (user, template, url)
    assert all(e["level"] == "info" for e in logged(server, status=200))


def test_request_ids_are_echoed_when_well_formed_else_made(
    local_server: ServerProcess,  # noqa: F811
) -> None:
    with httpx.Client(base_url=local_server.url, timeout=10) as http:
        given = http.get("/v1/contexts", headers={"X-Request-ID": "trace-42.a:b"})
        assert given.headers["X-Request-ID"] == "trace-42.a:b"
        made = [
            http.get("/v1/contexts", headers=headers).headers["X-Request-ID"]
            for headers in (
                {},
                {},
                {"X-Request-ID": "not well formed"},
                {"X-Request-ID": "x" * 200},
            )
        ]
        assert all(re.fullmatch("[0-9a-f]{32}", request_id) for request_id in made)
        assert len(set(made)) == 4
        failed = http.get("/v1/contexts/not-a-uuid", headers={"X-Request-ID": "trace-43"})
        assert failed.status_code == 404
        assert failed.headers["X-Request-ID"] == "trace-43"
    [entry] = logged(local_server, request_id="trace-42.a:b")
    assert entry["route"] == "/v1/contexts"
    assert logged(local_server, request_id=made[0])


def test_every_log_line_is_one_json_object(local_server: ServerProcess) -> None:  # noqa: F811
    with httpx.Client(base_url=local_server.url, timeout=10) as http:
        http.get("/v1/contexts", headers={"X-Request-ID": "json-lines"})
    logged(local_server, request_id="json-lines")
    entries = log_lines(local_server)
    assert {"uvicorn.error", "loremaster.access"} <= {e["logger"] for e in entries}
    for entry in entries:
        assert {"time", "level", "logger", "message"} <= set(entry)
    [access] = logged(local_server, request_id="json-lines")
    assert set(access) == {
        "time",
        "level",
        "logger",
        "message",
        "request_id",
        "method",
        "route",
        "path",
        "status",
        "duration_ms",
        "user",
        "client",
    }
    assert (access["method"], access["status"], access["user"]) == ("GET", 200, "local")
    assert access["duration_ms"] > 0


# -- metrics and readiness --------------------------------------------------------------


def test_metrics_count_routes_by_template_with_the_managers_figures(
    local_server: ServerProcess,  # noqa: F811
) -> None:
    with httpx.Client(base_url=local_server.url, timeout=10) as http:
        created = http.post("/v1/contexts", json={"context_type": "conversation", "title": "m"})
        context_id = created.json()["context_id"]
        for _ in range(3):
            assert http.get(f"/v1/contexts/{context_id}").status_code == 200
        nowhere = f"/v1/nowhere/{uuid.uuid4()}"
        assert http.get(nowhere).status_code == 404
        response = http.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    text = response.text
    assert context_id not in text
    assert nowhere not in text
    counts = dict(
        re.findall(r"^loremaster_http_request_seconds_count\{(.*)\} ([\d.]+)$", text, re.M)
    )
    get_one = 'method="GET",route="/v1/contexts/{context_id}",status="200"'
    assert float(counts[get_one]) >= 3
    assert 'method="GET",route="unmatched",status="404"' in counts
    for name in (
        "loremaster_websocket_connections",
        "loremaster_sse_connections",
        "loremaster_cache_hits_total",
        "loremaster_cache_hit_ratio",
        "loremaster_cache_entries",
        'loremaster_operations_total{operation="get_context"}',
        "loremaster_manager_stats_up 1.0",
        'loremaster_contexts{context_type="conversation",state="active"}',
        "process_resident_memory_bytes",
    ):
        assert name in text, name


def test_pool_usage_is_in_the_metrics_on_postgresql(
    start_server: StartServer,  # noqa: F811
    postgres_url: str,
) -> None:
    server = start_server(env={"CONTEXT_DATABASE_URL": postgres_url})
    text = httpx.get(f"{server.url}/metrics", timeout=10).text
    assert 'loremaster_db_pool_connections{state="in_use"}' in text
    assert re.search(r"^loremaster_db_pool_max 20\.0$", text, re.M)


async def test_readyz_is_503_while_the_database_is_unreachable(
    start_server: StartServer,  # noqa: F811
    private_postgres: PrivatePostgres,  # noqa: F811
) -> None:
    server = start_server(env={"CONTEXT_DATABASE_URL": private_postgres.url})
    with httpx.Client(base_url=server.url, timeout=20) as http:
        assert http.get("/readyz").status_code == 200
        await private_postgres.stopped()
        started = time.monotonic()
        not_ready = http.get("/readyz")
        assert not_ready.status_code == 503
        assert time.monotonic() - started < 10
        assert not_ready.json()["status"] == "unavailable"
        assert not_ready.json()["database"]["status"] != "ok"
        assert http.get("/healthz").status_code == 200
        await private_postgres.started()
        assert poll(lambda: http.get("/readyz").status_code == 200, seconds=30)


# -- the demo ---------------------------------------------------------------------------


def test_serve_demo_seeds_an_empty_database_once_then_serves_it(
    start_server: StartServer,  # noqa: F811
) -> None:
    server = start_server(args=("--demo",))
    titles = sorted(c["title"] for c in httpx.get(f"{server.url}/v1/contexts").json()["items"])
    assert "Curse of the Red Dragon — session 1" in titles
    server.stop()
    again = start_server(args=("--demo",))
    assert titles == sorted(
        c["title"] for c in httpx.get(f"{again.url}/v1/contexts").json()["items"]
    )
