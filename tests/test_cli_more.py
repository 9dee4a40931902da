"""The CLI a game master reaches for: long messages, branches, live play, providers."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import orjson
import pytest

from loremaster import (
    CollaborativeContext,
    ContextManager,
    ConversationContext,
    RevisionConflict,
)
from loremaster.cli import main
from loremaster.cli._render import PREVIEW_CHARS
from test_cli import MISSING, Runner

LOREMASTER = [sys.executable, "-c", "from loremaster.cli import run; run()"]


@pytest.fixture
def run(sqlite_url: str, capsys: pytest.CaptureFixture[str]) -> Runner:
    return Runner(sqlite_url, capsys)


def _environment() -> dict[str, str]:
    """This process's environment without loremaster settings (no Redis, say)."""
    return {k: v for k, v in os.environ.items() if not k.startswith("CONTEXT_")}


async def _seed_room(sqlite_url: str, strategy: str | None = None) -> str:
    async with ContextManager(database_url=sqlite_url) as cm:
        policy = None if strategy is None else {"strategy": strategy}
        return await cm.create_context(
            CollaborativeContext(
                title="Party planning",
                room_id="room_1",
                collaborators=["player1"],
                shared_state={"level": 5},
                conflict_policy=policy,
            ),
            user_id="dm",
        )


# -- item 6: long messages ---------------------------------------------------------------


def test_show_cuts_a_huge_message_fast_and_full_or_json_show_it_whole(run: Runner) -> None:
    context_id = run.json("create", "--title", "Long tale")["context_id"]
    body = "The [bold]bard[/bold] sings on. " * 100_000  # 3.1 MB, rich markup included
    run("append", context_id, "--role", "assistant", "--content", body)

    started = time.monotonic()
    out, _ = run("show", context_id, "--last", "1")
    assert time.monotonic() - started < 10
    assert f"{len(body) - PREVIEW_CHARS:,} more characters (--full shows them)" in out
    assert len(out) < 10 * PREVIEW_CHARS
    assert "[bold]bard[/bold]" in out  # plain text, not markup

    started = time.monotonic()
    out, _ = run("show", context_id, "--last", "1", "--full")
    assert time.monotonic() - started < 10
    assert body in out
    assert "more characters" not in out

    shown = run.json("show", context_id)
    assert shown["messages"][0]["parts"][0]["text"] == body


def test_a_short_message_is_shown_whole(run: Runner) -> None:
    context_id = run.json("create", "--title", "Short")["context_id"]
    run("append", context_id, "--role", "user", "--content", "x" * PREVIEW_CHARS)
    out, _ = run("show", context_id)
    assert "more character" not in out


# -- item 8: branches --------------------------------------------------------------------


def test_play_on_a_branch_with_every_command(run: Runner, tmp_path: Path) -> None:
    context_id = run.json("create", "--title", "Crypt", "--data", '{"hp": 10}', "--user", "dm")[
        "context_id"
    ]
    run("append", context_id, "--role", "user", "--content", "We open the crypt.")
    run("branch", "create", context_id, "went-left")

    assert run.json(
        "append", context_id, "--branch", "went-left", "--role", "user", "--content", "Left!"
    ) == {"revision": 4}
    updated = run.json("update", context_id, '{"data": {"hp": 3}}', "--branch", "went-left")
    assert updated["data"] == {"hp": 3}

    on_branch = run.json("show", context_id, "--branch", "went-left")
    assert [m["parts"][0]["text"] for m in on_branch["messages"]] == [
        "We open the crypt.",
        "Left!",
    ]
    assert run.json("show", context_id)["data"] == {"hp": 10}
    out, _ = run("show", context_id, "--branch", "went-left", "--last", "1")
    assert "Left!" in out
    assert "We open the crypt." not in out

    events = run.json("events", context_id, "--branch", "went-left")
    assert [e["op"] for e in events] == ["create_branch", "append_messages", "update"]
    assert len(run.json("events", context_id, "--branch", "went-left", "--limit", "1")) == 1
    assert [e["op"] for e in run.json("events", context_id, "--branch", "main")] == [
        "create",
        "append_messages",
    ]
    assert len(run.json("events", context_id)) == 5  # every branch by default
    out, _ = run("events", context_id)
    assert "went-left" in out

    versions = run.json("history", context_id, "--branch", "went-left")
    assert versions
    assert {v["branch"] for v in versions} == {"went-left"}

    payload = run.json("export-for", context_id, "--to", "openai", "--branch", "went-left")
    assert [m["content"] for m in payload["messages"]] == ["We open the crypt.", "Left!"]
    assert (
        run.json("tokens", context_id, "--provider", "openai", "--branch", "went-left")["messages"]
        == 2
    )

    dump = tmp_path / "branch.json"
    run("export", context_id, "--branch", "went-left", "-o", str(dump))
    exported = orjson.loads(dump.read_bytes())["contexts"][0]
    assert exported["data"] == {"hp": 3}
    assert len(exported["messages"]) == 2

    migrated = run.json("migrate", context_id, "--to", "google", "--branch", "went-left")
    assert migrated["migrated"]
    assert run.json("show", context_id, "--branch", "went-left")["primary_provider"] == "google"
    assert run.json("show", context_id).get("primary_provider") is None
    assert {v["branch"] for v in run.json("history", context_id, "--tag", "migration")} == {
        "went-left"
    }

    _, err = run("show", context_id, "--branch", "nowhere", code=1)
    assert "branch 'nowhere'" in err


def test_history_of_a_branch_without_versions_says_where_it_starts(run: Runner) -> None:
    context_id = run.json("create", "--title", "Crypt")["context_id"]
    run("append", context_id, "--role", "user", "--content", "We wait.")
    run("branch", "create", context_id, "quiet")
    fork = run.json("branch", "list", context_id)[1]["base_version_id"]
    number = next(v["number"] for v in run.json("history", context_id) if v["version_id"] == fork)

    out, _ = run("history", context_id, "--branch", "quiet")
    assert out.strip() == (
        f"branch quiet has no versions of its own yet; it starts at version {number} of main"
    )
    assert run.json("history", context_id, "--branch", "quiet") == []
    _, err = run("history", context_id, "--branch", "nowhere", code=1)
    assert "branch 'nowhere'" in err


def test_the_library_filters_events_by_branch(db_url: str) -> None:
    async def scenario() -> None:
        async with ContextManager(database_url=db_url) as cm:
            context_id = await cm.create_context(ConversationContext(title="t"))
            await cm.create_branch(context_id, "b")
            for n in range(3):
                await cm.append_messages(context_id, {"role": "user", "content": f"{n}"})
                await cm.append_messages(
                    context_id, {"role": "user", "content": f"b{n}"}, branch="b"
                )
            on_b = await cm.get_events(context_id, branch="b")
            assert [e.revision for e in on_b] == [2, 4, 6, 8]
            assert [e.revision for e in await cm.get_events(context_id, branch="b", limit=2)] == [
                2,
                4,
            ]
            assert [
                e.revision for e in await cm.get_events(context_id, since_revision=4, branch="b")
            ] == [6, 8]
            assert [e.revision for e in await cm.get_events(context_id, branch="main")] == [
                1,
                3,
                5,
                7,
            ]

    asyncio.run(scenario())


# -- item 15 -----------------------------------------------------------------------------


def test_a_stale_update_names_the_conflicting_paths(run: Runner, sqlite_url: str) -> None:
    room_id = asyncio.run(_seed_room(sqlite_url))
    run("update", room_id, '{"shared_state": {"level": 6}}')
    _, err = run(
        "update", room_id, '{"shared_state": {"level": 7}}', "--expected-revision", "1", code=1
    )
    assert err.strip() == (
        f"Error: context {room_id} is at revision 2, not the expected 1; "
        "conflicting paths: /shared_state/level"
    )

    async def library() -> RevisionConflict:
        async with ContextManager(database_url=sqlite_url) as cm:
            try:
                await cm.update_context(
                    room_id, {"shared_state": {"level": 7}, "title": "x"}, expected_revision=1
                )
            except RevisionConflict as exc:
                return exc
        raise AssertionError("no conflict")

    conflict = asyncio.run(library())
    assert conflict.paths == ("/shared_state/level",)
    assert (conflict.expected_revision, conflict.actual_revision) == (1, 2)


def test_validate_fix_writes_a_valid_file_and_says_why_it_does_not_write(
    run: Runner, tmp_path: Path
) -> None:
    valid = tmp_path / "valid.json"
    huge = "1" + "0" * 30
    valid.write_text('{"context_type": "generic", "title": "fine", "data": {"n": ' + huge + "}}")
    out_file = tmp_path / "out.json"
    _, err = run("validate", str(valid), "--fix", str(out_file), db=False)
    assert out_file.read_bytes() == valid.read_bytes()  # as read: a 31-digit number too
    assert "nothing to correct" in err

    broken = tmp_path / "broken.json"
    broken.write_bytes(orjson.dumps({"context_type": "conversation"}))  # no title: no fix
    not_written = tmp_path / "never.json"
    out, err = run("validate", str(broken), "--fix", str(not_written), code=1, db=False)
    assert not not_written.exists()
    assert f"{not_written} not written" in err
    assert "1 error," in out


def test_bare_loremaster_shows_help_and_exits_0(run: Runner) -> None:
    out, err = run(db=False)
    assert "Usage: loremaster" in out
    assert "watch" in out
    assert not err
    ran = subprocess.run(LOREMASTER, capture_output=True, text=True, check=False, timeout=60)
    assert ran.returncode == 0
    assert "Usage: loremaster" in ran.stdout


def test_counts_agree_with_their_nouns(run: Runner, tmp_path: Path) -> None:
    run("create", "--title", "only one")
    dump = tmp_path / "one.json"
    _, err = run("export", "-o", str(dump))
    assert "exported 1 context\n" in err
    other = f"sqlite:///{tmp_path / 'other.db'}"
    assert main(["import", str(dump), "--database-url", other]) == 0
    assert "imported 1 context, skipped 0" in run.capsys.readouterr().out
    _, err = run("schema", "export", "--type", "session", "-o", str(tmp_path / "s"), db=False)
    assert "wrote 1 schema to" in err


def test_create_from_a_file_takes_the_type_of_type(run: Runner, tmp_path: Path) -> None:
    untyped = tmp_path / "untyped.json"
    untyped.write_bytes(orjson.dumps({"title": "no type named"}))
    made = run.json("create", "--file", str(untyped))["context_id"]
    assert run.json("show", made)["context_type"] == "conversation"  # as `create --title`
    made = run.json("create", "--file", str(untyped), "--type", "generic")["context_id"]
    assert run.json("show", made)["context_type"] == "generic"
    typed = tmp_path / "typed.json"
    typed.write_bytes(orjson.dumps({"title": "s", "context_type": "session", "user_id": "p"}))
    assert (
        run.json("show", run.json("create", "--file", str(typed))["context_id"])["context_type"]
        == "session"
    )
    _, err = run("create", "--file", str(typed), "--type", "generic", code=1)
    assert "--type generic, but" in err


# -- item 16: new commands -----------------------------------------------------------------


def test_export_for_prints_the_payload_and_changes_nothing(run: Runner, tmp_path: Path) -> None:
    run("demo")
    conversation = run.json("list", "--type", "conversation")["items"][0]
    context_id, revision = conversation["context_id"], conversation["revision"]
    payload = run.json("export-for", context_id, "--to", "anthropic")
    assert payload["system"]
    assert payload["messages"][0]["role"] == "user"
    gemini = run.json("export-for", context_id, "--to", "gemini", "--model", "gemini-2.5-pro")
    assert gemini["contents"]
    target = tmp_path / "request.json"
    _, err = run("export-for", context_id, "--to", "openai", "-o", str(target))
    assert orjson.loads(target.read_bytes())["messages"][0]["role"] == "system"
    assert f"wrote the openai payload to {target}" in err
    assert run.json("show", context_id)["revision"] == revision


def test_tokens_counts_and_says_what_fitting_would_cut(
    run: Runner, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(
        "CONTEXT_MODELS",
        '{"tiny-gpt": {"provider": "openai", "context_window": 300, "max_output": 100}}',
    )
    context_id = run.json("create", "--title", "Chatty")["context_id"]
    run("append", context_id, "--role", "system", "--content", "You are a game master.")
    for n in range(12):
        role = "user" if n % 2 == 0 else "assistant"
        run("append", context_id, "--role", role, "--content", f"Turn {n}: " + "words " * 20)

    report = run.json("tokens", context_id, "--model", "tiny-gpt")
    assert report["provider"] == "openai"  # the model's, with no primary_provider
    assert report["messages"] == 13
    assert report["exact"] is True
    assert report["budget"] == 200
    assert not report["fits"]
    assert report["cut_messages"][0] == 2  # the system prompt stays
    assert report["tokens_after_fit"] <= 200
    out, _ = run("tokens", context_id, "--model", "tiny-gpt")
    assert f"fitting would cut {len(report['cut_messages'])} messages (#2-#" in out

    roomy = run.json("tokens", context_id, "--provider", "openai", "--model", "gpt-4o")
    assert roomy["fits"]
    assert roomy["cut_messages"] == []
    out, _ = run("tokens", context_id, "--provider", "anthropic")
    assert "fitting would cut nothing" in out
    _, err = run("tokens", context_id, code=1)
    assert "give --provider" in err


def test_lock_and_unlock_as_a_user(run: Runner, sqlite_url: str) -> None:
    room_id = asyncio.run(_seed_room(sqlite_url))
    held = run.json("lock", room_id, "--user", "dm", "--timeout", "60")
    assert held["holder"] == "dm"
    _, err = run("update", room_id, '{"title": "mine"}', "--user", "dm", code=0)
    _, err = run("update", room_id, '{"title": "ours"}', code=1)
    assert "locked by 'dm'" in err
    _, err = run("unlock", room_id, "--user", "player1", code=1)
    assert "locked by 'dm'" in err
    out, _ = run("unlock", room_id, "--user", "dm")
    assert f"dm holds no lock on {room_id}" in out
    assert run.json("update", room_id, '{"title": "ours"}')["title"] == "ours"
    _, err = run("lock", room_id, code=1)
    assert "give --user" in err


def test_conflicts_are_listed_and_resolved(run: Runner, sqlite_url: str) -> None:
    room_id = asyncio.run(_seed_room(sqlite_url, "manual_merge"))
    out, _ = run("conflicts", room_id)
    assert "no open conflicts" in out
    run("update", room_id, '{"shared_state": {"level": 6}}')
    run("update", room_id, '{"shared_state": {"level": 7}}', "--expected-revision", "1")
    [conflict] = run.json("conflicts", room_id)
    assert conflict["paths"] == [
        {"path": "/shared_state/level", "base": 5, "current": 6, "incoming": 7}
    ]
    out, _ = run("conflicts", room_id)
    assert conflict["conflict_id"] in out
    assert "/shared_state/level: base 5, current 6, incoming 7" in out
    assert "1 open conflict" in out

    _, err = run("resolve", conflict["conflict_id"], "/shared_state/level", code=1)
    assert "PATH=current|incoming|base" in err
    resolved = run.json("resolve", conflict["conflict_id"], "/shared_state/level=incoming")
    assert resolved["shared_state"] == {"level": 7}
    assert run.json("conflicts", room_id) == []


def _watch(sqlite_url: str, *args: str) -> subprocess.Popen[str]:
    """`loremaster watch` in a process of its own, once it is following."""
    process = subprocess.Popen(
        [*LOREMASTER, "watch", *args, "--database-url", sqlite_url],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_environment(),
    )
    assert process.stderr is not None
    ready = process.stderr.readline()
    assert ready.startswith("watching"), ready + process.stderr.read()
    return process


def test_watch_prints_changes_as_another_process_makes_them(run: Runner, sqlite_url: str) -> None:
    room_id = asyncio.run(_seed_room(sqlite_url))
    process = _watch(sqlite_url, room_id, "--count", "2", "--json")
    try:
        run("update", room_id, '{"shared_state": {"quest": "the lair"}}', "--user", "dm")
        run("update", room_id, '{"title": "Tuesday table"}', "--user", "dm")
        out, err = process.communicate(timeout=60)
    finally:
        process.kill()
    assert process.returncode == 0, err
    events: list[dict[str, Any]] = [orjson.loads(line) for line in out.splitlines()]
    assert [e["revision"] for e in events] == [2, 3]
    assert events[0]["changes"] == [
        {"op": "add", "path": "/shared_state/quest", "value": "the lair"}
    ]

    out, _ = run("watch", room_id, "--since-revision", "0", "--count", "2")
    assert "rev 1 create by dm" in out
    assert "add /shared_state/quest" in out


def test_watch_ends_cleanly_on_ctrl_c(sqlite_url: str) -> None:
    room_id = asyncio.run(_seed_room(sqlite_url))
    process = _watch(sqlite_url, room_id)
    try:
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=60)
    finally:
        process.kill()
    assert process.returncode == 0, err
    assert "Traceback" not in err


BAD_INPUTS: list[tuple[str, ...]] = [
    ("export-for", MISSING, "--to", "openai"),
    ("export-for", "{id}", "--to", "mistral"),
    ("export-for", "{id}", "--to", "openai", "--branch", "nowhere"),
    ("tokens", MISSING, "--provider", "openai"),
    ("tokens", "{id}"),
    ("watch", MISSING),
    ("watch", "{id}", "--count", "0"),
    ("lock", "{id}"),
    ("lock", "{id}", "--user", "dm", "--timeout", "-1"),
    ("unlock", MISSING, "--user", "dm"),
    ("conflicts", MISSING),
    ("resolve", "nonsense", "/x=current"),
    ("resolve", "{id}.2", "/x=sideways"),
    ("resolve", "{id}.2"),
    ("show", "{id}", "--branch", "nowhere"),
    ("append", "{id}", "--branch", "nowhere", "--role", "user", "--content", "x"),
    ("update", "{id}", '{"title": "x"}', "--branch", "nowhere"),
    ("events", MISSING, "--branch", "main"),
    ("history", "{id}", "--branch", "nowhere"),
    ("migrate", "{id}", "--to", "openai", "--branch", "nowhere"),
]


@pytest.mark.parametrize("args", BAD_INPUTS, ids=lambda args: " ".join(args)[:40])
def test_bad_input_to_the_new_options_gives_one_line(
    args: tuple[str, ...], run: Runner, sqlite_url: str
) -> None:
    context_id = run.json("create", "--title", "target")["context_id"]
    argv = [a.replace("{id}", context_id) for a in args]
    _, err = run(*argv, code=1)
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("Error:")
