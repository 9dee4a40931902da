"""Redis for the tests: the shared server, unique prefixes, cutting connections, and a
private server that a test may stop and start."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator

import pytest
from redis import Redis as SyncRedis
from redis.asyncio import Redis
from redis.exceptions import RedisError

from conftest import IN_CI

REDIS_URL = os.environ.get("LOREMASTER_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


async def _ping(url: str) -> None:
    client = Redis.from_url(url, socket_connect_timeout=2, socket_timeout=2)
    try:
        await client.ping()
    finally:
        await client.aclose()


@pytest.fixture(scope="session")
def redis_url() -> str:
    """The test Redis. Unreachable skips the Redis tests, except in CI, where it fails."""
    try:
        with SyncRedis.from_url(REDIS_URL, socket_connect_timeout=2, socket_timeout=2) as client:
            client.ping()
    except (RedisError, OSError) as exc:
        if IN_CI:
            pytest.fail(f"Redis is required in CI and unreachable at {REDIS_URL}: {exc}")
        pytest.skip(f"Redis unreachable at {REDIS_URL}: {exc}")
    return REDIS_URL


@pytest.fixture
def redis_prefix(redis_url: str) -> Iterator[str]:
    """A key and channel prefix of this test's own; its keys are deleted afterwards."""
    prefix = f"lmtest:{uuid.uuid4().hex[:12]}:"
    yield prefix
    with SyncRedis.from_url(redis_url) as client:
        keys = list(client.scan_iter(match=f"{prefix}*"))
        if keys:
            client.delete(*keys)


CutConnections = Callable[[str], Awaitable[int]]


@pytest.fixture
def cut_connections(redis_url: str) -> CutConnections:
    """Cut every connection of a given client name, as a network failure would; how many."""

    async def cut(name: str) -> int:
        client = Redis.from_url(redis_url)
        try:
            ids = [c["id"] for c in await client.client_list() if c.get("name") == name]
            for client_id in ids:
                await client.client_kill_filter(_id=client_id)
            return len(ids)
        finally:
            await client.aclose()

    return cut


class PrivateRedis:
    """A redis-server of the test's own on a free loopback port."""

    def __init__(self, binary: str) -> None:
        self._binary = binary
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._process: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        self._process = await asyncio.create_subprocess_exec(
            self._binary,
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
        async with asyncio.timeout(10):
            while True:
                try:
                    await _ping(self.url)
                    return
                except (RedisError, OSError):
                    await asyncio.sleep(0.05)

    async def stop(self) -> None:
        if self._process is not None and self._process.returncode is None:
            self._process.kill()
            await self._process.wait()

    def freeze(self, frozen: bool) -> None:
        """Stop (or resume) the server process: connections stay open, nothing answers."""
        assert self._process is not None
        self._process.send_signal(signal.SIGSTOP if frozen else signal.SIGCONT)


@pytest.fixture
async def private_redis() -> AsyncIterator[PrivateRedis]:
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server is not installed: the restart tests start their own")
    server = PrivateRedis(binary)
    await server.start()
    yield server
    await server.stop()
