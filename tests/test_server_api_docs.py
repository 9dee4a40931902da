"""The curl examples of docs/server-api.md run as printed, in order, against a real
server with the two users they name, and print what the document shows (``...`` stands
for anything)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from _server import StartServer, start_server  # noqa: F401

DOCUMENT = Path(__file__).parent.parent / "docs" / "server-api.md"
CONSOLE = re.compile(r"^```console\n(.*?)^```", re.DOTALL | re.MULTILINE)
DOCUMENTED_URL = "URL=http://127.0.0.1:8700"
MARK = "@@example@@"


def examples() -> list[tuple[str, list[str]]]:
    """Each ``$ `` command line (not marked as not run) with the lines printed after it."""
    found: list[tuple[str, list[str]]] = []
    for block in CONSOLE.findall(DOCUMENT.read_text()):
        for line in block.splitlines():
            if line.startswith("$ "):
                found.append((line[2:], []))
            elif found:
                found[-1][1].append(line)
    return [(command, shown) for command, shown in found if "(not run here)" not in command]


def matches(shown: list[str], printed: list[str]) -> bool:
    if len(shown) != len(printed):
        return False
    patterns = [".*".join(map(re.escape, line.split("..."))) for line in shown]
    return all(re.fullmatch(p, line) for p, line in zip(patterns, printed, strict=True))


def test_the_curl_examples_run_as_printed(start_server: StartServer) -> None:  # noqa: F811
    server = start_server(env={"LOREMASTER_API_KEYS": "gm-secret=gm,alice-secret=alice"})
    lines = examples()
    assert lines[0][0] == DOCUMENTED_URL
    script = ["set -euo pipefail"]
    for command, _ in lines:
        script += [f"echo {MARK}", command.replace(DOCUMENTED_URL, f"URL={server.url}")]
    ran = subprocess.run(
        ["bash", "-c", "\n".join(script)], capture_output=True, text=True, timeout=120, check=False
    )
    outputs = [chunk.strip("\n").splitlines() for chunk in ran.stdout.split(MARK + "\n")[1:]]
    assert len(outputs) == len(lines), f"stopped at {lines[len(outputs) - 1][0]}: {ran.stderr}"
    assert ran.returncode == 0, ran.stderr
    for (command, shown), printed in zip(lines, outputs, strict=True):
        assert matches(shown, printed), f"{command}\nshows {shown}\nprinted {printed}"
