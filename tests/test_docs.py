"""The Python examples in the README and docs run as written, top to bottom."""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
from pathlib import Path
from types import CodeType

import pytest

from _server import ServerProcess

ROOT = Path(__file__).parent.parent
DOCUMENTS = ["README.md", *sorted(str(p.relative_to(ROOT)) for p in (ROOT / "docs").glob("*.md"))]
BLOCK = re.compile(r"^```python\n(.*?)^```", re.DOTALL | re.MULTILINE)
SCRIPT = re.compile(r"# (?P<name>\w+\.py): run it with `python (?P=name)`\n")
SERVER = "127.0.0.1:8700"
"""Where examples find `loremaster serve`: the test serves on a port of its own instead."""


def python_blocks(document: str) -> list[str]:
    return BLOCK.findall((ROOT / document).read_text())


def served(blocks: list[str], tmp_path: Path, request: pytest.FixtureRequest) -> str:
    """The address of a server for the examples, when they need one (stopped afterwards)."""
    if not any(SERVER in block for block in blocks):
        return SERVER
    server = ServerProcess(tmp_path).start()
    request.addfinalizer(server.stop)
    return f"127.0.0.1:{server.port}"


@pytest.mark.parametrize("document", [d for d in DOCUMENTS if python_blocks(d)])
async def test_python_examples_run(
    document: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> None:
    monkeypatch.chdir(tmp_path)
    for variable in [v for v in os.environ if v.startswith("CONTEXT_")]:
        monkeypatch.delenv(variable)
    namespace: dict[str, object] = {"__name__": "__docs__"}
    blocks = python_blocks(document)
    address = served(blocks, tmp_path, request)
    for index, block in enumerate(block.replace(SERVER, address) for block in blocks):
        script = SCRIPT.match(block)
        if script is not None:  # a file to save and run, as the reader is told to
            (tmp_path / script["name"]).write_text(block)
            ran = subprocess.run(
                [sys.executable, script["name"]],
                check=False,
                capture_output=True,
                text=True,
                timeout=120,
            )
            assert ran.returncode == 0, f"{document}[{index}]: {ran.stderr}"
            continue
        code: CodeType = compile(
            block, f"{document}[{index}]", "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT
        )
        result = eval(code, namespace)
        if result is not None:
            await result
