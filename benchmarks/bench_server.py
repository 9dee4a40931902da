"""The server: its overhead over a bare Starlette app, WebSocket fan-out across two
processes, and memory that stays within the cache.

1. GET and PATCH of a context, 32 concurrent clients (raw HTTP/1.1 keep-alive
   connections, one request in flight on each), against a `loremaster serve` process and,
   in the same run, against the floor: `_bare_starlette.py`, a bare Starlette app calling
   the same manager methods on uvicorn with the same settings, on the same database. Each
   client reads or patches a conversation of its own (20 messages, about 11 KB of JSON).
   The server runs with its rate limiter on (a limit no client reaches) and its JSON
   access log, the floor with uvicorn's access log; both log to /dev/null. The two take
   turns, ROUNDS rounds. Requests/s and p50/p99 latency of the best round, and the
   server's CPU time per request (/proc/<pid>/stat, every thread; the least of any
   round): on a shared machine throughput moves with what else runs, CPU per request
   much less. Target: the server's CPU per request <= 1.5x the floor's.
2. WebSocket fan-out: two `loremaster serve` processes on PostgreSQL + Redis, 50 clients
   (25 on each) subscribed to one context over /v1/ws; a PATCH through the first
   process every PACE seconds; the time from sending the PATCH to each client's receipt
   of its event. Target: p99 <= 25 ms on loopback.
3. Memory: a server on SQLite with the default cache (CONTEXT_CACHE_SIZE context rows);
   10,000 conversations of 10 messages created and read through it; its resident set
   (VmRSS of /proc/<pid>/status) sampled every 1,000. Run with the defaults and with
   CONTEXT_CACHE_FALLBACK=false (the fallback keeps the messages of views read lately, a
   bound of its own: docs/decisions.md §77). Reported: MB per context while the caches
   fill, and whether the RSS stays flat once they are full. Target: growth over the
   second half of the contexts <= 10%.

Run: python benchmarks/bench_server.py [--quick]   (--quick: SQLite only, shorter runs)
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import httpx
import orjson
import websockets

from loremaster import ContextManager, ConversationContext

from _common import QUICK, messages, postgres_database, row

HERE = Path(__file__).parent
REDIS_URL = os.environ.get("LOREMASTER_BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
CLIENTS = 32
WARM_SECONDS = 1.0
MEASURE_SECONDS = 2.0 if QUICK else 5.0
ROUNDS = 1 if QUICK else 3
TARGET_OVERHEAD = 1.5
FANOUT_CLIENTS = 50
FANOUT_UPDATES = 60 if QUICK else 300
PACE = 0.02
TARGET_FANOUT_P99_MS = 25.0
RSS_CONTEXTS = 3_000 if QUICK else 10_000
RSS_EVERY = 1_000
MEMORY_MESSAGES = 10
TARGET_RSS_GROWTH = 0.10
STARTUP_SECONDS = 60.0
UNLIMITED = {"LOREMASTER_RATE_LIMIT": "1000000000", "LOREMASTER_RATE_BURST": "1000000000"}
"""The rate limiter stays on (its cost is measured) with a limit no client reaches."""


# -- server processes -------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Server:
    url: str
    pid: int


def serve_command(port: int) -> list[str]:
    return [sys.executable, "-m", "loremaster", "serve", "--port", str(port)]


def floor_command(port: int) -> list[str]:
    return [sys.executable, str(HERE / "_bare_starlette.py"), str(port)]


@contextlib.contextmanager
def running(command: Callable[[int], list[str]], env: Mapping[str, str]) -> Iterator[Server]:
    """A server process on a free port, up once /healthz answers; stopped with SIGTERM."""
    port = free_port()
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("CONTEXT_", "LOREMASTER_"))}
    process = subprocess.Popen(
        command(port),
        env={**clean, **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + STARTUP_SECONDS
        while True:
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{command(port)} did not start")
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            time.sleep(0.1)
        yield Server(url, process.pid)
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


# -- the load: raw HTTP/1.1 over keep-alive connections ---------------------------------


def http_request(method: str, path: str, body: bytes | None = None) -> bytes:
    head = f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
    if body is None:
        return (head + "\r\n").encode()
    return (
        head + f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode() + body


async def exchange(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes
) -> int:
    """Send one request and read its whole answer; its status."""
    writer.write(request)
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.lower() == b"content-length":
            length = int(value)
    await reader.readexactly(length)
    return int(head[9:12])


def cpu_seconds(pid: int) -> float:
    """CPU time the process (every thread of it) has used: user + system."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass
class Load:
    requests_per_second: float
    p50_ms: float
    p99_ms: float
    cpu_ms: float
    """The server's CPU time per request."""
    failures: int


async def load(server: Server, requests: Callable[[int, int], bytes]) -> Load:
    """CLIENTS connections, each sending `requests(client, n)` one after the other for
    WARM_SECONDS (not counted) then MEASURE_SECONDS."""
    host, port = server.url.removeprefix("http://").split(":")
    latencies: list[float] = []
    failures = 0
    measure_from = time.perf_counter() + WARM_SECONDS
    until = measure_from + MEASURE_SECONDS

    async def client(number: int) -> None:
        nonlocal failures
        reader, writer = await asyncio.open_connection(host, int(port))
        n = 0
        try:
            while (now := time.perf_counter()) < until:
                n += 1
                status = await exchange(reader, writer, requests(number, n))
                if now >= measure_from:
                    latencies.append(time.perf_counter() - now)
                    failures += status >= 400
        finally:
            writer.close()

    async def cpu_used() -> float:
        await asyncio.sleep(WARM_SECONDS)
        before = cpu_seconds(server.pid)
        await asyncio.sleep(MEASURE_SECONDS)
        return cpu_seconds(server.pid) - before

    cpu, *_ = await asyncio.gather(cpu_used(), *(client(n) for n in range(CLIENTS)))
    ordered = sorted(latencies)
    return Load(
        len(ordered) / MEASURE_SECONDS,
        statistics.median(ordered) * 1000,
        ordered[int(0.99 * (len(ordered) - 1))] * 1000,
        cpu / len(ordered) * 1000,
        failures,
    )


def get_of(ids: list[str]) -> Callable[[int, int], bytes]:
    prepared = [http_request("GET", f"/v1/contexts/{i}") for i in ids]
    return lambda client, n: prepared[client]


def patch_of(ids: list[str]) -> Callable[[int, int], bytes]:
    def request(client: int, n: int) -> bytes:
        body = orjson.dumps({"data": {"hp": n, "note": "the rogue checks for traps"}})
        return http_request("PATCH", f"/v1/contexts/{ids[client]}", body)

    return request


async def seed(database_url: str, count: int) -> list[str]:
    rng = random.Random(7)
    async with ContextManager(database_url=database_url) as cm:
        return [
            await cm.create_context(
                ConversationContext(title=f"bench {n}", messages=messages(rng, 20))
            )
            for n in range(count)
        ]


async def best_of_rounds(servers: dict[str, Server], ids: list[str]) -> dict[str, Load]:
    """Per server and method, the best of ROUNDS loads (the most requests/s, with the least
    CPU per request of any round), the servers taking turns so that both see the same
    moments of a busy machine."""
    best: dict[str, Load] = {}
    for _ in range(ROUNDS):
        for method, requests in (("GET", get_of(ids)), ("PATCH", patch_of(ids))):
            for name, server in servers.items():
                figures = await load(server, requests)
                key = f"{name} {method}"
                kept = best.setdefault(key, figures)
                if figures.requests_per_second > kept.requests_per_second:
                    best[key] = replace(figures, cpu_ms=kept.cpu_ms)
                best[key].cpu_ms = min(best[key].cpu_ms, figures.cpu_ms)
    return best


async def overhead(backend: str, database_url: str) -> None:
    ids = await seed(database_url, CLIENTS)
    env = {"CONTEXT_DATABASE_URL": database_url}
    with running(serve_command, {**env, **UNLIMITED}) as ours, running(floor_command, env) as floor:
        best = await best_of_rounds({"server": ours, "floor": floor}, ids)
    for method in ("GET", "PATCH"):
        ours_, floor_ = best[f"server {method}"], best[f"floor {method}"]
        label = f"{backend}: {method}"
        row(f"{label} requests/s", ours_.requests_per_second, floor_.requests_per_second)
        row(f"{label} p50 ms", ours_.p50_ms, floor_.p50_ms)
        row(f"{label} p99 ms", ours_.p99_ms, floor_.p99_ms)
        row(f"{label} server CPU ms per request", ours_.cpu_ms, floor_.cpu_ms)
        if ours_.failures or floor_.failures:
            row(f"{label} failed requests", ours_.failures, floor_.failures)
        throughput = floor_.requests_per_second / ours_.requests_per_second
        cpu = ours_.cpu_ms / floor_.cpu_ms
        row(f"{label} server / floor: time per request", f"{throughput:.2f}x")
        row(
            f"{label} server / floor: CPU per request",
            f"{cpu:.2f}x",
            target=f"<= {TARGET_OVERHEAD}x",
            ok=cpu <= TARGET_OVERHEAD and not ours_.failures,
        )


# -- memory -----------------------------------------------------------------------------


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


async def touch_contexts(url: str, count: int, every: Callable[[int], None]) -> None:
    """Create `count` conversations of MEMORY_MESSAGES messages through the server and read
    each back, CLIENTS at a time; `every(done)` after each RSS_EVERY."""
    rng = random.Random(11)
    async with httpx.AsyncClient(base_url=url, timeout=60) as http:

        async def one() -> None:
            body = {
                "context_type": "conversation",
                "title": "memory",
                "messages": [m.model_dump(mode="json") for m in messages(rng, MEMORY_MESSAGES)],
            }
            created = await http.post("/v1/contexts", json=body)
            created.raise_for_status()
            (await http.get(f"/v1/contexts/{created.json()['context_id']}")).raise_for_status()

        for done in range(RSS_EVERY, count + 1, RSS_EVERY):
            for start in range(done - RSS_EVERY, done, CLIENTS):
                await asyncio.gather(*(one() for _ in range(start, min(start + CLIENTS, done))))
            every(done)


async def rss_while_touching(env: Mapping[str, str]) -> dict[int, float]:
    """The server's RSS in MB before (key 0) and after each RSS_EVERY contexts."""
    with tempfile.TemporaryDirectory() as folder:
        database = {"CONTEXT_DATABASE_URL": f"sqlite:///{folder}/memory.db"}
        with running(serve_command, {**database, **UNLIMITED, **env}) as server:
            await touch_contexts(server.url, CLIENTS, lambda done: None)  # warm
            samples = {0: rss_mb(server.pid)}
            await touch_contexts(
                server.url, RSS_CONTEXTS, lambda done: samples.setdefault(done, rss_mb(server.pid))
            )
            return samples


async def memory() -> None:
    cache_size = ContextManager().settings.cache_size
    runs = {"defaults": await rss_while_touching({})}
    if not QUICK:
        runs["fallback off"] = await rss_while_touching({"CONTEXT_CACHE_FALLBACK": "false"})
    print(
        f"\nmemory: RSS of a server on SQLite, CONTEXT_CACHE_SIZE={cache_size}, conversations "
        f"of {MEMORY_MESSAGES} messages created and read"
    )
    print(f"{'figure':<48}" + "".join(f"{name:>13}" for name in runs) + "   target")
    for done in runs["defaults"]:
        row(f"after {done:,} contexts, MB", *(samples[done] for samples in runs.values()))
    row(
        f"first {RSS_EVERY:,} contexts, MB per context",
        *((samples[RSS_EVERY] - samples[0]) / RSS_EVERY for samples in runs.values()),
    )
    half = RSS_CONTEXTS // 2 // RSS_EVERY * RSS_EVERY
    growth = {
        name: (samples[RSS_CONTEXTS] - samples[half]) / samples[half]
        for name, samples in runs.items()
    }
    row(
        f"growth from {half:,} to {RSS_CONTEXTS:,} contexts, %",
        *(g * 100 for g in growth.values()),
        target=f"<= {TARGET_RSS_GROWTH * 100:.0f}% (defaults)",
        ok=growth["defaults"] <= TARGET_RSS_GROWTH,
    )


# -- WebSocket fan-out ------------------------------------------------------------------


async def subscribed(url: str, context_id: str) -> Any:
    socket_ = await websockets.connect(url.replace("http://", "ws://") + "/v1/ws")
    await socket_.send(
        orjson.dumps(
            {"type": "subscribe", "context_id": context_id, "since_revision": None}
        ).decode()
    )
    while orjson.loads(await socket_.recv())["type"] != "subscribed":
        pass
    return socket_


async def fanout(database_url: str) -> None:
    [context_id] = await seed(database_url, 1)
    env = {"CONTEXT_DATABASE_URL": database_url, "CONTEXT_REDIS_URL": REDIS_URL, **UNLIMITED}
    with running(serve_command, env) as first, running(serve_command, env) as second:
        urls = [first.url, second.url]
        sockets = [await subscribed(urls[n % 2], context_id) for n in range(FANOUT_CLIENTS)]
        sent: dict[int, float] = {}
        received: list[list[tuple[int, float]]] = [[] for _ in sockets]

        async def listen(socket_: Any, into: list[tuple[int, float]]) -> None:
            async for text in socket_:
                at = time.perf_counter()
                message = orjson.loads(text)
                if message["type"] == "event":
                    into.append((message["revision"], at))

        listeners = [
            asyncio.create_task(listen(s, r)) for s, r in zip(sockets, received, strict=True)
        ]
        async with httpx.AsyncClient(base_url=first.url, timeout=30) as http:
            for n in range(FANOUT_UPDATES):
                started = time.perf_counter()
                response = await http.patch(f"/v1/contexts/{context_id}", json={"data": {"n": n}})
                sent[response.json()["revision"]] = started
                await asyncio.sleep(max(0.0, PACE - (time.perf_counter() - started)))
        deadline = time.monotonic() + 10
        while any(len(r) < FANOUT_UPDATES for r in received) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        for task in listeners:
            task.cancel()
        for socket_ in sockets:
            await socket_.close()
    latencies = sorted(
        (at - sent[revision]) * 1000
        for into in received
        for revision, at in into
        if revision in sent
    )
    missing = FANOUT_CLIENTS * FANOUT_UPDATES - len(latencies)
    print(
        f"\nWebSocket fan-out: {FANOUT_CLIENTS} clients across 2 processes, "
        f"{FANOUT_UPDATES} PATCHes {PACE * 1000:.0f} ms apart"
    )
    row("PATCH sent -> event received, p50 ms", statistics.median(latencies))
    p99 = latencies[int(0.99 * (len(latencies) - 1))]
    row(
        "PATCH sent -> event received, p99 ms",
        p99,
        target=f"<= {TARGET_FANOUT_P99_MS:g}",
        ok=p99 <= TARGET_FANOUT_P99_MS and not missing,
    )
    row("events not received", f"{missing:,}")


async def main() -> None:
    print(
        f"bench_server: {CLIENTS} clients, {MEASURE_SECONDS:g} s per figure after "
        f"{WARM_SECONDS:g} s of warm-up"
    )
    print(f"{'figure':<48}{'server':>13}{'floor':>13}   target")
    with tempfile.TemporaryDirectory() as folder:
        await overhead("sqlite", f"sqlite:///{folder}/bench.db")
    if not QUICK:
        async with postgres_database() as url:
            await overhead("postgresql", url)
    await memory()
    async with postgres_database() as url:
        await fanout(url)


def run_fast(main: Callable[[], Awaitable[None]]) -> None:
    """On uvloop when installed: the load generator must outrun the server."""
    try:
        import uvloop
    except ImportError:
        asyncio.run(main())
    else:
        uvloop.run(main())


if __name__ == "__main__":
    run_fast(main)
