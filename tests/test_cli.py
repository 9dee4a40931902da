from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import orjson
import pytest

from loremaster import ContextManager, ConversationContext
from loremaster.cli import cli, main

MISSING = "6f9619ff-8b86-d011-b42d-00c04fc964ff"


class Runner:
    def __init__(self, sqlite_url: str, capsys: pytest.CaptureFixture[str]) -> None:
        self.sqlite_url = sqlite_url
        self.capsys = capsys

    def __call__(self, *args: str, code: int = 0, db: bool = True) -> tuple[str, str]:
        argv = [*args, "--database-url", self.sqlite_url] if db else list(args)
        exit_code = main(argv)
        out, err = self.capsys.readouterr()
        assert exit_code == code, (out, err)
        return out, err

    def json(self, *args: str) -> Any:
        out, _ = self(*args, "--json")
        return orjson.loads(out)


@pytest.fixture
def run(sqlite_url: str, capsys: pytest.CaptureFixture[str]) -> Runner:
    return Runner(sqlite_url, capsys)


def test_create_show_update_append_events_delete(run: Runner, sqlite_url: str) -> None:
    created = run.json(
        "create",
        "--type",
        "collaborative",
        "--title",
        "Party Planning",
        "--data",
        '{"x": 1}',
        "--metadata",
        '{"campaign": "tomb"}',
        "--owner",
        "dm",
        "--collaborator",
        "p1",
    )
    context_id = created["context_id"]
    shown = run.json("show", context_id)
    assert shown["title"] == "Party Planning"
    assert shown["owner_id"] == "dm"
    assert shown["collaborators"] == ["p1"]

    updated = run.json(
        "update", context_id, '{"shared_state": {"quest": "Dragon\'s Lair"}}', "--user", "p1"
    )
    assert updated["shared_state"] == {"quest": "Dragon's Lair"}
    assert updated["revision"] == 2
    run.json(
        "update",
        context_id,
        '[{"op": "add", "path": "/shared_state/level", "value": 5}]',
        "--expected-revision",
        "2",
    )

    events = run.json("events", context_id)
    assert [e["op"] for e in events] == ["create", "update", "update"]
    assert [e["revision"] for e in run.json("events", context_id, "--since", "2")] == [3]

    out, _ = run("delete", context_id)
    assert "deleted" in out
    assert run.json("list") == {"items": [], "next_cursor": None}
    assert len(run.json("list", "--state", "deleted")["items"]) == 1
    assert run.json("restore", context_id)["state"] == "active"
    run("delete", context_id)
    run("delete", context_id, "--hard")
    run("show", context_id, code=1)


def test_conversation_messages_from_the_cli(run: Runner, tmp_path: Path) -> None:
    context_id = run.json("create", "--title", "Session 1")["context_id"]
    copy_source = tmp_path / "source.json"
    copy_source.write_text(run("show", context_id, "--json")[0])
    run("create", "--file", str(copy_source), code=1)
    assert run.json("create", "--file", str(copy_source), "--new-id")["context_id"] != context_id
    assert run.json("append", context_id, "--role", "user", "--content", "I search the crypt.") == {
        "revision": 2
    }
    batch = tmp_path / "batch.json"
    batch.write_bytes(
        orjson.dumps(
            [
                {"role": "assistant", "content": "You find [a silver key]."},
                {"role": "user", "content": "I take it."},
            ]
        )
    )
    assert run.json("append", context_id, "--file", str(batch)) == {"revision": 3}
    out, _ = run("show", context_id, "--last", "2")
    assert "You find [a silver key]." in out
    assert "I search the crypt." not in out
    hits = run.json("search", "silver key")
    assert hits[0]["context_id"] == context_id
    assert hits[0]["message_seq"] == 2
    out, _ = run("search", "crypt")
    assert context_id in out


def test_list_filters_and_pages(run: Runner) -> None:
    for i in range(5):
        run("create", "--title", f"ctx {i}", "--metadata", orjson.dumps({"n": i % 2}).decode())
    page = run.json("list", "--order-by", "title", "--ascending", "--limit", "2")
    assert [c["title"] for c in page["items"]] == ["ctx 0", "ctx 1"]
    page = run.json(
        "list",
        "--order-by",
        "title",
        "--ascending",
        "--limit",
        "2",
        "--cursor",
        page["next_cursor"],
    )
    assert [c["title"] for c in page["items"]] == ["ctx 2", "ctx 3"]
    odd = run.json("list", "--metadata", '{"n": 1}')
    assert sorted(c["title"] for c in odd["items"]) == ["ctx 1", "ctx 3"]
    run("create", "--title", "lonely-title")
    out, _ = run("list", "--title", "lonely")
    assert "lonely-title" in out
    assert "ctx" not in out


async def _seed_export(sqlite_url: str) -> str:
    async with ContextManager(database_url=sqlite_url) as cm:
        context_id = await cm.create_context(
            ConversationContext(title="export me", messages=[{"role": "user", "content": "hello"}]),
            user_id="dm",
        )
        await cm.append_messages(context_id, {"role": "assistant", "content": "hi there"})
        deleted = await cm.create_context(ConversationContext(title="deleted one"))
        await cm.delete_context(deleted)
        return context_id


async def _load(sqlite_url: str, context_id: str) -> ConversationContext:
    async with ContextManager(database_url=sqlite_url) as cm:
        context = await cm.get_context(context_id)
        assert isinstance(context, ConversationContext)
        return context


def test_export_then_import_into_another_database(
    run: Runner, sqlite_url: str, tmp_path: Path
) -> None:
    context_id = asyncio.run(_seed_export(sqlite_url))
    dump = tmp_path / "dump.json"
    _, err = run("export", "--output", str(dump))
    assert "exported 1 context\n" in err
    document = orjson.loads(dump.read_bytes())
    assert document["format"] == "loremaster-export"
    assert [c["title"] for c in document["contexts"]] == ["export me"]

    other = f"sqlite:///{tmp_path / 'other.db'}"
    assert main(["import", str(dump), "--database-url", other]) == 0
    assert main(["import", str(dump), "--database-url", other]) == 1
    assert main(["import", str(dump), "--database-url", other, "--skip-existing"]) == 0
    copy = asyncio.run(_load(other, context_id))
    assert copy.owner_id == "dm"
    assert [m.text for m in copy.messages] == ["hello", "hi there"]

    everything = tmp_path / "all.json"
    run("export", "--include-deleted", "-o", str(everything))
    assert len(orjson.loads(everything.read_bytes())["contexts"]) == 2


def test_the_demo_campaign_round_trips_through_export_and_import(
    run: Runner, tmp_path: Path
) -> None:
    run("demo")
    dump = tmp_path / "campaign.json"
    run("export", "-o", str(dump))
    other = f"sqlite:///{tmp_path / 'copy.db'}"
    assert main(["import", str(dump), "--database-url", other]) == 0
    run.capsys.readouterr()
    assert main(["health", "--json", "--database-url", other]) == 0
    copied = orjson.loads(run.capsys.readouterr().out)
    assert copied["storage"]["contexts"] == 3
    assert copied["storage"]["messages"] == 7  # main's view; versions and branches stay


def test_stats_health_and_demo(run: Runner) -> None:
    demo = run.json("demo")
    assert demo["room"]["shared_state"] == {"quest": "Dragon's Lair", "level": 5}
    assert demo["conversation"]["message_count"] == 7
    assert [v["branch"] for v in demo["history"]][:2] == ["main", "sneak-in"]
    assert demo["search"][0]["context_id"] == demo["conversation"]["context_id"]
    out, _ = run("demo")
    assert "loremaster demo" in out
    assert "roll_dice" in out
    health = run.json("health")
    assert health["status"] == "ok"
    assert health["storage"]["contexts"] == 3  # the second demo showed the first's campaign
    stats = run.json("stats")
    assert stats["health"]["storage"]["backend"] == "sqlite"
    out, _ = run("stats")
    assert "loremaster stats" in out


def test_codec_inspect_and_train_dictionary(run: Runner, tmp_path: Path) -> None:
    from loremaster.codec import Codec

    blob_file = tmp_path / "blob.bin"
    blob_file.write_bytes(Codec().encode({"quest": "Dragon's Lair" * 50}))
    out, _ = run("codec", "inspect", str(blob_file), "--json", db=False)
    header = orjson.loads(out)
    assert header["format"] == "msgpack"
    assert header["compression"] == "zstd"
    out, _ = run("codec", "inspect", str(blob_file), db=False)
    assert "compression" in out

    context_id = run.json("create", "--title", "tavern")["context_id"]
    batch = tmp_path / "batch.json"
    batch.write_bytes(
        orjson.dumps(
            [{"role": "assistant", "content": f"Verse {n} of the bard's song."} for n in range(100)]
        )
    )
    run("append", context_id, "--file", str(batch))
    trained = run.json("codec", "train-dictionary", "--samples", "100", "--size", "1024")
    assert trained["dictionary_id"] == 1


def test_validate_and_schema_export(run: Runner, tmp_path: Path) -> None:
    broken = tmp_path / "broken.json"
    broken.write_bytes(
        orjson.dumps(
            {
                "context_type": "conversation",
                "title": "t",
                "messages": [
                    {
                        "role": "tool",
                        "parts": [{"kind": "tool_result", "call_id": "x", "content": "1"}],
                    },
                    {"role": "user", "content": "hello"},
                ],
            }
        )
    )
    fixed = tmp_path / "fixed.json"
    out, _ = run("validate", str(broken), code=1, db=False)
    assert "conversation.orphan_tool_result" in out
    assert ".fixed" not in out
    assert not fixed.exists()
    out, _ = run("validate", str(broken), "--fix", str(fixed), code=1, db=False)
    assert "remove the tool result" in out
    assert "conversation.orphan_tool_result.fixed" in out
    report = orjson.loads(run("validate", str(broken), "--json", code=1, db=False)[0])
    assert report["is_valid"] is False
    out, _ = run("validate", str(fixed), db=False)
    assert "valid: no issues" in out

    schema = orjson.loads(run("schema", "export", "--type", "session", db=False)[0])
    assert schema["$id"] == "urn:loremaster:schema:session"
    folder = tmp_path / "schemas"
    run("schema", "export", "-o", str(folder), db=False)
    assert sorted(p.name for p in folder.iterdir()) == [
        "collaborative.json",
        "conversation.json",
        "generic.json",
        "session.json",
    ]


def test_help_and_version(run: Runner) -> None:
    out, _ = run("--help", db=False)
    assert "create" in out
    out, _ = run("--version", db=False)
    assert "0.1.0" in out


BAD_INPUTS: list[tuple[str, ...]] = [
    ("create", "--title", "t", "--data", "{bad json"),
    ("create", "--title", "t", "--data", "[1, 2]"),
    ("create",),
    ("create", "--type", "spaceship", "--title", "t"),
    ("create", "--file", "/nonexistent/ctx.json"),
    ("show", MISSING),
    ("show",),
    ("list", "--limit", "0"),
    ("list", "--metadata", "[1]"),
    ("list", "--cursor", "nonsense"),
    ("search", "x", "--limit", "0"),
    ("append", MISSING, "--role", "user", "--content", "x"),
    ("append", "{id}", "--role", "narrator", "--content", "x"),
    ("append", "{id}"),
    ("append", "{id}", "--file", "/nonexistent/m.json"),
    ("update", "{id}", "{not json"),
    ("update", "{id}", "5"),
    ("update", "{id}", '{"revision": 9}'),
    ("update", "{id}", '{"data": {"a": 1}}', "--expected-revision", "7"),
    ("update", MISSING, '{"title": "x"}'),
    ("delete", MISSING),
    ("events", MISSING),
    ("events", "{id}", "--since", "abc"),
    ("export", MISSING),
    ("import", "/nonexistent/dump.json"),
    ("import", "{notexport}"),
    ("create", "--title", "t", "--database-url", "mysql://localhost/x"),
    ("stats", "--database-url", "sqlite:///:memory:"),
    ("health", "--database-url", "sqlite:////proc/no/such/dir/x.db"),
    ("demo", "--database-url", "redis://localhost"),
    ("list", "--user", "eve", "--state", "nonsense"),
    ("no-such-command",),
    ("codec", "inspect", "/nonexistent/blob.bin"),
    ("codec", "inspect", "{notexport}"),
    ("codec", "train-dictionary", "--type", "session"),
    ("codec", "train-dictionary"),
    ("cleanup", "--database-url", "mysql://x"),
    ("db", "status", "--database-url", "mysql://x"),
    ("validate", "/nonexistent/context.json"),
    ("validate", "{notexport}", "--type", "spaceship"),
    ("schema", "export", "-o", "/proc/no/such/folder"),
]


@pytest.mark.parametrize("args", BAD_INPUTS, ids=lambda args: " ".join(args)[:40])
def test_bad_input_gives_one_line_and_exit_code_1(
    args: tuple[str, ...], run: Runner, sqlite_url: str, tmp_path: Path
) -> None:
    context_id = run.json("create", "--title", "target")["context_id"]
    not_export = tmp_path / "not-export.json"
    not_export.write_text('{"hello": 1}')
    argv = [a.replace("{id}", context_id).replace("{notexport}", str(not_export)) for a in args]
    if "--database-url" not in argv:
        argv += ["--database-url", sqlite_url]
    _, err = run(*argv, code=1, db=False)
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("Error:")
    assert "Traceback" not in err


def test_every_command_has_help_and_docs() -> None:
    docs = (Path(__file__).parent.parent / "docs" / "cli.md").read_text()
    for name, command in cli.commands.items():
        assert command.help, f"{name} has no help text"
        assert f"loremaster {name}" in docs, f"{name} is not in docs/cli.md"


def test_history_version_diff_rollback_and_branches(run: Runner) -> None:
    context_id = run.json("create", "--title", "Crypt", "--data", '{"hp": 10}')["context_id"]
    run("append", context_id, "--role", "user", "--content", "we enter")
    checkpoint = run.json("version", "create", context_id, "-m", "at the door", "--tag", "door")[0]
    run("update", context_id, '{"data": {"hp": 3}}')
    run("append", context_id, "--role", "user", "--content", "a trap!")

    versions = run.json("history", context_id)
    assert [v["message"] for v in versions] == ["", "", "at the door", "", "created"]
    assert [v["number"] for v in versions] == sorted((v["number"] for v in versions), reverse=True)
    assert [v["message"] for v in run.json("history", context_id, "--tag", "door")] == [
        "at the door"
    ]
    out, _ = run("history", context_id)
    assert "[door]" in out
    assert checkpoint["version_id"] in out

    diff = run.json("diff", context_id, checkpoint["version_id"], versions[0]["version_id"])
    assert diff["patch"] == [{"op": "replace", "path": "/data/hp", "value": 3}]
    assert [m["parts"][0]["text"] for m in diff["messages_added"]] == ["a trap!"]
    out, _ = run("diff", context_id, checkpoint["version_id"], versions[0]["version_id"])
    assert "replace /data/hp = 3" in out

    past = run.json("version", "show", context_id, checkpoint["version_id"])
    assert past["data"] == {"hp": 10}
    rolled = run.json("rollback", context_id, checkpoint["version_id"])
    assert rolled["data"] == {"hp": 10}
    assert run.json("show", context_id)["message_count"] == 1

    run.json("branch", "create", context_id, "left", "--from", checkpoint["version_id"])
    run("update", context_id, '{"data": {"hp": 1}}')
    branches = run.json("branch", "list", context_id)
    assert [b["name"] for b in branches] == ["main", "left"]
    merged = run.json("branch", "merge", context_id, "left")
    assert merged["merged"]
    assert run.json("show", context_id)["data"] == {"hp": 1}

    _, err = run("version", "show", context_id, MISSING, code=1)
    assert "not found" in err


def test_migrate_moves_a_conversation_and_refuses_losses_on_request(
    run: Runner, sqlite_url: str
) -> None:
    async def seed() -> str:
        async with ContextManager(database_url=sqlite_url) as cm:
            return await cm.create_context(
                ConversationContext(
                    title="t",
                    primary_provider="anthropic",
                    messages=[
                        {"role": "user", "content": "hi"},
                        {
                            "role": "assistant",
                            "parts": [
                                {"kind": "thinking", "text": "hmm"},
                                {"kind": "text", "text": "hello"},
                            ],
                        },
                    ],
                )
            )

    context_id = asyncio.run(seed())
    out, _ = run("migrate", context_id, "--to", "openai", "--refuse-loss", code=1)
    assert "not migrated" in out
    out, _ = run("migrate", context_id, "--to", "openai")
    assert "migrated anthropic -> openai" in out
    assert run.json("show", context_id)["primary_provider"] == "openai"
