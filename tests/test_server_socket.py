"""The WebSocket ``/v1/ws`` against real `loremaster serve` processes, with the
`websockets` client: subscriptions (ordered, exactly once, resumable, many per socket),
updates and their answers, presence both ways, authentication and revocation, bad input,
a client that stops reading, and shutdown."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import time
from collections.abc import AsyncIterator

import httpx
import jwt
import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus

from _live import (  # noqa: F401
    KEYS,
    Socket,
    as_user,
    create,
    keyed_server,
    open_socket,
    open_stream,
    patch,
    ws_url,
)
from _server import ServerProcess, StartServer, local_server, start_server  # noqa: F401
from loremaster import ContextManager

UNKNOWN = "00000000-0000-4000-8000-000000000000"


@pytest.fixture
async def http(local_server: ServerProcess) -> AsyncIterator[httpx.AsyncClient]:  # noqa: F811
    async with httpx.AsyncClient(base_url=local_server.url, timeout=30) as client:
        yield client


def revisions(events: list[dict[str, object]]) -> list[object]:
    return [event["revision"] for event in events]


# -- subscriptions -----------------------------------------------------------------------


async def test_each_revision_arrives_once_and_in_order_under_concurrent_writers(
    local_server: ServerProcess,  # noqa: F811
    http: httpx.AsyncClient,
) -> None:
    context_id = await create(http, data={})
    writers, writes = 6, 15
    async with open_socket(local_server.url) as ws, open_socket(local_server.url) as writer:
        subscribed = await ws.subscribe(context_id)
        assert subscribed == {
            "type": "subscribed",
            "context_id": context_id,
            "revision": 1,
            "request_id": f"sub-{context_id}",
        }

        async def write_http(n: int) -> None:
            for k in range(writes):
                await patch(http, context_id, {"data": {f"w{n}": k}})

        async def write_socket() -> None:
            for k in range(writes):
                answer = await writer.request(
                    type="update",
                    request_id=k,
                    context_id=context_id,
                    changes=[{"op": "add", "path": "/data/ws", "value": k}],
                )
                assert answer["type"] == "ack", answer

        await asyncio.gather(*(write_http(n) for n in range(writers)), write_socket())
        total = (writers + 1) * writes
        events = await ws.events(total)
        assert revisions(events) == list(range(2, total + 2))
        assert {e["op"] for e in events} == {"update"}
        pong = await ws.request(type="ping", request_id="after")
        assert pong == {"type": "pong", "request_id": "after"}  # nothing more was queued


async def test_since_revision_replays_the_log_and_many_contexts_share_a_socket(
    local_server: ServerProcess,  # noqa: F811
    http: httpx.AsyncClient,
) -> None:
    rooms = [await create(http, title=f"room {n}") for n in range(3)]
    for n, room in enumerate(rooms):
        for k in range(n + 1):
            await patch(http, room, {"data": {"k": k}})
    async with open_socket(local_server.url) as ws:
        for room in rooms:
            assert (await ws.subscribe(room, since_revision=1))["revision"] == 1
        replayed = await ws.events(1 + 2 + 3)
        for n, room in enumerate(rooms):
            mine = [e["revision"] for e in replayed if e["context_id"] == room]
            assert mine == list(range(2, n + 3))
        await patch(http, rooms[1], {"title": "moved"})
        [moved] = await ws.events(1)
        assert (moved["context_id"], moved["revision"]) == (rooms[1], 4)

        gone = await ws.request(type="unsubscribe", request_id=7, context_id=rooms[1])
        assert gone == {
            "type": "unsubscribed",
            "context_id": rooms[1],
            "reason": "requested",
            "request_id": 7,
        }
        await patch(http, rooms[1], {"title": "unheard"})
        await patch(http, rooms[2], {"title": "heard"})
        [heard] = await ws.events(1)
        assert (heard["context_id"], heard["revision"]) == (rooms[2], 5)

        again = await ws.request(type="subscribe", request_id=8, context_id=rooms[0])
        assert (again["type"], again["code"]) == ("error", "already_subscribed")
        ahead = await ws.request(
            type="subscribe", request_id=9, context_id=rooms[1], since_revision=99
        )
        assert (ahead["type"], ahead["code"]) == ("error", "validation_failed")
        missing = await ws.request(type="unsubscribe", request_id=10, context_id=rooms[1])
        assert (missing["type"], missing["code"]) == ("error", "not_subscribed")


async def test_a_trimmed_log_starts_a_subscription_with_a_snapshot(
    start_server: StartServer,  # noqa: F811
) -> None:
    server = start_server()
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
        context_id = await create(http, data={"hp": 10})
        for hp in range(3):
            await patch(http, context_id, {"data": {"hp": hp}})
        async with ContextManager(
            server.env["CONTEXT_DATABASE_URL"], event_retention_days=1e-9
        ) as cm:
            assert (await cm.run_cleanup()).events_trimmed == 3
        async with open_socket(server.url) as ws:
            await ws.subscribe(context_id, since_revision=1)
            [snapshot] = await ws.events(1)
            assert (snapshot["op"], snapshot["revision"]) == ("snapshot", 4)
            assert snapshot["changes"][0]["value"]["data"] == {"hp": 2}
            await patch(http, context_id, {"data": {"hp": 3}})
            assert revisions(await ws.events(1)) == [5]


# -- updates -----------------------------------------------------------------------------


async def test_updates_are_acknowledged_or_refused_with_the_http_error_codes(
    local_server: ServerProcess,  # noqa: F811
    http: httpx.AsyncClient,
) -> None:
    context_id = await create(http, data={"hp": 10, "xp": 0})
    async with open_socket(local_server.url) as ws:
        ack = await ws.request(
            type="update",
            request_id="a",
            context_id=context_id,
            changes={"data": {"hp": 9}},
            expected_revision=1,
        )
        assert ack == {"type": "ack", "request_id": "a", "revision": 2}

        stale = await ws.request(
            type="update",
            request_id="b",
            context_id=context_id,
            changes={"data": {"hp": 1}},
            expected_revision=1,
        )
        assert stale["type"] == "error"
        assert stale["code"] == "precondition_failed"
        assert stale["details"] == {"expected_revision": 1, "actual_revision": 2}

        settled = await ws.request(
            type="update",
            request_id="c",
            context_id=context_id,
            changes={"data": {"xp": 5}},
            expected_revision=1,
            strategy="automatic_merge",
        )
        assert settled == {"type": "ack", "request_id": "c", "revision": 3}

        invalid = await ws.request(
            type="update", request_id="d", context_id=context_id, changes={"title": 5}
        )
        assert (invalid["type"], invalid["code"]) == ("error", "validation_failed")
        unknown = await ws.request(
            type="update", request_id="e", context_id=UNKNOWN, changes={"title": "x"}
        )
        assert (unknown["type"], unknown["code"]) == ("error", "not_found")
    context = (await http.get(f"/v1/contexts/{context_id}")).json()
    assert (context["revision"], context["data"]) == (3, {"hp": 9, "xp": 5})


async def test_writes_under_a_lock_carry_its_token(
    keyed_server: ServerProcess,  # noqa: F811
) -> None:
    async with httpx.AsyncClient(base_url=keyed_server.url, timeout=30) as http:
        context_id = await create(http, as_user("dm"), collaborators=["bob"])
    # The lock is taken by another process (this one), as behind a load balancer.
    async with ContextManager(keyed_server.env["CONTEXT_DATABASE_URL"]) as cm:
        first = await cm.acquire_context_lock(context_id, "dm", timeout=60)
        await cm.release_context_lock(context_id, "dm")
        lock = await cm.acquire_context_lock(context_id, "dm", timeout=60)
    assert lock.token > first.token
    async with open_socket(keyed_server.url, as_user("bob")) as bob:
        held = await bob.request(
            type="update", request_id=1, context_id=context_id, changes={"title": "mine"}
        )
        assert (held["type"], held["code"], held["details"]) == (
            "error",
            "lock_held",
            {"holder": "dm"},
        )
    async with open_socket(keyed_server.url, as_user("dm")) as dm:
        stale = await dm.request(
            type="update",
            request_id=2,
            context_id=context_id,
            changes={"title": "from a paused process"},
            lock_token=first.token,
        )
        assert (stale["type"], stale["code"]) == ("error", "lock_lost")
        ack = await dm.request(
            type="update",
            request_id=3,
            context_id=context_id,
            changes={"title": "the dm's"},
            lock_token=lock.token,
        )
        assert ack["type"] == "ack"
        assert ack["revision"] == lock.token + 1


# -- presence ----------------------------------------------------------------------------


async def test_presence_goes_both_ways(keyed_server: ServerProcess) -> None:  # noqa: F811
    async with httpx.AsyncClient(base_url=keyed_server.url, timeout=30) as http:
        context_id = await create(http, as_user("dm"), collaborators=["bob"])
    async with (
        open_socket(keyed_server.url, as_user("dm")) as dm,
        open_socket(keyed_server.url, as_user("bob")) as bob,
    ):
        await dm.subscribe(context_id)
        assert await dm.next(presence=True) == {
            "type": "presence",
            "context_id": context_id,
            "members": [],
        }
        await bob.send(type="presence", context_id=context_id, viewing="/data/map", typing=True)
        seen = await dm.next(presence=True)
        assert seen["type"] == "presence"
        [member] = seen["members"]
        assert (member["user_id"], member["viewing"], member["typing"]) == (
            "bob",
            "/data/map",
            True,
        )
        assert set(member) == {"user_id", "viewing", "typing", "last_seen", "expires_at"}
        answer = await bob.request(
            type="presence", request_id="p", context_id=context_id, viewing="/data/map"
        )
        assert answer == {"type": "ack", "request_id": "p"}
        stopped = await dm.next(presence=True)
        assert [(m["user_id"], m["typing"]) for m in stopped["members"]] == [("bob", False)]
        stranger = await bob.request(type="presence", request_id="q", context_id=UNKNOWN)
        assert (stranger["type"], stranger["code"]) == ("error", "not_found")


# -- authentication and authorization ---------------------------------------------------


async def test_a_socket_authenticates_by_header_or_by_its_first_message(
    keyed_server: ServerProcess,  # noqa: F811
) -> None:
    async with httpx.AsyncClient(base_url=keyed_server.url, timeout=30) as http:
        context_id = await create(http, as_user("dm"))
    with pytest.raises(InvalidStatus) as refused:
        async with open_socket(keyed_server.url, {"Authorization": "Bearer wrong"}):
            pass
    assert refused.value.response.status_code == 401
    assert json.loads(refused.value.response.body)["error"]["code"] == "unauthorized"

    async with open_socket(keyed_server.url) as ws:  # a browser: no headers
        hello = await ws.request(type="auth", request_id=0, access_token=KEYS["dm"])
        assert hello == {"type": "authenticated", "user_id": "dm", "request_id": 0}
        assert (await ws.subscribe(context_id))["revision"] == 1
        again = await ws.request(type="auth", request_id=1, access_token=KEYS["dm"])
        assert (again["type"], again["code"]) == ("error", "bad_request")

    for first in (
        {"type": "auth", "access_token": "wrong"},
        {"type": "subscribe", "context_id": context_id},
        {"type": "auth"},
    ):
        async with open_socket(keyed_server.url) as ws:
            await ws.send(**first)
            error = await ws.next()
            assert (error["type"], error["code"]) in {
                ("error", "unauthorized"),
                ("error", "validation_failed"),
            }
            with pytest.raises(ConnectionClosed) as closed:
                await ws.next()
            assert closed.value.rcvd is not None
            assert closed.value.rcvd.code == 1008


async def test_jwts_name_the_user_of_a_socket(start_server: StartServer) -> None:  # noqa: F811
    secret = "a-secret-for-the-websocket-tests-of-32-bytes"
    server = start_server(env={"LOREMASTER_JWT_SECRET": secret})
    token = jwt.encode({"sub": "dm", "exp": int(time.time()) + 60}, secret, algorithm="HS256")
    async with open_socket(server.url) as ws:
        hello = await ws.request(type="auth", request_id=1, access_token=token)
        assert hello["user_id"] == "dm"
    expired = jwt.encode({"sub": "dm", "exp": int(time.time()) - 60}, secret, algorithm="HS256")
    with pytest.raises(InvalidStatus) as refused:
        async with open_socket(server.url, {"Authorization": f"Bearer {expired}"}):
            pass
    assert refused.value.response.status_code == 401


async def test_a_stranger_cannot_tell_a_context_exists(
    keyed_server: ServerProcess,  # noqa: F811
) -> None:
    async with httpx.AsyncClient(base_url=keyed_server.url, timeout=30) as http:
        context_id = await create(http, as_user("dm"))
    async with open_socket(keyed_server.url, as_user("eve")) as ws:
        hidden = await ws.request(type="subscribe", request_id=1, context_id=context_id)
        missing = await ws.request(type="subscribe", request_id=2, context_id=UNKNOWN)
        assert hidden["type"] == missing["type"] == "error"
        assert hidden["code"] == missing["code"] == "not_found"
        assert hidden["message"].replace(context_id, UNKNOWN) == missing["message"]


async def test_local_mode_acts_as_the_user_a_query_parameter_names(
    local_server: ServerProcess,  # noqa: F811
    http: httpx.AsyncClient,
) -> None:
    context_id = await create(http, {"X-Loremaster-User": "alice"})
    async with open_socket(local_server.url, query="user=bob") as bob:
        refused = await bob.request(type="subscribe", request_id=1, context_id=context_id)
        assert refused["code"] == "not_found"
    async with open_socket(local_server.url, query="user=alice") as alice:
        assert (await alice.subscribe(context_id))["revision"] == 1


async def test_a_removed_collaborator_stops_receiving(
    keyed_server: ServerProcess,  # noqa: F811
) -> None:
    dm = as_user("dm")
    async with httpx.AsyncClient(base_url=keyed_server.url, timeout=30) as http:
        context_id = await create(http, dm, permissions={"bob": ["read"]})
        async with (
            open_socket(keyed_server.url, dm) as owner,
            open_socket(keyed_server.url, as_user("bob")) as bob,
        ):
            await owner.subscribe(context_id)
            await bob.subscribe(context_id)
            await patch(http, context_id, {"title": "for bob"}, dm)
            assert revisions(await bob.events(1)) == [2]
            await patch(http, context_id, {"permissions": {"bob": None}}, dm)
            await patch(http, context_id, {"title": "not for bob"}, dm)
            assert revisions(await owner.events(3)) == [2, 3, 4]
            assert await bob.next() == {
                "type": "unsubscribed",
                "context_id": context_id,
                "reason": "forbidden",
            }
            assert await bob.request(type="ping", request_id=1) == {"type": "pong", "request_id": 1}


# -- bad input ---------------------------------------------------------------------------


async def test_bad_messages_get_an_error_and_the_socket_lives_on(
    start_server: StartServer,  # noqa: F811
) -> None:
    server = start_server(env={"CONTEXT_MAX_SIZE_MB": "0.1"})
    async with open_socket(server.url, max_size=None) as ws:
        for frame, code in [
            ("{not json", "malformed_json"),
            ("[" * 5000 + "]" * 5000, "malformed_json"),
            ('{"type": "subscribe", "since_revision": NaN}', "malformed_json"),
            ("[]", "validation_failed"),
            ('{"type": "teleport"}', "validation_failed"),
            ('{"no": "type"}', "validation_failed"),
            ('{"type": "subscribe"}', "validation_failed"),
            ('{"type": "subscribe", "context_id": 5}', "validation_failed"),
            (
                '{"type": "subscribe", "context_id": "x", "since_revision": "3"}',
                "validation_failed",
            ),
            ('{"type": "subscribe", "context_id": "x", "since_revision": -1}', "validation_failed"),
            ('{"type": "update", "context_id": "x", "changes": {}}', "validation_failed"),
            ('{"type": "ping", "extra": 1}', "validation_failed"),
            ('{"type": "subscribe", "context_id": "not-a-uuid"}', "not_found"),
            ('{"type": "ping", "request_id": ' + "9" * 30 + "}", "validation_failed"),
            ("x" * 300_000, "payload_too_large"),
        ]:
            await ws.connection.send(frame)
            error = await ws.next()
            assert (error["type"], error["code"]) == ("error", code), frame[:80]
        await ws.connection.send(b'{"type": "ping"}')
        assert (await ws.next())["code"] == "unsupported_media_type"
        await ws.send(type="ping", request_id="x" * 201)
        assert "request_id" not in await ws.next()
        assert await ws.request(type="ping", request_id="alive") == {
            "type": "pong",
            "request_id": "alive",
        }
    async with open_socket(server.url, max_size=None) as ws:  # past the protocol's ceiling
        await ws.connection.send("x" * (16 * 1024 * 1024 + 1))
        with pytest.raises(ConnectionClosed) as closed:
            await ws.next()
        assert closed.value.rcvd is not None
        assert closed.value.rcvd.code == 1009
    async with httpx.AsyncClient(base_url=server.url) as http:
        assert (await http.get("/healthz")).status_code == 200


# -- backpressure and shutdown -----------------------------------------------------------


def small_buffer_socket(port: int) -> socket.socket:
    """A connected socket that takes little from the network before its reader reads."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", port))
    sock.setblocking(False)
    return sock


async def read_until_closed(ws: Socket) -> tuple[int, int | None]:
    """How many events arrive before the server closes, and its close code."""
    received = 0
    try:
        while True:
            received += (await ws.next())["type"] == "event"
    except ConnectionClosed as closed:
        return received, None if closed.rcvd is None else closed.rcvd.code


async def test_a_client_that_does_not_read_is_closed_and_the_server_carries_on(
    start_server: StartServer,  # noqa: F811
) -> None:
    server = start_server(env={"LOREMASTER_WS_QUEUE": "8"})
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
        context_id = await create(http, data={})
        sock = small_buffer_socket(server.port)
        async with open_socket(server.url, sock=sock, max_queue=1, compression=None) as slow:
            await slow.subscribe(context_id)
            for _ in range(120):  # 6 MB of events nobody reads, each new (a patch sends news)
                await patch(http, context_id, {"data": {"big": os.urandom(25_000).hex()}})
            received, code = await read_until_closed(slow)
            assert code == 1013
            assert received < 120
        async with open_socket(server.url) as fresh:
            assert (await fresh.subscribe(context_id, since_revision=120))["revision"] == 120
            assert revisions(await fresh.events(1)) == [121]


async def test_sigterm_closes_sockets_with_1001_and_ends_streams(
    start_server: StartServer,  # noqa: F811
) -> None:
    server = start_server()
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
        context_id = await create(http)
        async with (
            open_socket(server.url) as ws,
            open_stream(http, context_id, since_revision=0) as stream,
        ):
            await ws.subscribe(context_id)
            assert len(await stream.changes(1)) == 1
            started = time.monotonic()
            assert server.process is not None
            server.process.send_signal(signal.SIGTERM)
            with pytest.raises(ConnectionClosed) as closed:
                await ws.next()
            assert closed.value.rcvd is not None
            assert closed.value.rcvd.code == 1001
            end = await stream.next()
            assert end is not None
            assert (end["event"], end["data"]) == ("end", {"reason": "shutdown"})
            assert await stream.next() is None
        assert server.stop(timeout=10) == 0
        assert time.monotonic() - started < 5
