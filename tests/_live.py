"""Clients of the server's live side for the tests: a WebSocket speaking docs/protocol.md
and a reader of server-sent events."""

from __future__ import annotations

import asyncio
import json
from collections import deque
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect

from _server import ServerProcess

WAIT = 15.0
"""Seconds a test waits for a message it expects (a shared 2-core machine is slow)."""

Message = dict[str, Any]


def ws_url(base_url: str, query: str = "") -> str:
    return base_url.replace("http://", "ws://", 1) + "/v1/ws" + (f"?{query}" if query else "")


class Socket:
    """A protocol client: `send` a message, `next` the server's (presence skipped unless
    asked for)."""

    def __init__(self, connection: ClientConnection) -> None:
        self.connection = connection
        self._held: deque[Message] = deque()
        """Messages `request` read past on its way to the answer."""

    async def send(self, **message: Any) -> None:
        await self.connection.send(json.dumps(message))

    async def next(self, *, presence: bool = False, timeout: float = WAIT) -> Message:
        async with asyncio.timeout(timeout):
            while True:
                message = self._held.popleft() if self._held else await self._receive()
                if presence or message["type"] != "presence":
                    return message

    async def _receive(self) -> Message:
        message: Message = json.loads(await self.connection.recv())
        return message

    async def request(self, **message: Any) -> Message:
        """Send a message and return the answer to it (matched by request id); what
        arrives first is kept for `next`."""
        await self.send(**message)
        async with asyncio.timeout(WAIT):
            while True:
                answer = await self._receive()
                if answer.get("request_id") == message.get("request_id") and answer["type"] in {
                    "subscribed",
                    "unsubscribed",
                    "ack",
                    "error",
                    "pong",
                    "authenticated",
                }:
                    return answer
                self._held.append(answer)

    async def subscribe(self, context_id: str, since_revision: int | None = None) -> Message:
        answer = await self.request(
            type="subscribe",
            request_id=f"sub-{context_id}",
            context_id=context_id,
            since_revision=since_revision,
        )
        assert answer["type"] == "subscribed", answer
        return answer

    async def events(self, count: int, *, timeout: float = WAIT) -> list[Message]:
        """The next `count` events (other messages skipped)."""
        taken: list[Message] = []
        async with asyncio.timeout(timeout):
            while len(taken) < count:
                message = await self.next()
                if message["type"] == "event":
                    taken.append(message)
        return taken


@asynccontextmanager
async def open_socket(
    base_url: str, headers: Mapping[str, str] | None = None, query: str = "", **options: Any
) -> AsyncIterator[Socket]:
    async with connect(
        ws_url(base_url, query), additional_headers=dict(headers or {}), **options
    ) as connection:
        yield Socket(connection)


class EventReader:
    """Server-sent events off an httpx streaming response: ``{"id", "event", "data"}``
    dicts, and the comments seen."""

    def __init__(self, response: httpx.Response) -> None:
        self.response = response
        self.comments = 0
        self._lines = response.aiter_lines()

    async def next(self, timeout: float = WAIT) -> Message | None:
        """The next event; None when the stream ends."""
        fields: Message = {}
        async with asyncio.timeout(timeout):
            async for line in self._lines:
                if line.startswith(":"):
                    self.comments += 1
                elif line:
                    name, _, value = line.partition(":")
                    fields[name] = value.removeprefix(" ")
                elif fields:
                    if "data" in fields:
                        fields["data"] = json.loads(fields["data"])
                    return fields
        return None

    async def changes(self, count: int, timeout: float = WAIT) -> list[Message]:
        taken: list[Message] = []
        while len(taken) < count:
            event = await self.next(timeout)
            assert event is not None, f"the stream ended after {taken}"
            assert event["event"] == "change", event
            taken.append(event)
        return taken


@asynccontextmanager
async def open_stream(
    http: httpx.AsyncClient,
    context_id: str,
    headers: Mapping[str, str] | None = None,
    **params: Any,
) -> AsyncIterator[EventReader]:
    url = f"/v1/contexts/{context_id}/events/stream"
    async with http.stream("GET", url, params=params, headers=dict(headers or {})) as response:
        assert response.status_code == 200, await response.aread()
        assert response.headers["content-type"].startswith("text/event-stream")
        yield EventReader(response)


KEYS = {"dm": "key-dm", "bob": "key-bob", "eve": "key-eve"}
"""The API key of each user of `keyed_server`."""


def as_user(user: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {KEYS[user]}"}


@pytest.fixture(scope="module")
def keyed_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """A server with an API key per user of `KEYS`, shared by a module's tests."""
    keys = ",".join(f"{key}={user}" for user, key in KEYS.items())
    workdir = tmp_path_factory.mktemp("keyed")
    server = ServerProcess(workdir, {"LOREMASTER_API_KEYS": keys}).start()
    yield server
    server.stop()


async def create(
    http: httpx.AsyncClient, headers: Mapping[str, str] | None = None, **fields: Any
) -> str:
    """A new conversation's id (fields on top of a title)."""
    body = {"context_type": "conversation", "title": "The crypt", **fields}
    response = await http.post("/v1/contexts", json=body, headers=dict(headers or {}))
    assert response.status_code == 201, response.text
    context_id: str = response.json()["context_id"]
    return context_id


async def patch(
    http: httpx.AsyncClient,
    context_id: str,
    changes: Mapping[str, Any],
    headers: Mapping[str, str] | None = None,
) -> int:
    """Change a context over HTTP; the revision it made."""
    response = await http.patch(
        f"/v1/contexts/{context_id}", json=dict(changes), headers=dict(headers or {})
    )
    assert response.status_code == 200, response.text
    revision: int = response.json()["revision"]
    return revision
