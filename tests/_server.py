"""`loremaster serve` processes for the tests: real servers on free loopback ports."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import httpx
import pytest

STARTUP_SECONDS = 30.0
UNREACHED_RATE_LIMIT = {"LOREMASTER_RATE_LIMIT": "100000", "LOREMASTER_RATE_BURST": "100000"}
"""Every server runs its rate limiter; only the tests of limits set one a test reaches."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class ServerProcess:
    """One `loremaster serve` process; `url` is its base URL."""

    def __init__(
        self,
        workdir: Path,
        env: Mapping[str, str] | None = None,
        args: tuple[str, ...] = (),
        port: int | None = None,
    ) -> None:
        self.workdir = workdir
        self.env = {
            **{
                k: v for k, v in os.environ.items() if not k.startswith(("CONTEXT_", "LOREMASTER_"))
            },
            "CONTEXT_DATABASE_URL": f"sqlite:///{workdir / 'server.db'}",
            **UNREACHED_RATE_LIMIT,
            **(env or {}),
        }
        self.args = args
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = workdir / f"server-{self.port}.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> ServerProcess:
        command = [sys.executable, "-m", "loremaster", "serve", "--port", str(self.port)]
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [*command, *self.args], cwd=self.workdir, env=self.env, stdout=log, stderr=log
            )
        self._wait_ready()
        return self

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + STARTUP_SECONDS
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise RuntimeError(f"the server exited at startup:\n{self.output()}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"the server did not start in time:\n{self.output()}")

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def stop(self, sig: signal.Signals = signal.SIGTERM, timeout: float = 20) -> int:
        """Stop the process with `sig` and return its exit code."""
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(sig)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise

    def kill(self) -> None:
        self.stop(signal.SIGKILL)


StartServer = Callable[..., ServerProcess]


@pytest.fixture
def start_server(tmp_path: Path) -> Iterator[StartServer]:
    """``start_server(env=..., args=..., port=...)`` starts a server on the test's own
    embedded database (unless `env` names another); each is stopped after the test."""
    started: list[ServerProcess] = []

    def start(
        env: Mapping[str, str] | None = None, args: tuple[str, ...] = (), port: int | None = None
    ) -> ServerProcess:
        server = ServerProcess(tmp_path, env, args, port).start()
        started.append(server)
        return server

    yield start
    for server in started:
        if server.process is not None and server.process.poll() is None:
            server.stop()


@pytest.fixture(scope="module")
def local_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """One local-mode server on an embedded database, shared by a module's tests."""
    server = ServerProcess(tmp_path_factory.mktemp("server")).start()
    yield server
    server.stop()
