"""`loremaster mcp` with the official SDK's client: over the in-memory transport, a real
stdio subprocess and streamable HTTP; two bridge processes writing one context at once."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import sys
from collections.abc import AsyncIterator

import httpx
import uvicorn
from fastapi import FastAPI
from mcp.shared.memory import create_connected_server_and_client_session

from _mcp import (
    CLIENT,
    TINY_MODEL,
    USER,
    Notices,
    call,
    http_server,
    http_session,
    list_every_tool,
    mcp_command,
    process_env,
    refused,
    stdio_session,
    whole_suite,
)
from loremaster import Context, ContextManager, LockLost, SessionContext
from loremaster.mcp import asgi_app, build_server
from loremaster.mcp._resources import PAGE

pytest_plugins = ["_redis"]

SUITE_SECONDS = 120


async def test_the_suite_over_the_in_memory_transport(sqlite_url: str) -> None:
    async with (
        asyncio.timeout(SUITE_SECONDS),
        ContextManager(sqlite_url, models=TINY_MODEL) as cm,
    ):
        notices = Notices()
        server = build_server(cm, USER)
        async with create_connected_server_and_client_session(
            server, message_handler=notices.handle, client_info=CLIENT
        ) as session:
            await whole_suite(session, notices, sqlite_url, cm)


async def test_the_suite_on_postgresql_and_redis(postgres_url: str, redis_url: str) -> None:
    """Changes made elsewhere travel on the Redis bus here."""
    async with (
        asyncio.timeout(SUITE_SECONDS),
        ContextManager(postgres_url, redis_url, models=TINY_MODEL) as cm,
    ):
        notices = Notices()
        async with create_connected_server_and_client_session(
            build_server(cm, USER), message_handler=notices.handle, client_info=CLIENT
        ) as session:
            await whole_suite(session, notices, postgres_url, cm, {"CONTEXT_REDIS_URL": redis_url})


async def test_the_suite_over_stdio(sqlite_url: str) -> None:
    async with asyncio.timeout(SUITE_SECONDS), ContextManager(sqlite_url) as checker:
        notices = Notices()
        async with stdio_session(sqlite_url, notices) as session:
            await whole_suite(session, notices, sqlite_url, checker)


async def test_the_suite_over_streamable_http(sqlite_url: str) -> None:
    async with (
        asyncio.timeout(SUITE_SECONDS),
        ContextManager(sqlite_url) as checker,
        http_server(sqlite_url, "--track-session") as (url, process),
    ):
        notices = Notices()
        async with http_session(url, notices) as session:
            await whole_suite(session, notices, sqlite_url, checker)
        # The client ended its HTTP session (DELETE): the bridge closed its session context.
        while [s.state.value for s in await sessions_of(checker)] != ["archived"]:
            await asyncio.sleep(0.05)
        # Loopback only, and no page elsewhere may drive it (DNS rebinding).
        async with httpx.AsyncClient() as raw:
            ping = {"jsonrpc": "2.0", "id": 1, "method": "ping"}
            accept = {"Accept": "application/json, text/event-stream"}
            rebound = await raw.post(url, json=ping, headers={**accept, "Host": "evil.example"})
            assert rebound.status_code == 421
            foreign = await raw.post(
                url, json=ping, headers={**accept, "Origin": "http://evil.example"}
            )
            assert foreign.status_code == 403
        process.send_signal(2)  # Ctrl-C ends it cleanly
        assert await process.wait() == 0


async def sessions_of(cm: ContextManager) -> list[SessionContext]:
    page = await cm.query_contexts(context_type="session", state=None, limit=100)
    archived = await cm.query_contexts(context_type="session", state="archived", limit=100)
    found = [c for c in [*page.items, *archived.items] if isinstance(c, SessionContext)]
    return list({c.context_id: c for c in found}.values())


async def test_track_session_records_each_connection(sqlite_url: str) -> None:
    async with asyncio.timeout(60), ContextManager(sqlite_url) as cm:
        server = build_server(cm, USER, track_session=True)
        async with create_connected_server_and_client_session(
            server, client_info=CLIENT
        ) as session:
            # Recorded before the bridge answers anything after the handshake.
            await session.list_tools()
            [opened] = await sessions_of(cm)
            assert opened.title == "MCP session: suite-client 9.1"
            assert opened.metadata == {
                "mcp": {"client": {"name": "suite-client", "version": "9.1"}}
            }
            assert (opened.user_id, opened.owner_id, opened.state.value) == (USER, USER, "active")
            assert opened.activity_metrics["calls"] == 0
            created = await call(session, "create_context", title="notes")
            await call(session, "get_context", context_id=created["context_id"])
            await refused(session, "get_context", context_id="missing")
            during = await cm.get_context(opened.context_id)
            assert isinstance(during, SessionContext)
            assert during.activity_metrics["calls"] == 3
            assert during.activity_metrics["tools"] == {"create_context": 1, "get_context": 2}
            assert during.activity_metrics["last_tool"] == "get_context"
        closed = await cm.get_context(opened.context_id)
        assert isinstance(closed, SessionContext)
        assert closed.state.value == "archived"
        assert "disconnected_at" in closed.activity_metrics
        assert closed.activity_metrics["calls"] == 3  # merged, not replaced
        # Its own bookkeeping is not an agent's write: no tool on those events.
        events = await cm.get_events(opened.context_id)
        assert [e.tool for e in events] == [None] * len(events)


async def test_track_session_over_stdio_closes_when_the_client_leaves(sqlite_url: str) -> None:
    async with asyncio.timeout(60):
        async with stdio_session(sqlite_url, Notices(), "--track-session") as session:
            await call(session, "query_contexts")
        async with ContextManager(sqlite_url) as cm:
            [closed] = await sessions_of(cm)
            assert closed.metadata["mcp"]["client"]["name"] == "suite-client"
            assert closed.state.value == "archived"
            assert closed.activity_metrics["tools"] == {"query_contexts": 1}


async def test_two_bridge_processes_writing_one_context_lose_nothing(sqlite_url: str) -> None:
    writes = 25
    async with ContextManager(sqlite_url) as cm:
        context_id = await cm.create_context(
            {"context_type": "conversation", "title": "shared log", "data": {}}, user_id=USER
        )

    async def agent(session: object, name: str) -> None:
        for n in range(writes):
            await call(
                session,  # type: ignore[arg-type]
                "append_messages",
                context_id=context_id,
                messages=[{"role": "user", "content": f"{name} says {n}"}],
            )
            await call(
                session,  # type: ignore[arg-type]
                "update_context",
                context_id=context_id,
                changes={"data": {f"{name}-{n}": n}},
            )

    async with (
        asyncio.timeout(120),
        stdio_session(sqlite_url, Notices()) as one,
        stdio_session(sqlite_url, Notices()) as two,
    ):
        await asyncio.gather(agent(one, "one"), agent(two, "two"))

    async with ContextManager(sqlite_url) as cm:
        context = await cm.get_context(context_id)
        events = await cm.get_events(context_id)
    texts = [m.text for m in context.messages]  # type: ignore[attr-defined]
    for name in ("one", "two"):
        assert [t for t in texts if t.startswith(name)] == [
            f"{name} says {n}" for n in range(writes)
        ]
    assert context.data == {f"{name}-{n}": n for name in ("one", "two") for n in range(writes)}
    assert [e.revision for e in events] == list(range(1, 1 + 1 + 4 * writes))
    tools = [e.tool for e in events[1:]]
    assert tools.count("mcp:append_messages") == tools.count("mcp:update_context") == 2 * writes


async def test_no_input_stops_the_stdio_server(sqlite_url: str) -> None:
    """Lines that are not JSON-RPC, requests before initializing, a client calling itself
    by a 6,000-character name (and a NUL for a version), arguments of the wrong shape: each
    gets an error or is dropped, and the server answers what follows."""
    lines = [
        "this is not json",
        '{"jsonrpc": "2.0", "id": 1, "method": "tools/list"}',
        json.dumps(
            {
                "jsonrpc": "2.0",
                "id": 2,
                "method": "initialize",
                "params": {
                    "protocolVersion": "2025-06-18",
                    "capabilities": {},
                    "clientInfo": {"name": "raw" * 2000, "version": "\u0000"},
                },
            }
        ),
        '{"jsonrpc": "2.0", "method": "notifications/initialized"}',
        '{"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {"name": "get_context", '
        '"arguments": [1, 2]}}',
        '{"jsonrpc": "2.0", "id": 4, "method": "tools/call", "params": {"name": "create_context", '
        '"arguments": {"title": "' + "x" * 2000 + '"}}}',
        '{"jsonrpc": "2.0", "id": 5, "method": "resources/read", "params": {"uri": "file:///etc/passwd"}}',
        '{"jsonrpc": "2.0", "id": 6, "method": "no/such/method"}',
        '{"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": {"name": "create_context", '
        '"arguments": {"title": "still serving"}}}',
    ]
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        *mcp_command(sqlite_url, "--track-session"),
        env=process_env(),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert process.stdin is not None
    assert process.stdout is not None
    answers: dict[int, dict[str, object]] = {}
    try:
        async with asyncio.timeout(30):
            for line in lines:
                process.stdin.write(line.encode() + b"\n")
            await process.stdin.drain()
            while len(answers) < 7:
                message = json.loads(await process.stdout.readline())
                if "id" in message:
                    answers[message["id"]] = message
    finally:
        process.stdin.close()
        async with asyncio.timeout(15):
            await process.wait()
    assert "error" in answers[1]  # before initializing
    assert answers[2]["result"]["serverInfo"]["name"] == "loremaster"  # type: ignore[index]
    assert "error" in answers[3] or answers[3]["result"]["isError"]  # type: ignore[index]
    assert answers[4]["result"]["structuredContent"]["error"]["code"] == "validation_failed"  # type: ignore[index]
    assert answers[5]["error"]["data"]["code"] == "validation_failed"  # type: ignore[index]
    assert "error" in answers[6]
    assert answers[7]["result"]["structuredContent"]["title"] == "still serving"  # type: ignore[index]
    assert process.returncode == 0


async def test_the_asgi_app_mounts_in_a_fastapi_app(sqlite_url: str) -> None:
    """What `loremaster serve` will do: mount `asgi_app` and run its lifespan in its own."""
    async with asyncio.timeout(60), ContextManager(sqlite_url) as cm:
        mcp_app = asgi_app(cm, USER)

        @contextlib.asynccontextmanager
        async def lifespan(app: FastAPI) -> AsyncIterator[None]:
            async with mcp_app.lifespan():
                yield

        app = FastAPI(lifespan=lifespan)
        app.mount("/mcp", mcp_app)
        sock = socket.create_server(("127.0.0.1", 0))
        server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
        serving = asyncio.create_task(server.serve(sockets=[sock]))
        try:
            while not server.started:
                await asyncio.sleep(0.01)
            url = f"http://127.0.0.1:{sock.getsockname()[1]}/mcp/"
            async with http_session(url, Notices()) as session:
                await list_every_tool(session)
                made = await call(session, "create_context", title="mounted")
        finally:
            server.should_exit = True
            await serving
            sock.close()
        assert [e.tool for e in await cm.get_events(made["context_id"])] == ["mcp:create_context"]


def test_the_error_codes_are_the_servers() -> None:
    """The bridge reports each library error under the code the server gives it: the
    error's own, distinct for every error the server gives a status."""
    from loremaster.server._problems import _STATUSES, from_library

    for kind, _ in _STATUSES:
        assert "code" in vars(kind), kind
    assert len({kind.code for kind, _ in _STATUSES}) == len(_STATUSES)
    assert from_library(LockLost("c", "dm", 3)).code == LockLost.code == "lock_lost"


async def test_resources_are_listed_a_page_at_a_time(sqlite_url: str) -> None:
    async with asyncio.timeout(60), ContextManager(sqlite_url) as cm:
        ids = await cm.create_contexts(
            [Context(title=f"room {n}") for n in range(PAGE + 10)], user_id=USER
        )
        await cm.create_context(Context(title="not dm's"), user_id="stranger")
        async with create_connected_server_and_client_session(build_server(cm, USER)) as client:
            first = await client.list_resources()
            assert first.nextCursor is not None
            second = await client.list_resources(first.nextCursor)
            assert second.nextCursor is None
    uris = [str(r.uri) for page in (first, second) for r in page.resources]
    contexts = [u for u in uris if not u.endswith(("/messages", "/history"))]
    assert len(contexts) == len(set(contexts)) == PAGE + 10  # each once; the stranger's not
    assert set(contexts) == {f"loremaster://contexts/{cid}" for cid in ids}
    assert len(first.resources) == 2 * PAGE  # each with its history
