"""Every command line in the README and docs runs as printed, against a scratch database
seeded by `loremaster demo`, with the placeholders (ID, VERSION_ID, ...) bound to what is
in it and the files the examples read laid out beside it.

A line may say how it ends when that is not success: ``# exits 1``; a transcript that needs
a setup no command line makes says ``(not run here)``.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from _server import ServerProcess
from loremaster.codec import Codec
from test_translation import PARALLEL_OPENAI

ROOT = Path(__file__).parent.parent
DOCUMENTS = ["README.md", *sorted(str(p.relative_to(ROOT)) for p in (ROOT / "docs").glob("*.md"))]
CONSOLE = re.compile(r"^```console\n(.*?)^```", re.DOTALL | re.MULTILINE)
EXITS = re.compile(r"#.*\bexits (\d+)")
BIN = Path(sys.executable).parent

ANTHROPIC_BODY = {
    "system": "You are the game master.",
    "messages": [{"role": "user", "content": "Describe the crypt."}],
}
FILES: dict[str, object] = {
    "messages.json": [{"role": "user", "content": "I light a torch."}],
    "openai.json": PARALLEL_OPENAI,
    "chat.json": PARALLEL_OPENAI,
    "turns.json": PARALLEL_OPENAI["messages"],
    "body.json": ANTHROPIC_BODY,
    "context.json": {
        "context_type": "conversation",
        "title": "Session 2",
        "messages": [{"role": "user", "content": "Where were we?"}],
    },
    "session.json": {
        "context_type": "conversation",
        "title": "Session 3",
        "primary_provider": "anthropic",
        "messages": [{"role": "user", "content": "Roll for initiative."}],
    },
}


SERVER = "127.0.0.1:8700"
"""Where `$ curl` lines find `loremaster serve`: the test serves the scratch database on a
port of its own and points them there."""


def command_lines(document: str) -> list[str]:
    """The `$ loremaster ...` lines of a document's console blocks, and its `$ curl ...`
    lines against the local server, continuations joined."""
    lines: list[str] = []
    for block in CONSOLE.findall((ROOT / document).read_text()):
        for line in block.replace("\\\n", " ").splitlines():
            # curl lines against $URL are docs/server-api.md's, run by test_server_api_docs.
            ours = line.startswith("$ loremaster") or (line.startswith("$ curl") and SERVER in line)
            if ours and "(not run here)" not in line:
                lines.append(line[2:])
    return lines


def _loremaster(*args: str, env: dict[str, str]) -> str:
    ran = subprocess.run(
        [str(BIN / "loremaster"), *args], capture_output=True, text=True, env=env, check=True
    )
    return ran.stdout


@pytest.fixture
def scratch(tmp_path: Path) -> Iterator[tuple[Path, dict[str, str]]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONTEXT_")}
    env |= {
        "CONTEXT_DATABASE_URL": f"sqlite:///{tmp_path / 'loremaster.db'}",
        "CONTEXT_SYNC_TIMEOUT": "3",  # the examples of an unreachable server fail sooner
        "COLUMNS": "100",
    }
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    for name, content in FILES.items():
        (tmp_path / name).write_text(json.dumps(content))
    (tmp_path / "blob.bin").write_bytes(Codec().encode({"spell": "fireball"}))
    _loremaster("demo", env=env)
    yield tmp_path, env
    shutil.rmtree(tmp_path, ignore_errors=True)


def _bindings(env: dict[str, str]) -> dict[str, str]:
    contexts = json.loads(_loremaster("list", "--json", env=env))["items"]
    conversation = next(c for c in contexts if c["context_type"] == "conversation")
    room = next(c for c in contexts if c["context_type"] == "collaborative")
    history = json.loads(_loremaster("history", conversation["context_id"], "--json", env=env))
    checkpoint = next(v for v in history if "checkpoint" in v["tags"])
    return {
        "ID1": conversation["context_id"],
        "ID2": room["context_id"],
        "ROOM_ID": room["context_id"],
        "<room-id>": room["context_id"],
        "ID": conversation["context_id"],
        "<id>": conversation["context_id"],
        "3f0c...": conversation["context_id"],
        "VERSION_ID": checkpoint["version_id"],
        "<version-id>": checkpoint["version_id"],
        "FROM_VERSION": checkpoint["version_id"],
        "TO_VERSION": history[0]["version_id"],
    }


def _bound(line: str, bindings: dict[str, str]) -> str:
    for placeholder, value in bindings.items():
        line = re.sub(rf"(?<![\w<-]){re.escape(placeholder)}(?![\w>-])", value, line)
    return line


POSTGRESQL = re.compile(r"postgresql://[^\s'\"]+")


@pytest.mark.parametrize("document", [d for d in DOCUMENTS if command_lines(d)])
def test_command_line_examples_run(
    document: str, scratch: tuple[Path, dict[str, str]], request: pytest.FixtureRequest
) -> None:
    folder, env = scratch
    bindings = _bindings(env)
    if any(SERVER in line for line in command_lines(document)):
        server = ServerProcess(folder, {"CONTEXT_DATABASE_URL": env["CONTEXT_DATABASE_URL"]})
        request.addfinalizer(server.start().stop)
        bindings[SERVER] = f"127.0.0.1:{server.port}"
    # A PostgreSQL URL of an example that should work is the test's own scratch database.
    lines = command_lines(document)
    if any(POSTGRESQL.search(line) and not EXITS.search(line) for line in lines):
        scratch_postgres = request.getfixturevalue("empty_postgres_url")
        for line in lines:
            for url in POSTGRESQL.findall(line) if not EXITS.search(line) else ():
                bindings[url] = scratch_postgres
    failed: list[str] = []
    for line in lines:
        expected = EXITS.search(line)
        command = line
        if "delete" in line and "--hard" in line:  # on a context of its own: ID lives on
            spare = _loremaster("create", "--title", "Spare", "--json", env=env)
            command = line.replace("ID", json.loads(spare)["context_id"])
        command = _bound(command, bindings)
        if "CONFLICT_ID" in command:
            conflicts = json.loads(_loremaster("conflicts", bindings["ID"], "--json", env=env))
            if conflicts:
                command = command.replace("CONFLICT_ID", conflicts[0]["conflict_id"])
        if "NEXT_CURSOR" in command:
            page = json.loads(_loremaster("list", "--limit", "1", "--json", env=env))
            command = command.replace("NEXT_CURSOR", shlex.quote(page["next_cursor"]))
        ran = subprocess.run(
            ["bash", "-c", command],
            cwd=folder,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        wanted = int(expected.group(1)) if expected else 0
        if ran.returncode != wanted or "Traceback" in ran.stderr:
            failed.append(f"{line}\n  exit {ran.returncode}: {ran.stderr.strip()[-600:]}")
    assert not failed, f"{document}:\n" + "\n".join(failed)
