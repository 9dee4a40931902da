"""Moving a whole database: ``loremaster export --full`` and ``loremaster import`` of the
dump, SQLite -> PostgreSQL -> SQLite with everything (versions, branches, events,
conflicts), checked on the way in; bad dumps refused by line; files written whole."""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import io
import os
import sqlite3
import stat
import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from rich.console import Console

from loremaster import (
    CollaborativeContext,
    Context,
    ContextManager,
    ConversationContext,
    DataCorrupted,
    LockHeld,
    PermissionDenied,
    SessionContext,
    UnsupportedFormat,
    ValidationFailed,
)
from loremaster.cli import _render, main
from loremaster.cli._files import output_file
from loremaster.codec import inspect_blob
from loremaster.manager._dump import (
    DumpReader,
    check_versions,
    context_lines,
    footer_line,
    header_line,
)
from loremaster.storage import (
    ContextRecord,
    ContextRows,
    Coordination,
    EventRecord,
    Lease,
    MessageRecord,
    VersionRecord,
    VersionState,
)
from loremaster.versioning import version_checksum

from conftest import table_counts

MISSING = "6f9619ff-8b86-d011-b42d-00c04fc964ff"


def cli(capsys: pytest.CaptureFixture[str], *args: str, code: int = 0) -> tuple[str, str]:
    exit_code = main(list(args))
    out, err = capsys.readouterr()
    assert exit_code == code, (out, err)
    return out, err


def dump_lines(path: Path) -> list[bytes]:
    return path.read_bytes().splitlines(keepends=True)


async def export_lines(url: str) -> list[bytes]:
    async with ContextManager(database_url=url) as cm:
        return [line async for line in cm.export_full()]


async def import_lines(url: str, lines: Any, **options: Any) -> Any:
    async with ContextManager(database_url=url) as cm:
        return await cm.import_full(lines, **options)


# -- a realistic database ---------------------------------------------------------------


async def seed(url: str) -> dict[str, str]:
    """Several contexts of each type, with appends, updates, automatic versions and tagged
    checkpoints, a branch with its own messages merged back, a rollback, a provider
    migration, a recorded conflict, a held lock, large messages stored through the codec
    with a trained dictionary, an archived and a deleted context."""
    async with ContextManager(database_url=url) as cm:
        story = await cm.create_context(
            ConversationContext(
                title="The Sunken Crypt",
                data={"torches": 3, "ratio": 0.75},
                collaborators=["ana", "bo"],
            ),
            user_id="dm",
        )
        for turn in range(1, 21):
            await cm.append_messages(story, {"role": "user", "content": f"turn {turn}"})
        with cm.tool_call("mcp:append_messages"):  # an agent's write: its event names the tool
            await cm.append_messages(story, {"role": "assistant", "content": "The air is cold."})
        crossroads = await cm.create_version(story, "dm", "At the crossroads", ["fork"])
        await cm.create_branch(story, "went-left", crossroads.version_id, "dm")
        await cm.update_context(story, {"data": {"torches": 2}}, "dm", branch="went-left")
        await cm.append_messages(
            story, {"role": "user", "content": "We take the left tunnel."}, branch="went-left"
        )
        await cm.append_messages(story, {"role": "user", "content": "We take the right tunnel."})
        merged = await cm.merge_branch(story, "went-left", "main", "dm")
        assert merged.merged
        # Upper case sorts apart under a language's collation: the dump's order is bytes'.
        await cm.create_branch(story, "Zigzag", user_id="dm")
        await cm.append_messages(story, {"role": "user", "content": "Zig."}, branch="Zigzag")
        await cm.create_version(story, "dm", "After the merge", ["merged", "keep"])
        await cm.rollback_to_version(story, crossroads.version_id, "dm")
        await cm.append_messages(story, {"role": "assistant", "content": "Back at the fork."})

        tavern = await cm.create_context(
            ConversationContext(title="The Tavern", primary_provider="openai"), user_id="bard"
        )
        verses = [
            {"role": "assistant", "content": f"Verse {n} of the bard's song about the crypt."}
            for n in range(100)
        ]
        await cm.append_messages(tavern, [{"role": "system", "content": "Be a bard."}, *verses])
        await cm.train_dictionary("conversation", 100, 1024)
        ballad = " ".join(
            f"Verse {n} of the bard's song, sung by {n % 7} dwarves" for n in range(150)
        )
        await cm.append_messages(  # its thinking, not search text, goes through the codec
            tavern,
            {
                "role": "assistant",
                "parts": [{"kind": "thinking", "text": ballad}, {"kind": "text", "text": ballad}],
            },
        )
        migrated = await cm.migrate_context(tavern, to_provider="anthropic")
        assert migrated.migrated

        quiet = await cm.create_context(
            ConversationContext(title="Quiet", messages=[{"role": "user", "content": "hello"}])
        )
        await cm.update_context(quiet, {"state": "archived"})

        sessions = []
        for player in ("ana", "bo"):
            session = await cm.create_context(
                SessionContext(
                    title=f"{player} at the table",
                    owner_id=player,
                    user_id=player,
                    active_conversations=[story],
                )
            )
            await cm.update_context(session, {"preferences": {"dice": "3d6"}}, player)
            sessions.append(session)

        room = await cm.create_context(
            CollaborativeContext(title="Party Planning", collaborators=["ana", "bo"]),
            user_id="dm",
        )
        await cm.update_context(room, {"shared_state": {"hp": 5, "gold": 1}}, "dm")
        await cm.update_context(
            room,
            {"shared_state": {"hp": 9, "mp": 3}},
            "ana",
            expected_revision=1,
            strategy="manual_merge",
        )
        assert len(await cm.list_conflicts(room)) == 1
        camp = await cm.create_context(
            CollaborativeContext(
                title="Camp", collaborators=["ana", "bo"], shared_state={"fire": True}
            ),
            user_id="dm",
        )
        await cm.acquire_context_lock(camp, "ana", timeout=3600)
        await cm.update_context(camp, {"shared_state": {"watch": "ana"}}, "ana")

        notes = await cm.create_context(Context(title="GM notes", data={"secret": "mimic"}))
        gone = await cm.create_context(ConversationContext(title="Deleted session"))
        await cm.delete_context(gone)
        return {
            "story": story,
            "tavern": tavern,
            "quiet": quiet,
            "room": room,
            "camp": camp,
            "notes": notes,
            "gone": gone,
            **{f"session{n}": s for n, s in enumerate(sessions)},
        }


async def everything(url: str, ids: dict[str, str]) -> dict[str, Any]:
    """What the library shows of each context: every branch's view, every version rebuilt
    with its messages, the event log, the conflicts."""
    shown: dict[str, Any] = {}
    async with ContextManager(database_url=url) as cm:
        for name, context_id in ids.items():
            main = await cm.get_context(context_id, include_deleted=True)
            deleted = main.state == "deleted"  # its branches are out of reach until restored
            listed = [] if deleted else await cm.list_branches(context_id)
            branches = sorted(listed, key=lambda b: (b.name != "main", b.name))
            history = await cm.get_version_history(context_id, limit=1000)
            shown[name] = {
                "branches": [b.model_dump(mode="json") for b in branches],
                "views": {
                    b: (
                        await cm.get_context(context_id, branch=b, include_deleted=True)
                    ).model_dump(mode="json", exclude={"last_accessed"})
                    for b in ["main", *(b.name for b in branches[1:])]
                },
                "history": [v.model_dump(mode="json") for v in history],
                "versions": {
                    v.version_id: (await cm.get_version(context_id, v.version_id)).model_dump(
                        mode="json", exclude={"last_accessed"}
                    )
                    for v in history
                },
                "events": [e.model_dump(mode="json") for e in await cm.get_events(context_id)],
                "conflicts": [
                    c.model_dump(mode="json") for c in await cm.list_conflicts(context_id)
                ],
            }
    return shown


def dictionary_blobs(path: str) -> int:
    with sqlite3.connect(path) as conn:
        blobs = conn.execute("SELECT body_blob FROM messages WHERE body_blob IS NOT NULL")
        return sum(1 for (blob,) in blobs if inspect_blob(blob).dictionary_id)


# -- the round trip -----------------------------------------------------------------------


def test_sqlite_to_postgresql_to_sqlite_keeps_everything(
    sqlite_url: str, postgres_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ids = asyncio.run(seed(sqlite_url))
    assert dictionary_blobs(sqlite_url.removeprefix("sqlite:///")) >= 1
    first, second, third = (tmp_path / f"{n}.jsonl" for n in ("sqlite", "postgres", "back"))
    back_url = f"sqlite:///{tmp_path / 'back.db'}"

    _, err = cli(capsys, "export", "--full", "-o", str(first), "--database-url", sqlite_url)
    assert "exported 9 contexts" in err
    out, _ = cli(capsys, "import", str(first), "--database-url", postgres_url)
    assert out.strip() == "imported 9 contexts, skipped 0"
    cli(capsys, "export", "--full", "-o", str(second), "--database-url", postgres_url)
    imported = orjson.loads(
        cli(capsys, "import", str(second), "--json", "--database-url", back_url)[0]
    )
    assert imported == {"imported": 9, "skipped": 0, "lines": len(dump_lines(second))}
    cli(capsys, "export", "--full", "-o", str(third), "--database-url", back_url)

    # Every row of every table, as the three databases hold them, the same (the header
    # says when and from where): keys are sorted, payloads and bodies plain JSON.
    lines = dump_lines(first)
    assert lines[1:] == dump_lines(second)[1:] == dump_lines(third)[1:]
    header = orjson.loads(lines[0])
    assert (header["format"], header["version"], header["backend"]) == (
        "loremaster-dump",
        1,
        "sqlite",
    )
    assert orjson.loads(dump_lines(second)[0])["backend"] == "postgresql"
    records = [orjson.loads(line) for line in lines[1:]]
    kinds = [r["record"] for r in records]
    assert kinds.count("context") == kinds.count("end") == 9
    assert kinds.count("branch") == 2
    assert records[-1] == {"contexts": 9, "record": "footer"}
    assert not any(b"lease" in line for line in lines[1:])
    assert "version" in kinds
    assert "event" in kinds
    assert [r["tool"] for r in records if "tool" in r] == ["mcp:append_messages"]

    # Every version rebuilds as it did, with its messages; the event logs are the same.
    source = asyncio.run(everything(sqlite_url, ids))
    assert asyncio.run(everything(postgres_url, ids)) == source
    assert asyncio.run(everything(back_url, ids)) == source
    story = source["story"]
    assert len(story["history"]) > 25
    assert {v["automatic"] for v in story["history"]} == {True, False}
    assert {"fork", "merged"} <= {t for v in story["history"] for t in v["tags"]}
    assert {e["op"] for e in story["events"]} >= {"create", "append_messages", "merge", "rollback"}
    assert {e["branch"] for e in story["events"]} == {"main", "went-left", "Zigzag"}
    assert [b["name"] for b in story["branches"]] == ["main", "Zigzag", "went-left"]
    assert source["tavern"]["views"]["main"]["primary_provider"] == "anthropic"
    assert len(source["room"]["conflicts"]) == 1
    assert source["quiet"]["views"]["main"]["state"] == "archived"
    assert source["gone"]["views"]["main"]["state"] == "deleted"

    # The large messages were re-encoded with the target's codec (which has no trained
    # dictionary), and the lock was left behind: its lease is the source's alone.
    assert dictionary_blobs(str(tmp_path / "back.db")) == 0

    async def take_lock(url: str) -> None:
        async with ContextManager(database_url=url) as cm:
            await cm.acquire_context_lock(ids["camp"], "bo")

    with pytest.raises(LockHeld):
        asyncio.run(take_lock(sqlite_url))
    asyncio.run(take_lock(back_url))
    asyncio.run(take_lock(postgres_url))


async def test_the_library_round_trip_through_postgresql(
    sqlite_url: str, postgres_url: str
) -> None:
    ids = await seed(sqlite_url)
    lines = await export_lines(sqlite_url)
    report = await import_lines(postgres_url, iter(lines))
    assert (report.imported, report.skipped, report.lines) == (9, 0, len(lines))
    assert (await export_lines(postgres_url))[1:] == lines[1:]
    assert await table_counts(postgres_url) == await table_counts(sqlite_url)
    async with ContextManager(database_url=postgres_url) as cm:
        await cm.append_messages(ids["story"], {"role": "user", "content": "onwards"})
        await cm.create_version(ids["story"], message="life goes on")
        await cm.merge_branch(ids["story"], "went-left", "main", strategy="source")


# -- streaming ------------------------------------------------------------------------------


async def many_contexts(url: str, count: int, messages: int) -> None:
    text = "The lich's phylactery is hidden in the well. " * 20
    async with ContextManager(database_url=url, enable_versioning=False) as cm:
        await cm.create_contexts(
            [
                ConversationContext(
                    title=f"chat {n}",
                    messages=[
                        {"role": "user", "content": f"{n}.{m} {text}"} for m in range(messages)
                    ],
                )
                for n in range(count)
            ]
        )


async def test_the_export_reads_one_context_at_a_time(
    sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    await many_contexts(sqlite_url, 60, 100)
    async with ContextManager(database_url=sqlite_url) as cm:
        loads: list[str] = []
        load_rows = cm.storage.load_rows

        async def counted(context_id: str) -> Any:
            loads.append(context_id)
            return await load_rows(context_id)

        monkeypatch.setattr(cm.storage, "load_rows", counted)
        digest, size, ends = hashlib.sha256(), 0, 0
        tracemalloc.start()
        try:
            async for line in cm.export_full():
                if line.startswith(b'{"context_id"') and b'"record":"end"' in line:
                    ends += 1
                    assert len(loads) == ends  # the next context is not read yet
                digest.update(line)
                size += len(line)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert ends == 60
    assert size > 3_000_000
    assert peak < size / 5, (peak, size)  # one context in memory, never the database


async def test_the_import_writes_each_context_as_it_is_read(
    sqlite_url: str, tmp_path: Path
) -> None:
    await many_contexts(sqlite_url, 40, 100)
    dump = tmp_path / "dump.jsonl"
    dump.write_bytes(b"".join(await export_lines(sqlite_url)))
    target = tmp_path / "target.db"
    stored: list[int] = []

    def lines() -> Iterator[bytes]:
        with dump.open("rb") as stream:
            for line in stream:
                if b'"record":"context"' in line and target.exists():
                    with sqlite3.connect(target) as conn:
                        stored.append(conn.execute("SELECT count(*) FROM contexts").fetchone()[0])
                yield line

    tracemalloc.start()
    try:
        report = await import_lines(f"sqlite:///{target}", lines())
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert report.imported == 40
    assert stored == list(range(40))  # context n was stored before context n+1 was read
    assert peak < dump.stat().st_size / 5, (peak, dump.stat().st_size)


# -- the wire format ------------------------------------------------------------------------

V1 = Path(__file__).parent / "data" / "dump-v1.jsonl"


def pinned_rows() -> tuple[ContextRows, dict[str, Any]]:
    """The rows written to tests/data/dump-v1.jsonl, and the version's document."""
    document = {
        "title": "t",
        "description": "",
        "data": {"b": 1, "a": 2},
        "metadata": {},
        "state": "active",
        "owner_id": "dm",
        "collaborators": [],
        "permissions": {},
    }
    view = (("main", 1),)
    record = ContextRecord(
        context_id="3f0c1a52-7d1e-4b8e-9a51-2f6f3c1d9e00",
        context_type="generic",
        title="t",
        description="",
        data={"b": 1, "a": 2},
        metadata={},
        extra={},
        state="active",
        owner_id="dm",
        collaborators=[],
        permissions={},
        revision=2,
        message_count=1,
        turn_count=1,
        doc_bytes=100,
        messages_bytes=50,
        created_at=1,
        last_modified=2,
        last_accessed=3,
        version_number=1,
        versioning=VersionState(head="v1"),
        coordination=Coordination(lease=Lease("dm", 2, 99), conflicts=({"id": "c1"},)),
    )
    message = MessageRecord(1, "m1", "user", b'{"role":"user","parts":[]}', None, "hi", 1)
    version = VersionRecord(
        "v1",
        record.context_id,
        1,
        "main",
        None,
        "snapshot",
        b"",
        1,
        view,
        1,
        2,
        "dm",
        "created",
        ("t",),
        2,
        version_checksum(document, view),
        0,
        automatic=True,
    )
    event = EventRecord(
        record.context_id, 2, "append_messages", [{"path": "/messages/-", "op": "add"}], "dm", 2
    )
    return ContextRows(record, [], [("main", message)], [version], [event]), document


def test_the_dump_format_version_1_is_pinned() -> None:
    rows, document = pinned_rows()
    written = header_line(
        exported_at="2025-06-01T00:00:00+00:00", backend="sqlite", schema_version=7
    )
    written += b"".join(
        context_lines(rows, payload_of=lambda _: document, body_of=lambda m: m.body)
    )
    written += footer_line(1)
    assert written == V1.read_bytes()  # a change here is a new format version


def test_a_version_1_dump_reads_back_as_written() -> None:
    rows, document = pinned_rows()
    reader = DumpReader()
    read = [group for line in V1.read_bytes().splitlines() if (group := reader.feed(line))]
    reader.finish()
    [group] = read
    assert (reader.header or {}).get("schema_version") == 7
    assert group.record == dataclasses.replace(
        rows.record, coordination=Coordination(lease=None, conflicts=({"id": "c1"},))
    )
    assert group.messages == list(rows.messages)
    assert group.events == list(rows.events)
    [version] = group.versions
    assert version.record == rows.versions[0]
    assert version.content == document
    assert list(version.content["data"]) == ["b", "a"]  # payloads keep their stored order
    check_versions(group.versions)


# -- bad dumps ------------------------------------------------------------------------------


@pytest.fixture
def small_dump(sqlite_url: str) -> list[bytes]:
    async def make() -> list[bytes]:
        async with ContextManager(database_url=sqlite_url) as cm:
            for title in ("one", "two", "three"):
                context_id = await cm.create_context(ConversationContext(title=title))
                for n in range(3):
                    await cm.append_messages(
                        context_id, {"role": "user", "content": f"{title} {n}"}
                    )
                await cm.create_version(context_id, message="checkpoint", tags=["t"])
            return [line async for line in cm.export_full()]

    return asyncio.run(make())


def group_of(lines: list[bytes], index: int) -> tuple[int, int]:
    """The line indexes of the `index`th context's context and end records."""
    starts = [n for n, line in enumerate(lines) if b'"record":"context"' in line]
    ends = [n for n, line in enumerate(lines) if b'"record":"end"' in line]
    return starts[index], ends[index]


def resealed(lines: list[bytes], index: int) -> list[bytes]:
    """`lines` with the `index`th group's end record made to match what it now holds, as
    someone editing a dump by hand would."""
    start, end = group_of(lines, index)
    digest = hashlib.sha256(b"".join(lines[start:end]))
    record = orjson.loads(lines[end])
    record["sha256"] = digest.hexdigest()
    return [*lines[:end], orjson.dumps(record) + b"\n", *lines[end + 1 :]]


def edited(lines: list[bytes], index: int, kind: bytes, change: Any) -> list[bytes]:
    """`lines` with the first `kind` record of the `index`th group changed by `change`."""
    start, end = group_of(lines, index)
    at = next(n for n in range(start, end) if kind in lines[n])
    record = orjson.loads(lines[at])
    change(record)
    return [*lines[:at], orjson.dumps(record) + b"\n", *lines[at + 1 :]]


def titles(path: Path) -> list[str]:
    if not path.exists():
        return []
    with sqlite3.connect(path) as conn:
        return [row[0] for row in conn.execute("SELECT title FROM contexts ORDER BY created_at")]


def _cut_mid_group(lines: list[bytes]) -> list[bytes]:
    return lines[: group_of(lines, 1)[1]]


def _cut_mid_line(lines: list[bytes]) -> list[bytes]:
    at = group_of(lines, 1)[0] + 2
    return [*lines[:at], lines[at][:30]]


def _no_footer(lines: list[bytes]) -> list[bytes]:
    return lines[:-1]


def _body_changed(lines: list[bytes]) -> list[bytes]:
    return [line.replace(b"two 1", b"two X") for line in lines]


def _payload_changed(lines: list[bytes]) -> list[bytes]:
    def change(record: dict[str, Any]) -> None:
        record["payload"]["title"] = "forged"

    return resealed(edited(lines, 1, b'"kind":"snapshot"', change), 1)


def _row_changed(lines: list[bytes]) -> list[bytes]:
    def change(record: dict[str, Any]) -> None:
        record["title"] = "forged"

    return resealed(edited(lines, 1, b'"record":"context"', change), 1)


def _not_json(lines: list[bytes]) -> list[bytes]:
    at = group_of(lines, 1)[0] + 1
    return [*lines[:at], b"{not json\n", *lines[at:]]


def _unknown_field(lines: list[bytes]) -> list[bytes]:
    def change(record: dict[str, Any]) -> None:
        record["colour"] = "red"

    return resealed(edited(lines, 1, b'"record":"event"', change), 1)


def _lines_dropped(lines: list[bytes]) -> list[bytes]:
    start, end = group_of(lines, 1)
    return [*lines[: start + 1], *lines[start + 2 : end], *lines[end:]]


BAD_DUMPS = [
    ("cut mid-group", _cut_mid_group, DataCorrupted, "cut short", ["one"]),
    ("cut mid-line", _cut_mid_line, ValidationFailed, "not a valid record", ["one"]),
    ("no footer", _no_footer, DataCorrupted, "without its footer", ["one", "two", "three"]),
    ("message altered", _body_changed, DataCorrupted, "SHA-256", ["one"]),
    ("line dropped", _lines_dropped, DataCorrupted, "end record says", ["one"]),
    ("payload forged", _payload_changed, DataCorrupted, "fails its checksum", ["one"]),
    ("row forged", _row_changed, DataCorrupted, "fails its checksum", ["one"]),
    ("not JSON", _not_json, ValidationFailed, "not a valid record", ["one"]),
    ("unknown field", _unknown_field, ValidationFailed, "colour", ["one"]),
]


@pytest.mark.parametrize(
    ("spoil", "error", "says", "stored"),
    [case[1:] for case in BAD_DUMPS],
    ids=[case[0] for case in BAD_DUMPS],
)
async def test_a_bad_dump_is_refused_by_line_and_writes_nothing_of_that_context(
    small_dump: list[bytes],
    tmp_path: Path,
    *,
    spoil: Any,
    error: type[Exception],
    says: str,
    stored: list[str],
) -> None:
    target = tmp_path / "target.db"
    with pytest.raises(error, match=says) as raised:
        await import_lines(f"sqlite:///{target}", spoil(small_dump))
    assert "line " in str(raised.value)
    assert titles(target) == stored


async def test_a_dump_of_another_format_or_version_is_refused(
    small_dump: list[bytes], tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'target.db'}"
    header = orjson.loads(small_dump[0])
    newer = orjson.dumps({**header, "version": 2}) + b"\n"
    with pytest.raises(UnsupportedFormat, match="version 2"):
        await import_lines(url, [newer, *small_dump[1:]])
    with pytest.raises(UnsupportedFormat, match="header"):
        await import_lines(url, small_dump[1:])
    with pytest.raises(ValidationFailed, match="empty"):
        await import_lines(url, [])
    assert titles(tmp_path / "target.db") == []


def test_a_bad_dump_is_one_line_on_the_command_line(
    small_dump: list[bytes], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    dump = tmp_path / "cut.jsonl"
    dump.write_bytes(b"".join(_cut_mid_group(small_dump)))
    _, err = cli(
        capsys, "import", str(dump), "--database-url", f"sqlite:///{tmp_path / 'x.db'}", code=1
    )
    assert err.count("\n") == 1
    assert err.startswith("Error: dump line ")


# -- existing contexts, users, progress -----------------------------------------------------


def test_an_existing_context_stops_the_import_unless_skipped(
    small_dump: list[bytes], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    dump = tmp_path / "dump.jsonl"
    dump.write_bytes(b"".join(small_dump))
    target = f"sqlite:///{tmp_path / 'target.db'}"
    cli(capsys, "import", str(dump), "--database-url", target)
    before = asyncio.run(table_counts(target))

    _, err = cli(capsys, "import", str(dump), "--database-url", target, code=1)
    assert "exists in this database already" in err
    assert asyncio.run(table_counts(target)) == before

    second = orjson.loads(small_dump[group_of(small_dump, 1)[0]])["context_id"]
    cli(capsys, "delete", second, "--hard", "--database-url", target)
    report = orjson.loads(
        cli(capsys, "import", str(dump), "--skip-existing", "--json", "--database-url", target)[0]
    )
    assert (report["imported"], report["skipped"]) == (1, 2)
    assert asyncio.run(table_counts(target)) == before


async def test_only_an_administrator_exports_or_imports_everything(
    small_dump: list[bytes], sqlite_url: str, tmp_path: Path
) -> None:
    async with ContextManager(database_url=sqlite_url) as cm:
        with pytest.raises(PermissionDenied, match="administrator"):
            cm.export_full("dm")
        with pytest.raises(PermissionDenied, match="administrator"):
            await cm.import_full(small_dump, "dm")


def test_the_command_line_refuses_a_user(
    small_dump: list[bytes], sqlite_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    dump = tmp_path / "dump.jsonl"
    dump.write_bytes(b"".join(small_dump))
    target = f"sqlite:///{tmp_path / 'target.db'}"
    _, err = cli(capsys, "import", str(dump), "--user", "eve", "--database-url", target, code=1)
    assert "administrator" in err
    out = tmp_path / "mine.jsonl"
    cli(
        capsys,
        "export",
        "--full",
        "-o",
        str(out),
        "--user",
        "eve",
        "--database-url",
        sqlite_url,
        code=1,
    )
    assert not out.exists()
    _, err = cli(capsys, "export", "--full", MISSING, "--database-url", sqlite_url, code=1)
    assert "give no ids" in err


@pytest.fixture
def terminal(monkeypatch: pytest.MonkeyPatch) -> io.StringIO:
    """stderr as a terminal would show it."""
    screen = io.StringIO()
    console = Console(file=screen, force_terminal=True, width=100)
    monkeypatch.setattr(_render, "error_console", console)
    return screen


def test_progress_shows_on_a_terminal_and_never_with_json(
    small_dump: list[bytes],
    sqlite_url: str,
    tmp_path: Path,
    *,
    capsys: pytest.CaptureFixture[str],
    terminal: io.StringIO,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    dump = tmp_path / "dump.jsonl"
    cli(capsys, "export", "--full", "-o", str(dump), "--database-url", sqlite_url)
    assert "exporting" in terminal.getvalue()
    terminal.truncate(0)
    terminal.seek(0)
    cli(capsys, "import", str(dump), "--database-url", f"sqlite:///{tmp_path / 'a.db'}")
    assert "importing" in terminal.getvalue()
    terminal.truncate(0)
    terminal.seek(0)

    out, _ = cli(
        capsys, "export", "--full", "--json", "-o", str(dump), "--database-url", sqlite_url
    )
    assert orjson.loads(out)["contexts"] == 3
    out, _ = cli(
        capsys, "import", str(dump), "--json", "--database-url", f"sqlite:///{tmp_path / 'b.db'}"
    )
    assert orjson.loads(out)["imported"] == 3
    assert terminal.getvalue() == ""

    monkeypatch.setattr(_render, "error_console", Console(file=terminal, force_terminal=False))
    cli(capsys, "import", str(dump), "--database-url", f"sqlite:///{tmp_path / 'c.db'}")
    assert "importing" not in terminal.getvalue()


def test_a_full_dump_pipes_from_one_database_into_another(
    small_dump: list[bytes],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fake_stdin = io.TextIOWrapper(io.BytesIO(b"".join(small_dump)))
    monkeypatch.setattr("sys.stdin", fake_stdin)
    out, _ = cli(capsys, "import", "-", "--database-url", f"sqlite:///{tmp_path / 'piped.db'}")
    assert out.strip() == "imported 3 contexts, skipped 0"
    assert titles(tmp_path / "piped.db") == ["one", "two", "three"]


# -- files written whole --------------------------------------------------------------------

GOOD = b'{"format": "loremaster-export", "good": "backup"}\n'


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


def test_a_failed_export_leaves_the_old_file_as_it_was(
    small_dump: list[bytes], sqlite_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    backup = tmp_path / "backup.json"
    backup.write_bytes(GOOD)
    cli(capsys, "export", MISSING, "-o", str(backup), "--database-url", sqlite_url, code=1)
    assert backup.read_bytes() == GOOD
    cli(
        capsys,
        "export-for",
        MISSING,
        "--to",
        "openai",
        "-o",
        str(backup),
        "--database-url",
        sqlite_url,
        code=1,
    )
    assert backup.read_bytes() == GOOD
    cli(
        capsys,
        "export",
        "--full",
        "-o",
        str(backup),
        "--user",
        "x",
        "--database-url",
        sqlite_url,
        code=1,
    )
    assert backup.read_bytes() == GOOD

    # A failure halfway through: the second context's versions no longer decode.
    second = orjson.loads(small_dump[group_of(small_dump, 1)[0]])["context_id"]
    with sqlite3.connect(sqlite_url.removeprefix("sqlite:///")) as conn:
        conn.execute(
            "UPDATE versions SET payload = x'00' "
            "WHERE context_row = (SELECT row_id FROM contexts WHERE context_id = ?)",
            (second,),
        )
    _, err = cli(
        capsys, "export", "--full", "-o", str(backup), "--database-url", sqlite_url, code=1
    )
    assert "does not decode" in err
    assert backup.read_bytes() == GOOD
    assert leftovers(tmp_path) == []

    cli(capsys, "export", "-o", str(backup), "--database-url", sqlite_url)
    assert orjson.loads(backup.read_bytes())["format"] == "loremaster-export"


def test_translate_validate_and_schema_write_whole_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "payload.json"
    target.write_bytes(GOOD)
    broken = tmp_path / "broken.json"
    broken.write_text('{"messages": [{"role": "narrator"}]}')
    cli(
        capsys,
        "translate",
        str(broken),
        "--from",
        "openai",
        "--to",
        "anthropic",
        "-o",
        str(target),
        code=1,
    )
    assert target.read_bytes() == GOOD  # it used to be emptied before the translation ran
    good = tmp_path / "openai.json"
    good.write_text('{"messages": [{"role": "user", "content": "hi"}]}')
    os.chmod(target, 0o640)
    cli(capsys, "translate", str(good), "--from", "openai", "--to", "anthropic", "-o", str(target))
    assert orjson.loads(target.read_bytes())["messages"][0]["role"] == "user"
    assert stat.S_IMODE(target.stat().st_mode) == 0o640

    context = tmp_path / "context.json"
    context.write_text('{"context_type": "conversation", "title": "t"}')
    fixed = tmp_path / "fixed.json"
    fixed.write_bytes(GOOD)
    cli(capsys, "validate", str(context), "--fix", str(fixed))
    assert orjson.loads(fixed.read_bytes())["title"] == "t"
    _, err = cli(
        capsys, "validate", str(context), "--fix", str(tmp_path / "no" / "such.json"), code=1
    )
    assert err.startswith("Error: cannot write")

    schemas = tmp_path / "schemas"
    cli(capsys, "schema", "export", "-o", str(schemas))
    assert len(list(schemas.glob("*.json"))) == 4
    assert leftovers(tmp_path) == leftovers(schemas) == []


def test_output_file_replaces_on_success_only(tmp_path: Path) -> None:
    path = tmp_path / "out.bin"
    path.write_bytes(GOOD)

    def interrupted(interruption: BaseException) -> None:
        with output_file(path) as stream:
            stream.write(b"half of it")
            raise interruption

    for interruption in (RuntimeError("boom"), KeyboardInterrupt()):
        with pytest.raises(type(interruption)):
            interrupted(interruption)
        assert path.read_bytes() == GOOD
        assert leftovers(tmp_path) == []
    with output_file(path) as stream:
        stream.write(b"all of it")
    assert path.read_bytes() == b"all of it"
    new = tmp_path / "new.bin"
    with output_file(new) as stream:
        stream.write(b"fresh")
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(new.stat().st_mode) == 0o666 & ~umask
