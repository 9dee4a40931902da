"""Server-sent events, ``GET /v1/contexts/{id}/events/stream``, against real `loremaster
serve` processes: ids are revisions, a reconnect resumes after ``Last-Event-ID``, a trimmed
log starts with a snapshot, a removed reader's stream ends."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from _live import EventReader, as_user, create, keyed_server, open_stream, patch  # noqa: F401
from _server import ServerProcess, StartServer, local_server, start_server  # noqa: F401
from loremaster import ContextManager


@pytest.fixture
async def http(local_server: ServerProcess) -> AsyncIterator[httpx.AsyncClient]:  # noqa: F811
    async with httpx.AsyncClient(base_url=local_server.url, timeout=30) as client:
        yield client


def revisions(events: list[dict[str, object]]) -> list[int]:
    ids = [int(str(event["id"])) for event in events]
    assert ids == [event["data"]["revision"] for event in events]  # type: ignore[index]
    return ids


async def test_a_stream_replays_the_log_then_follows_each_revision_once(
    http: httpx.AsyncClient,
) -> None:
    context_id = await create(http, data={"hp": 10})
    await patch(http, context_id, {"data": {"hp": 9}})
    async with open_stream(http, context_id, since_revision=0) as stream:
        replayed = await stream.changes(2)
        assert revisions(replayed) == [1, 2]
        assert [e["data"]["op"] for e in replayed] == ["create", "update"]
        await patch(http, context_id, {"data": {"hp": 8}})
        [live] = await stream.changes(1)
        assert revisions([live]) == [3]
        assert live["data"]["changes"] == [{"op": "replace", "path": "/data/hp", "value": 8}]
        assert set(live["data"]) == {
            "context_id",
            "revision",
            "op",
            "changes",
            "user_id",
            "time",
            "branch",
            "provider",
        }


async def test_a_reconnect_resumes_after_last_event_id(http: httpx.AsyncClient) -> None:
    context_id = await create(http)
    for hp in range(3):
        await patch(http, context_id, {"data": {"hp": hp}})
    async with open_stream(http, context_id, since_revision=1) as stream:
        assert revisions(await stream.changes(2)) == [2, 3]
    for hp in range(3, 5):  # while nobody listens
        await patch(http, context_id, {"data": {"hp": hp}})
    # Last-Event-ID is what a reconnecting EventSource sends; it wins over since_revision.
    resumed = {"Last-Event-ID": "3"}
    async with open_stream(http, context_id, resumed, since_revision=0) as stream:
        assert revisions(await stream.changes(2)) == [4, 5]
        await patch(http, context_id, {"title": "later"})
        assert revisions(await stream.changes(1)) == [6]


async def test_without_a_position_it_starts_now_and_keeps_the_connection_alive(
    start_server: StartServer,  # noqa: F811
) -> None:
    server = start_server(env={"LOREMASTER_SSE_KEEPALIVE": "0.2"})
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
        context_id = await create(http)
        await patch(http, context_id, {"title": "before"})
        async with open_stream(http, context_id) as stream:
            waiting = asyncio.create_task(stream.next())
            await asyncio.sleep(1.0)
            assert not waiting.done()
            await patch(http, context_id, {"title": "after"})
            event = await waiting
            assert event is not None
            assert revisions([event]) == [3]
            assert stream.comments >= 3


async def test_strangers_and_unknown_ids_get_the_same_404_and_bad_positions_are_refused(
    keyed_server: ServerProcess,  # noqa: F811
) -> None:
    async with httpx.AsyncClient(base_url=keyed_server.url, timeout=30) as http:
        context_id = await create(http, as_user("dm"))
        await patch(http, context_id, {"title": "two"}, as_user("dm"))
        url = f"/v1/contexts/{context_id}/events/stream"
        unknown = "/v1/contexts/00000000-0000-4000-8000-000000000000/events/stream"
        stranger = await http.get(url, headers=as_user("eve"))
        nobody = await http.get(unknown, headers=as_user("eve"))
        assert stranger.status_code == nobody.status_code == 404
        assert stranger.json()["error"]["code"] == nobody.json()["error"]["code"] == "not_found"
        assert (await http.get(url)).status_code == 401
        bad_id = await http.get(url, headers={**as_user("dm"), "Last-Event-ID": "seven"})
        assert (bad_id.status_code, bad_id.json()["error"]["code"]) == (400, "bad_last_event_id")
        ahead = await http.get(url, params={"since_revision": 3}, headers=as_user("dm"))
        assert (ahead.status_code, ahead.json()["error"]["code"]) == (422, "validation_failed")
        negative = await http.get(url, params={"since_revision": -1}, headers=as_user("dm"))
        assert negative.status_code == 422


async def test_a_removed_collaborator_s_stream_ends(
    keyed_server: ServerProcess,  # noqa: F811
) -> None:
    async with httpx.AsyncClient(base_url=keyed_server.url, timeout=30) as http:
        dm = as_user("dm")
        context_id = await create(http, dm, collaborators=["bob"])
        async with open_stream(http, context_id, as_user("bob")) as stream:
            await patch(http, context_id, {"title": "bob reads this"}, dm)
            assert revisions(await stream.changes(1)) == [2]
            await patch(http, context_id, {"collaborators": []}, dm)
            await patch(http, context_id, {"title": "bob must not read this"}, dm)
            end = await stream.next()
            assert end is not None
            assert (end["event"], end["data"]) == ("end", {"reason": "forbidden"})
            assert await stream.next() is None


async def test_a_trimmed_log_starts_with_a_snapshot(
    start_server: StartServer,  # noqa: F811
    tmp_path: Path,
) -> None:
    server = start_server()
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
        context_id = await create(http, data={"hp": 10})
        for hp in range(3):
            await patch(http, context_id, {"data": {"hp": hp}})
        database = server.env["CONTEXT_DATABASE_URL"]
        async with ContextManager(database, event_retention_days=1e-9) as trimmer:
            assert (await trimmer.run_cleanup()).events_trimmed == 3
        async with open_stream(http, context_id, since_revision=0) as stream:
            [snapshot] = await stream.changes(1)
            assert revisions([snapshot]) == [4]
            assert snapshot["data"]["op"] == "snapshot"
            assert snapshot["data"]["changes"][0]["value"]["data"] == {"hp": 2}
            await patch(http, context_id, {"data": {"hp": 3}})
            assert revisions(await stream.changes(1)) == [5]
