"""A PostgreSQL cluster of the test's own (initdb + pg_ctl, run as the postgres user) on a
free loopback port, which a test may stop and start. Never the shared server."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import IN_CI


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class PrivatePostgres:
    def __init__(self, root: Path) -> None:
        self.port = _free_port()
        self.data = root / "data"
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"
        self._root = root

    def _as_postgres(self, *command: str) -> None:
        prefix = [] if os.geteuid() != 0 else ["runuser", "-u", "postgres", "--"]
        subprocess.run([*prefix, *command], check=True, capture_output=True, timeout=60)

    def initialize(self) -> None:
        self._as_postgres(
            "initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres", "--no-sync"
        )

    def start(self) -> None:
        options = f"-p {self.port} -k {self._root} -c listen_addresses=127.0.0.1 -c fsync=off"
        log = str(self._root / "server.log")
        self._as_postgres("pg_ctl", "-D", str(self.data), "-o", options, "-l", log, "-w", "start")

    def stop(self) -> None:
        self._as_postgres("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")

    async def stopped(self) -> None:
        await asyncio.to_thread(self.stop)

    async def started(self) -> None:
        await asyncio.to_thread(self.start)


@pytest.fixture
def private_postgres() -> Iterator[PrivatePostgres]:
    """A running cluster of this test's own, removed afterwards. Without initdb the test
    is skipped, except in CI, where it fails."""
    if shutil.which("initdb") is None or shutil.which("pg_ctl") is None:
        if IN_CI:
            pytest.fail("initdb and pg_ctl are required in CI")
        pytest.skip("initdb and pg_ctl are not installed")
    root = Path(tempfile.mkdtemp(prefix="lm-pg-"))
    if os.geteuid() == 0:
        shutil.chown(root, "postgres")
    server = PrivatePostgres(root)
    server.initialize()
    server.start()
    try:
        yield server
    finally:
        with contextlib.suppress(subprocess.CalledProcessError):  # stopped by the test
            server.stop()
        shutil.rmtree(root, ignore_errors=True)
