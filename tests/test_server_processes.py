"""Many server processes as one: two `loremaster serve` processes on one PostgreSQL and one
Redis. A change through either reaches the WebSocket and SSE clients of both; a server
killed with SIGKILL mid-stream and started again loses its clients nothing: they resume
with ``since_revision`` and ``Last-Event-ID`` and see every revision exactly once."""

from __future__ import annotations

import asyncio
import signal

import httpx
import pytest
from websockets.exceptions import ConnectionClosed

from _live import WAIT, create, open_socket, open_stream, patch
from _redis import redis_url  # noqa: F401
from _server import ServerProcess, StartServer, start_server  # noqa: F401

WRITES = 80


@pytest.fixture
def shared(postgres_url: str, redis_url: str) -> dict[str, str]:  # noqa: F811
    """The settings of servers that are one: the same database and the same Redis."""
    return {"CONTEXT_DATABASE_URL": postgres_url, "CONTEXT_REDIS_URL": redis_url}


async def start_two(
    start_server: StartServer,  # noqa: F811
    env: dict[str, str],
) -> tuple[ServerProcess, ServerProcess]:
    """Two servers on `env`, started side by side (each takes seconds to start)."""
    one, other = await asyncio.gather(
        asyncio.to_thread(start_server, env=env), asyncio.to_thread(start_server, env=env)
    )
    return one, other


async def test_a_change_through_one_server_reaches_the_clients_of_the_other(
    start_server: StartServer,  # noqa: F811
    shared: dict[str, str],
) -> None:
    one, other = await start_two(start_server, shared)
    async with (
        httpx.AsyncClient(base_url=one.url, timeout=30) as http_one,
        httpx.AsyncClient(base_url=other.url, timeout=30) as http_other,
    ):
        context_id = await create(http_one, data={})
        async with (
            open_socket(other.url) as watcher,
            open_stream(http_other, context_id) as stream,
            open_socket(one.url) as writer,
        ):
            await watcher.subscribe(context_id)
            await patch(http_one, context_id, {"data": {"hp": 10}})
            ack = await writer.request(
                type="update", request_id=1, context_id=context_id, changes={"title": "moved"}
            )
            assert ack == {"type": "ack", "request_id": 1, "revision": 3}
            # Well within the 30-second poll that would find them without Redis.
            async with asyncio.timeout(5):
                heard = await watcher.events(2)
                streamed = await stream.changes(2)
            assert [e["revision"] for e in heard] == [2, 3]
            assert [int(e["id"]) for e in streamed] == [2, 3]
            assert heard[0]["changes"] == [{"op": "add", "path": "/data/hp", "value": 10}]


async def test_presence_travels_between_servers(
    start_server: StartServer,  # noqa: F811
    shared: dict[str, str],
) -> None:
    one, other = await start_two(start_server, shared)
    async with httpx.AsyncClient(base_url=one.url, timeout=30) as http:
        context_id = await create(http, {"X-Loremaster-User": "dm"}, collaborators=["bob"])
    async with (
        open_socket(one.url, query="user=dm") as dm,
        open_socket(other.url, query="user=bob") as bob,
    ):
        await dm.subscribe(context_id)
        assert (await dm.next(presence=True))["members"] == []
        await bob.send(type="presence", context_id=context_id, typing=True)
        seen = await dm.next(presence=True)
        assert [(m["user_id"], m["typing"]) for m in seen["members"]] == [("bob", True)]


async def follow_by_socket(url: str, context_id: str, target: int) -> tuple[list[int], int]:
    """Every revision after 1 up to `target` through a WebSocket, reconnecting (from the
    last revision seen) whenever the server goes away; and how many connections it took."""
    seen: list[int] = []
    connections = 0
    while not seen or seen[-1] < target:
        try:
            async with open_socket(url) as ws:
                connections += 1
                await ws.subscribe(context_id, since_revision=seen[-1] if seen else 1)
                while not seen or seen[-1] < target:
                    seen += [e["revision"] for e in await ws.events(1)]
        except (ConnectionClosed, OSError):
            await asyncio.sleep(0.05)
    return seen, connections


async def follow_by_stream(url: str, context_id: str, target: int) -> tuple[list[int], int]:
    """The same through server-sent events, resuming with Last-Event-ID."""
    seen: list[int] = []
    connections = 0
    async with httpx.AsyncClient(base_url=url, timeout=30) as http:
        while not seen or seen[-1] < target:
            resume = {"Last-Event-ID": str(seen[-1] if seen else 1)}
            try:
                async with open_stream(http, context_id, resume) as stream:
                    connections += 1
                    while not seen or seen[-1] < target:
                        seen += [int(e["id"]) for e in await stream.changes(1)]
            except httpx.TransportError:
                await asyncio.sleep(0.05)
    return seen, connections


async def test_a_killed_server_s_clients_resume_on_its_restart_and_lose_nothing(
    start_server: StartServer,  # noqa: F811
    shared: dict[str, str],
) -> None:
    doomed, steady = await start_two(start_server, shared)
    async with httpx.AsyncClient(base_url=steady.url, timeout=30) as http:
        context_id = await create(http, data={})
        target = WRITES + 1
        followers = [
            asyncio.create_task(follow(doomed.url, context_id, target))
            for follow in (follow_by_socket, follow_by_stream)
        ]

        async def write() -> None:
            for n in range(WRITES):
                await patch(http, context_id, {"data": {"n": n}})
                await asyncio.sleep(0.02)

        writer = asyncio.create_task(write())
        await until_revision(http, context_id, WRITES // 4)
        restarted = await asyncio.to_thread(kill_and_restart, doomed, start_server, shared)
        assert restarted.port == doomed.port
        await writer
        async with asyncio.timeout(WAIT * 2):
            results = await asyncio.gather(*followers)
    for seen, connections in results:
        assert seen == list(range(2, target + 1))  # every revision, once, in order
        assert connections >= 2


async def until_revision(http: httpx.AsyncClient, context_id: str, revision: int) -> None:
    async with asyncio.timeout(WAIT):
        while (await http.get(f"/v1/contexts/{context_id}")).json()["revision"] < revision:
            await asyncio.sleep(0.02)


def kill_and_restart(
    server: ServerProcess,
    start: StartServer,
    env: dict[str, str],
) -> ServerProcess:
    server.stop(signal.SIGKILL)
    return start(env=env, port=server.port)
