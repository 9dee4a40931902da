"""Compact stored forms: message bodies without what their row holds elsewhere, and events
of appends that name their message rows. Events read back exactly as they were announced;
rows written by earlier versions (whole message JSON, full-copy events) still read."""

from __future__ import annotations

import asyncio
import sqlite3
import uuid
from typing import Any

import asyncpg
import orjson
import pytest

from loremaster import (
    ContextEvent,
    ContextManager,
    ConversationContext,
    DataCorrupted,
    Message,
    UnsupportedFormat,
)
from loremaster.models import from_micros, to_micros
from loremaster.storage import MessageRecord, message_fields, pack_message
from loremaster.storage._compact import read_changes, stored_changes
from loremaster.storage._types import EventRecord

MESSAGES: list[dict[str, Any]] = [
    {"role": "user", "content": "We open the crypt door."},
    {"role": "assistant", "content": "", "name": "dm", "metadata": {"mood": "grim", "n": 1.5}},
    {
        "role": "assistant",
        "parts": [
            {"kind": "thinking", "text": "The door is trapped.", "signature": "sig"},
            {"kind": "text", "text": "Roll\nfor perception.", "provider_data": {"x": {"y": 1}}},
            {"kind": "tool_call", "id": "c1", "name": "roll", "arguments": {"dice": "1d20"}},
        ],
    },
    {
        "role": "tool",
        "parts": [
            {
                "kind": "tool_result",
                "call_id": "c1",
                "content": [
                    {"kind": "text", "text": "17"},
                    {"kind": "image", "url": "https://example.com/d20.png"},
                    {"kind": "text", "text": "a natural 17"},
                ],
                "is_error": False,
            }
        ],
    },
    {
        "role": "user",
        "parts": [
            {"kind": "image", "data": "aGVsbG8=", "media_type": "image/png", "detail": "low"},
            {"kind": "document", "url": "https://example.com/map.pdf", "title": "Map"},
            {"kind": "text", "text": "Zoë's map — ünïcode ✓"},
            {"kind": "text", "text": "Zoë's"},
        ],
    },
]
LARGE_THOUGHT = "The lich counts the party's torches, one by one. " * 300


# -- what is stored ---------------------------------------------------------------------


def _record(message: Message, body: bytes, search_text: str) -> MessageRecord:
    return MessageRecord(
        1, message.id, message.role.value, body, None, search_text, to_micros(message.created_at)
    )


@pytest.mark.parametrize("given", MESSAGES, ids=range(len(MESSAGES)))
def test_a_compact_body_reads_back_as_the_message(given: dict[str, Any]) -> None:
    message = Message.model_validate(given)
    value = message.model_dump(mode="json", exclude={"seq"})
    search_text = "\n".join(
        [p.text for p in message.parts if p.kind == "text"]
        + [c.text for p in message.parts if p.kind == "tool_result" for c in p.content
           if c.kind == "text"]
    )  # fmt: skip
    body = pack_message(value, search_text)
    fields = message_fields(_record(message, body, search_text), body)
    assert Message.model_validate(fields) == message
    assert len(body) < len(orjson.dumps(value))


def test_the_stored_forms_are_a_wire_format() -> None:
    text = "The party enters the crypt."
    value = {
        "id": "m1",
        "role": "user",
        "parts": [{"provider_data": {}, "kind": "text", "text": text}],
        "name": None,
        "created_at": "2025-01-02T03:04:05.000006Z",
        "metadata": {},
    }
    assert pack_message(value, text) == b'{"v":1,"parts":[27]}'
    tagged = {**value, "parts": [{"provider_data": {"a": {}}, "kind": "text", "text": text}]}
    assert pack_message(tagged, text) == (
        b'{"v":1,"parts":[{"provider_data":{"a":{}},"kind":"text","#text":27}]}'
    )
    assert pack_message(value, "") == (
        b'{"v":1,"parts":[{"kind":"text","text":"' + text.encode() + b'"}]}'
    )
    message = MessageRecord(3, "m1", "user", b"", None, text, 1)
    changes = [{"op": "add", "path": "/messages/-", "value": value}]
    assert stored_changes(changes, "main~4", [message]) == {"v": 1, "messages": ["main~4", 3, 3]}
    ops = [{"op": "replace", "path": "/title", "value": "x"}]
    assert stored_changes([*ops, *changes], "main", [message]) == {
        "v": 1,
        "ops": ops,
        "messages": ["main", 3, 3],
    }
    blob = MessageRecord(3, "m1", "user", b"", b"blob", text, 1)
    assert stored_changes(changes, "main", [blob]) == changes  # a blob is copied, as before
    other = MessageRecord(3, "m2", "user", b"", None, text, 1)
    assert stored_changes(changes, "main", [other]) == changes  # not that message's add


def test_a_stored_form_that_does_not_read_is_a_typed_error() -> None:
    message = MessageRecord(1, "m1", "user", b'{"v":1,"parts":[99]}', None, "short", 1)
    with pytest.raises(DataCorrupted, match="out of range"):
        message_fields(message, message.body)
    with pytest.raises(UnsupportedFormat, match="format 2"):
        message_fields(message, b'{"v":2}')
    with pytest.raises(DataCorrupted, match="not stored as JSON"):
        message_fields(message, b"{")
    event = EventRecord("c", 2, "append_messages", [], None, 1)
    unreadable: list[Any] = [
        {"v": 1, "ops": [], "messages": ["main", 0, 1]},
        {"v": 1, "ops": {}, "messages": ["main", 1, 1]},
        {"v": 1, "ops": []},
        {"v": 1, "messages": ["main", 1]},
    ]
    for changes in unreadable:
        with pytest.raises(DataCorrupted, match="unreadable changes"):
            read_changes(event, changes)
    for changes in ({"v": 9, "ops": [], "messages": []}, "9"):
        with pytest.raises(UnsupportedFormat, match=r"format .?9"):
            read_changes(event, changes)
    ops = [{"op": "replace", "path": "/title", "value": "x"}]
    assert read_changes(event, ops).record.changes == ops


# -- read back as announced -------------------------------------------------------------


async def _announced(stream: Any, count: int) -> list[ContextEvent]:
    events = []
    async for event in stream:
        events.append(event)
        if len(events) == count:
            return events
    raise AssertionError("the stream ended")


async def test_events_read_back_exactly_as_announced(db_url: str) -> None:
    async with ContextManager(database_url=db_url) as cm:
        context_id = await cm.create_context(ConversationContext(title="crypt"), user_id="dm")
        stream = await cm.subscribe(context_id, "dm")
        await cm.append_messages(context_id, MESSAGES[:2], user_id="dm")
        await cm.append_messages(context_id, MESSAGES[2:], user_id="dm")
        await cm.append_messages(  # stored through the codec: its event copies it
            context_id,
            {"role": "assistant", "parts": [{"kind": "thinking", "text": LARGE_THOUGHT}]},
            user_id="dm",
        )
        await cm.create_branch(context_id, "aside", user_id="dm")
        await cm.append_messages(context_id, MESSAGES[1:3], user_id="dm", branch="aside")
        await cm.update_context(context_id, {"data": {"door": "open"}}, "dm", branch="aside")
        merged = await cm.merge_branch(context_id, "aside", "main", "dm")
        assert merged.merged
        assert merged.messages_added == 2
        await cm.append_messages(context_id, MESSAGES[0], user_id="dm")
        revision = (await cm.get_context(context_id, "dm")).revision
        announced = await asyncio.wait_for(_announced(stream, revision - 1), 10)
        await stream.close()
        logged = await cm.get_events(context_id, "dm", since_revision=1)
        assert [e.model_dump() for e in logged] == [e.model_dump() for e in announced]
        replay = await cm.subscribe(context_id, "dm", since_revision=1)
        replayed = await asyncio.wait_for(_announced(replay, revision - 1), 10)
        await replay.close()
        assert [e.model_dump() for e in replayed] == [e.model_dump() for e in announced]
        merge = next(e for e in logged if e.op == "merge")
        assert [c["path"] for c in merge.changes][-2:] == ["/messages/-", "/messages/-"]
    stored = await _stored_changes(db_url, context_id)
    by_reference = {revision for revision, changes in stored if isinstance(changes, dict)}
    adding = {e.revision for e in logged if e.op in ("append_messages", "merge")}
    assert by_reference == adding - {4}  # revision 4's message went through the codec
    assert stored[-1][1] == {"v": 1, "messages": ["main", 9, 9]}


async def _stored_changes(url: str, context_id: str) -> list[tuple[int, Any]]:
    if url.startswith("sqlite:///"):
        with sqlite3.connect(url.removeprefix("sqlite:///")) as conn:
            rows = conn.execute(
                "SELECT revision, changes FROM events WHERE context_row = "
                "(SELECT row_id FROM contexts WHERE context_id = ?) ORDER BY revision",
                (context_id,),
            ).fetchall()
    else:
        conn = await asyncpg.connect(url)
        try:
            rows = await conn.fetch(
                "SELECT revision, changes FROM events WHERE context_id = $1 ORDER BY revision",
                uuid.UUID(context_id),
            )
        finally:
            await conn.close()
    return [(row[0], orjson.loads(row[1])) for row in rows]


# -- rows written before ----------------------------------------------------------------


async def _write_as_before(url: str, context_id: str, message: Message) -> None:
    """A message row and its append's event as loremaster wrote them before compact
    storage (whole JSON body; the event a full copy), and the row's counters bumped."""
    body = message.model_dump_json(exclude={"seq"})
    value = message.model_dump(mode="json", exclude={"seq"})
    changes = orjson.dumps([{"op": "add", "path": "/messages/-", "value": value}]).decode()
    when = to_micros(message.created_at)
    text = message.text
    if url.startswith("sqlite:///"):
        with sqlite3.connect(url.removeprefix("sqlite:///")) as conn:
            (row,) = conn.execute(
                "SELECT row_id FROM contexts WHERE context_id = ?", (context_id,)
            ).fetchone()
            conn.execute(
                "INSERT INTO messages (context_row, branch, seq, message_id, role, body, "
                "search_text, created_at) VALUES (?, 'main', 1, ?, ?, ?, ?, ?)",
                (row, message.id, message.role.value, body, text, when),
            )
            conn.execute(
                "INSERT INTO messages_fts (rowid, search_text) SELECT id, search_text "
                "FROM messages WHERE context_row = ?",
                (row,),
            )
            conn.execute(
                "INSERT INTO events (context_row, revision, op, changes, user_id, created_at, "
                "branch) VALUES (?, 2, 'append_messages', ?, 'dm', ?, 'main')",
                (row, changes, when),
            )
            conn.execute(
                "UPDATE contexts SET revision = 2, message_count = 1, turn_count = 1 "
                "WHERE context_id = ?",
                (context_id,),
            )
        return
    conn = await asyncpg.connect(url)
    try:
        key, at = uuid.UUID(context_id), from_micros(when)
        await conn.execute(
            "INSERT INTO messages (context_id, branch, seq, message_id, role, body, "
            "search_text, created_at) VALUES ($1, 'main', 1, $2, $3, $4, $5, $6)",
            key,
            message.id,
            message.role.value,
            body,
            text,
            at,
        )
        await conn.execute(
            "INSERT INTO events (context_id, revision, op, changes, user_id, created_at, "
            "branch) VALUES ($1, 2, 'append_messages', $2, 'dm', $3, 'main')",
            key,
            changes,
            at,
        )
        await conn.execute(
            "UPDATE contexts SET revision = 2, message_count = 1, turn_count = 1 "
            "WHERE context_id = $1",
            key,
        )
    finally:
        await conn.close()


async def test_rows_written_before_read_back_exactly(db_url: str) -> None:
    message = Message.model_validate(MESSAGES[2])
    async with ContextManager(database_url=db_url, enable_versioning=False) as cm:
        context_id = await cm.create_context(ConversationContext(title="old"), user_id="dm")
    await _write_as_before(db_url, context_id, message)
    async with ContextManager(database_url=db_url, enable_versioning=False) as cm:
        (read,) = await cm.get_messages(context_id, "dm")
        assert read == message.model_copy(update={"seq": 1})
        (event,) = await cm.get_events(context_id, "dm", since_revision=1)
        assert event.changes == [
            {
                "op": "add",
                "path": "/messages/-",
                "value": message.model_dump(mode="json", exclude={"seq"}),
            }
        ]
        await cm.append_messages(context_id, MESSAGES[0], user_id="dm")
        events = await cm.get_events(context_id, "dm", since_revision=1)
        assert [e.changes[0]["value"]["id"] for e in events][1:] != [message.id]
        assert events[0].changes[0]["value"]["id"] == message.id
        assert [m.text for m in await cm.get_messages(context_id, "dm")] == [
            message.text,
            "We open the crypt door.",
        ]
        hits = await cm.search_contexts("perception", "dm")
        assert [hit.message_seq for hit in hits] == [1]


def test_the_defaults_version_1_leaves_out_are_still_the_models() -> None:
    """Compact bodies leave out fields at their defaults, as written in `_compact`: should a
    model's default change, old rows would read differently. This fails first: the format
    then needs a version 2 that keeps reading version 1 with these defaults."""
    from pydantic import BaseModel

    from loremaster import (
        DocumentPart,
        ImagePart,
        Message,
        TextPart,
        ThinkingPart,
        ToolCallPart,
        ToolResultPart,
    )
    from loremaster.storage._compact import _MESSAGE_DEFAULTS, _PART_DEFAULTS

    def defaults(model: type[BaseModel], columns: set[str]) -> dict[str, object]:
        return {
            name: field.get_default(call_default_factory=True)
            for name, field in model.model_fields.items()
            if not field.is_required() and name not in columns and name != "kind"
        }

    parts = (TextPart, ImagePart, DocumentPart, ToolCallPart, ToolResultPart, ThinkingPart)
    assert {
        part.model_fields["kind"].default: defaults(part, set()) for part in parts
    } == _PART_DEFAULTS
    assert defaults(Message, {"id", "role", "created_at", "seq"}) == _MESSAGE_DEFAULTS
