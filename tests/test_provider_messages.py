"""Provider-shaped messages (OpenAI, Anthropic, Gemini) are accepted wherever messages are:
detected by their own marks, or named with ``source=`` / ``--from``, and stored neutral."""

from __future__ import annotations

import asyncio
import contextlib
import copy
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from loremaster import (
    ContextManager,
    ConversationContext,
    Message,
    ProviderType,
    TextPart,
    ThinkingPart,
    ToolCallPart,
    ToolResultPart,
    ValidationFailed,
)
from loremaster.cli import main
from loremaster.document._changes import parse_messages
from loremaster.models import is_neutral_message, read_message_groups
from loremaster.translation import ContextTranslator, detect, message_source
from loremaster.validation import ContextValidator
from test_translation import GEMINI_ROLLS as TRANSLATION_GEMINI
from test_translation import PARALLEL_OPENAI as TRANSLATION_OPENAI

ANTHROPIC, OPENAI, GOOGLE = ProviderType.ANTHROPIC, ProviderType.OPENAI, ProviderType.GOOGLE
translator = ContextTranslator()

# The hard cases of tests/test_translation.py: parallel tool calls, tool_use/tool_result
# with text between results, thinking, and Gemini calls without ids.

PARALLEL_OPENAI: list[dict[str, Any]] = TRANSLATION_OPENAI["messages"]

ANTHROPIC_TOOLS: list[dict[str, Any]] = [
    {"role": "user", "content": "Roll twice"},
    {
        "role": "assistant",
        "content": [
            {"type": "thinking", "thinking": "Two dice.", "signature": "sig-1"},
            {"type": "tool_use", "id": "t1", "name": "roll", "input": {"dice": "1d20"}},
            {"type": "tool_use", "id": "t2", "name": "roll", "input": {"dice": "1d4"}},
        ],
    },
    {
        "role": "user",
        "content": [
            {"type": "tool_result", "tool_use_id": "t1", "content": "4"},
            {"type": "text", "text": "And?"},
            {"type": "tool_result", "tool_use_id": "t2", "content": "3", "is_error": True},
        ],
    },
]

GEMINI_ROLLS: list[dict[str, Any]] = TRANSLATION_GEMINI["contents"]

PAYLOADS: dict[ProviderType, dict[str, Any]] = {
    OPENAI: {"messages": PARALLEL_OPENAI},
    ANTHROPIC: {"messages": ANTHROPIC_TOOLS},
    GOOGLE: {"contents": GEMINI_ROLLS},
}
LISTS = {OPENAI: PARALLEL_OPENAI, ANTHROPIC: ANTHROPIC_TOOLS, GOOGLE: GEMINI_ROLLS}

UNKNOWN_SHAPES: list[dict[str, Any]] = [
    {"role": "user", "text": "hi"},  # a field no format has
    {"role": "model", "content": "hi"},  # Gemini's role, OpenAI's content
    {  # OpenAI's and Anthropic's block types in one message
        "role": "user",
        "content": [
            {"type": "image_url", "image_url": {"url": "https://example.com/a.png"}},
            {"type": "tool_use", "id": "t", "name": "roll", "input": {}},
        ],
    },
    {"role": "user", "parts": [{"kind": "text", "text": "a"}, {"text": "b"}]},  # half Gemini
    {"messages": [{"role": "user", "content": "hi"}]},  # a whole request body
]


def shape(messages: list[Message]) -> list[tuple[str, list[Any], str | None]]:
    """What a message says, without its id and time."""
    return [(m.role.value, m.parts, m.name) for m in messages]


def calls(messages: list[Message]) -> list[str]:
    return [p.id for m in messages for p in m.parts if isinstance(p, ToolCallPart)]


def results(messages: list[Message]) -> list[str]:
    return [p.call_id for m in messages for p in m.parts if isinstance(p, ToolResultPart)]


def assert_one_clear_error(error: ValidationFailed, path: str) -> None:
    assert [issue.path for issue in error.issues] == [path]
    text = str(error)
    for form in ('"role", "content"', '"kind"', "OpenAI", "Anthropic", "Gemini", "source="):
        assert form in text, form
    assert "pydantic" not in text
    assert "Extra inputs" not in text
    assert "discriminator" not in text


# Detection.


def test_each_provider_is_detected_by_its_own_marks() -> None:
    found = {
        provider: [detect(m) for m in messages if not is_neutral_message(m)]
        for provider, messages in LISTS.items()
    }
    assert found == {OPENAI: [OPENAI] * 3, ANTHROPIC: [ANTHROPIC] * 2, GOOGLE: [GOOGLE] * 3}
    assert detect({"role": "developer", "content": "Be brief."}) is OPENAI
    assert detect({"role": "user", "content": [{"type": "text", "text": "hi"}]}) is OPENAI
    cached = {"type": "text", "text": "hi", "cache_control": {"type": "ephemeral"}}
    assert detect({"role": "user", "content": [cached]}) is ANTHROPIC
    assert detect({"parts": [{"inline_data": {"mime_type": "image/png", "data": "AA=="}}]}) is (
        GOOGLE
    )
    for unknown in UNKNOWN_SHAPES:
        assert detect(unknown) is None, unknown


def test_the_neutral_forms_are_told_apart_by_their_keys() -> None:
    assert is_neutral_message({"role": "user", "content": "hi"})
    assert is_neutral_message({"role": "user", "parts": [{"kind": "text", "text": "hi"}]})
    assert is_neutral_message(Message(role="user", content="hi").model_dump(mode="json"))
    assert is_neutral_message({"role": "user", "content": [{"kind": "text", "text": "hi"}]})
    assert not is_neutral_message({"role": "tool", "tool_call_id": "a", "content": "1"})
    assert not is_neutral_message({"role": "user", "parts": [{"text": "hi"}]})
    assert not is_neutral_message({"role": "user", "content": [{"type": "text", "text": "hi"}]})


_WORDS = st.sampled_from(
    [
        "role", "content", "parts", "kind", "type", "text", "tool_calls", "tool_call_id",
        "id", "name", "function", "arguments", "input", "tool_use_id", "functionCall",
        "function_response", "args", "response", "user", "assistant", "tool", "model",
        "developer", "system", "tool_use", "tool_result", "image_url", "url", "source",
        "thinking", "inline_data", "data", "mime_type", "metadata", "is_error",
    ]
)  # fmt: skip
_JUNK = st.recursive(
    st.none() | st.booleans() | st.integers() | _WORDS | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_WORDS, inner, max_size=4),
    max_leaves=12,
)


def _objects(value: Any) -> list[dict[str, Any]]:
    """Every object inside `value`, itself included."""
    if isinstance(value, list):
        return [o for item in value for o in _objects(item)]
    if isinstance(value, dict):
        return [value, *(o for item in value.values() for o in _objects(item))]
    return []


@st.composite
def _broken(draw: st.DrawFn) -> dict[str, Any]:
    """A message of the fixtures with one field of one of its objects set to junk."""
    message = copy.deepcopy(
        draw(st.sampled_from([*PARALLEL_OPENAI, *ANTHROPIC_TOOLS, *GEMINI_ROLLS]))
    )
    target = draw(st.sampled_from(_objects(message)))
    target[draw(st.sampled_from([*target, "role", "type", "id"]))] = draw(_JUNK)
    return message


@settings(max_examples=400, deadline=None, database=None)
@given(
    messages=st.lists(_broken() | st.dictionaries(_WORDS, _JUNK, max_size=4) | _JUNK, max_size=3),
    source=st.sampled_from([None, "openai", "anthropic", "gemini"]),
)
def test_any_message_is_read_or_refused_as_validation_failed(
    messages: list[Any], source: str | None
) -> None:
    for message in messages:
        if isinstance(message, dict):
            detect(message)  # never raises
    refused: ValidationFailed | None = None
    try:
        groups = read_message_groups(messages, source)
    except ValidationFailed as error:
        refused = error
    else:
        assert len(groups) == len(messages)
        for given_, group in zip(messages, groups, strict=True):
            assert group == [given_] or all(isinstance(m, Message) for m in group)
    with contextlib.suppress(ValidationFailed):  # what append_messages runs
        parse_messages(messages, message_source(source))
    assert refused is None or "pydantic" not in str(refused)


# ConversationContext and Message.


@pytest.mark.parametrize("provider", [OPENAI, ANTHROPIC, GOOGLE])
def test_a_conversation_takes_a_providers_messages_as_from_provider_reads_them(
    provider: ProviderType,
) -> None:
    context = ConversationContext(title="t", messages=copy.deepcopy(LISTS[provider]))
    expected = translator.from_provider(PAYLOADS[provider], provider)
    assert shape(context.messages) == shape(expected)
    assert len({m.id for m in context.messages}) == len(context.messages)


def test_the_hard_cases_become_the_right_neutral_messages() -> None:
    openai = ConversationContext(title="t", messages=PARALLEL_OPENAI).messages
    assert [m.role for m in openai] == ["user", "assistant", "tool", "tool", "assistant"]
    assert openai[1].parts == [
        ToolCallPart(id="call_a", name="roll", arguments={"dice": "1d20"}),
        ToolCallPart(id="call_b", name="damage", arguments={"dice": "2d6"}),
    ]
    assert [m.parts for m in openai[2:4]] == [
        [ToolResultPart(call_id="call_a", content="17")],
        [ToolResultPart(call_id="call_b", content="9")],
    ]
    claude = ConversationContext(title="t", messages=ANTHROPIC_TOOLS).messages
    assert [m.role for m in claude] == ["user", "assistant", "tool", "user", "tool"]
    assert claude[1].parts[0] == ThinkingPart(
        text="Two dice.", provider_data={"anthropic": {"signature": "sig-1"}}
    )
    assert (calls(claude), results(claude)) == (["t1", "t2"], ["t1", "t2"])
    assert claude[3].parts == [TextPart(text="And?")]
    assert claude[4].parts == [ToolResultPart(call_id="t2", content="3", is_error=True)]
    gemini = ConversationContext(title="t", messages=GEMINI_ROLLS).messages
    assert [m.role for m in gemini] == ["user", "assistant", "tool", "tool"]
    assert calls(gemini) == results(gemini) == ["call_1_0", "call_1_1"]


def test_neutral_and_provider_messages_mix_and_a_neutral_one_is_never_re_read() -> None:
    kept = Message(role="user", content="Hello")
    context = ConversationContext(
        title="t",
        messages=[
            kept,
            {"role": "assistant", "parts": [{"kind": "tool_call", "id": "c1", "name": "look"}]},
            {"role": "tool", "tool_call_id": "c1", "content": "A door."},
            {"role": "assistant", "content": "You see a door."},
        ],
    )
    assert context.messages[0] is kept
    assert [m.role for m in context.messages] == ["user", "assistant", "tool", "assistant"]
    assert results(context.messages) == ["c1"]
    forced = ConversationContext.model_validate(
        {"title": "t", "messages": [kept, {"role": "user", "content": "Hi"}]},
        context={"source": "google"},
    )
    assert forced.messages[0] is kept
    assert forced.messages[1].text == "Hi"


def test_one_message_is_read_as_a_message_and_several_are_refused_with_a_reason() -> None:
    tool = Message.model_validate({"role": "tool", "tool_call_id": "call_a", "content": "17"})
    assert tool.parts == [ToolResultPart(call_id="call_a", content="17")]
    model = Message.model_validate({"role": "model", "parts": [{"text": "Hail."}]})
    assert (model.role, model.text) == ("assistant", "Hail.")
    with pytest.raises(ValidationFailed, match="several") as caught:
        Message.model_validate(ANTHROPIC_TOOLS[2])
    assert "3 neutral messages" in str(caught.value)
    with pytest.raises(ValidationFailed) as caught:
        Message.model_validate({"role": "user", "text": "hi"})
    assert_one_clear_error(caught.value, "")


@pytest.mark.parametrize("unknown", UNKNOWN_SHAPES)
def test_an_unknown_shape_is_one_clear_error_naming_the_accepted_forms(
    unknown: dict[str, Any],
) -> None:
    with pytest.raises(ValidationFailed) as caught:
        ConversationContext(title="t", messages=[{"role": "user", "content": "ok"}, unknown])
    if "messages" in unknown:
        assert "whole request body" in str(caught.value)
        assert [i.path for i in caught.value.issues] == ["/messages/1"]
    else:
        assert_one_clear_error(caught.value, "/messages/1")


def test_a_forced_source_reads_with_that_provider() -> None:
    cached = {
        "role": "system",
        "content": [{"type": "text", "text": "GM", "cache_control": {"type": "ephemeral"}}],
    }
    (detected,) = ConversationContext(title="t", messages=[cached]).messages
    assert detected.parts[0].provider_data == {
        "anthropic": {"cache_control": {"type": "ephemeral"}}
    }
    (forced,) = ConversationContext.model_validate(
        {"title": "t", "messages": [cached]}, context={"source": "openai"}
    ).messages
    assert forced.parts[0].provider_data == {"openai": {"cache_control": {"type": "ephemeral"}}}
    with pytest.raises(ValidationFailed, match="cannot read this google message") as caught:
        ConversationContext.model_validate(
            {"title": "t", "messages": [PARALLEL_OPENAI[2]]}, context={"source": "gemini"}
        )
    assert {i.path for i in caught.value.issues} == {"/messages/0", "/messages/0/role"}
    with pytest.raises(ValidationFailed) as caught:
        ConversationContext.model_validate(
            {"title": "t", "messages": [PARALLEL_OPENAI[2]]}, context={"source": "mistral"}
        )
    assert [i.path for i in caught.value.issues] == ["/source"]


def test_the_translator_takes_provider_messages_too() -> None:
    payload = translator.to_provider(ANTHROPIC_TOOLS, "openai").payload
    assert [m["role"] for m in payload["messages"]] == ["user", "assistant", "tool", "tool", "user"]
    assert [m.get("tool_call_id") for m in payload["messages"][2:4]] == ["t1", "t2"]


# The manager, on SQLite and PostgreSQL.


async def stored(manager: ContextManager, context_id: str) -> list[Message]:
    context = await manager.get_context(context_id)
    assert isinstance(context, ConversationContext)
    return context.messages


async def test_append_messages_stores_each_providers_messages_neutral(
    manager: ContextManager,
) -> None:
    context_id = await manager.create_context(ConversationContext(title="table"), user_id="dm")
    assert await manager.append_messages(context_id, PARALLEL_OPENAI, user_id="dm") == 2
    assert await manager.append_messages(context_id, ANTHROPIC_TOOLS, user_id="dm") == 3
    assert await manager.append_messages(context_id, GEMINI_ROLLS, user_id="dm") == 4
    messages = await stored(manager, context_id)
    assert [m.role for m in messages] == [
        *["user", "assistant", "tool", "tool", "assistant"],
        *["user", "assistant", "tool", "user", "tool"],
        *["user", "assistant", "tool", "tool"],
    ]
    assert [m.seq for m in messages] == list(range(1, 15))
    assert calls(messages) == ["call_a", "call_b", "t1", "t2", "call_1_0", "call_1_1"]
    assert results(messages) == calls(messages)
    expected = [
        m
        for provider in (OPENAI, ANTHROPIC, GOOGLE)
        for m in translator.from_provider(PAYLOADS[provider], provider)
    ]
    assert shape(messages) == shape(expected)


async def test_an_openai_tool_message_alone_answers_a_call_stored_before(
    manager: ContextManager,
) -> None:
    context_id = await manager.create_context(ConversationContext(title="table"))
    await manager.append_messages(context_id, PARALLEL_OPENAI[:2])
    await manager.append_messages(context_id, PARALLEL_OPENAI[2])
    await manager.append_messages(context_id, [PARALLEL_OPENAI[3]], source="openai")
    messages = await stored(manager, context_id)
    assert [m.role for m in messages] == ["user", "assistant", "tool", "tool"]
    assert results(messages) == ["call_a", "call_b"]


async def test_append_messages_batch_reads_each_conversations_messages(
    manager: ContextManager,
) -> None:
    first = await manager.create_context(ConversationContext(title="one"))
    second = await manager.create_context(ConversationContext(title="two"))
    revisions = await manager.append_messages_batch(
        {first: ANTHROPIC_TOOLS[2], second: GEMINI_ROLLS}, user_id=None
    )
    assert revisions == {first: 2, second: 2}
    assert [m.role for m in await stored(manager, first)] == ["tool", "user", "tool"]
    assert results(await stored(manager, second)) == ["call_1_0", "call_1_1"]
    await manager.append_messages_batch({first: [PARALLEL_OPENAI[2]]}, source="openai")
    assert results(await stored(manager, first)) == ["t1", "t2", "call_a"]


async def test_create_context_reads_a_dicts_messages_with_a_forced_source(
    manager: ContextManager,
) -> None:
    cached = {"type": "text", "text": "GM", "cache_control": {"type": "ephemeral"}}
    system = {"role": "system", "content": [cached]}
    fields = {"context_type": "conversation", "title": "imported", "messages": [system]}
    detected = await manager.create_context({**fields, "messages": [system, *ANTHROPIC_TOOLS]})
    messages = await stored(manager, detected)
    assert [m.role for m in messages] == ["system", "user", "assistant", "tool", "user", "tool"]
    assert messages[0].parts[0].provider_data == {
        "anthropic": {"cache_control": {"type": "ephemeral"}}
    }
    forced = await manager.create_context(fields, source="openai")
    assert (await stored(manager, forced))[0].parts[0].provider_data == {
        "openai": {"cache_control": {"type": "ephemeral"}}
    }
    with pytest.raises(ValidationFailed, match="cannot read this openai message") as caught:
        await manager.create_context({**fields, "messages": ANTHROPIC_TOOLS}, source="openai")
    assert caught.value.issues[0].path.startswith("/messages/1/")
    ids = await manager.create_contexts(
        [{"context_type": "conversation", "title": "g", "messages": GEMINI_ROLLS}], source="gemini"
    )
    assert calls(await stored(manager, ids[0])) == ["call_1_0", "call_1_1"]
    model = ConversationContext(title="made", messages=PARALLEL_OPENAI)
    made = await manager.create_context(model, source="anthropic")  # a model is read already
    assert shape(await stored(manager, made)) == shape(model.messages)


async def test_an_unknown_shape_is_refused_by_every_route_and_nothing_is_written(
    manager: ContextManager,
) -> None:
    context_id = await manager.create_context(ConversationContext(title="table"))
    for unknown in UNKNOWN_SHAPES[:4]:
        with pytest.raises(ValidationFailed) as caught:
            await manager.append_messages(context_id, [PARALLEL_OPENAI[0], unknown])
        assert_one_clear_error(caught.value, "/1")
        with pytest.raises(ValidationFailed) as caught:
            await manager.append_messages_batch({context_id: unknown})
        assert_one_clear_error(caught.value, "/0")
        with pytest.raises(ValidationFailed) as caught:
            await manager.create_context(
                {"context_type": "conversation", "title": "x", "messages": [unknown]}
            )
        assert_one_clear_error(caught.value, "/messages/0")
    with pytest.raises(ValidationFailed) as caught:  # issues name the message given
        await manager.append_messages(
            context_id, [ANTHROPIC_TOOLS[2], {"role": "tool", "tool_call_id": "x", "content": 5}]
        )
    assert [i.path for i in caught.value.issues] == ["/1/content"]
    with pytest.raises(ValidationFailed) as caught:
        await manager.append_messages(context_id, PARALLEL_OPENAI, source="mistral")
    assert [i.path for i in caught.value.issues] == ["/source"]
    assert (await manager.get_context(context_id)).revision == 1
    assert await stored(manager, context_id) == []


# The validator.


async def test_the_validator_takes_provider_messages_in_a_dict() -> None:
    validator = ContextValidator(load_entry_points=False)
    for provider, messages in LISTS.items():
        fields = {"context_type": "conversation", "title": "t", "messages": messages}
        result = await validator.validate_context(fields)
        assert result.is_valid, (provider, result.issues)
        assert not [i for i in result.issues if i.code == "schema.invalid"]
        broken = await validator.validate_context({**fields, "title": ""})
        assert [i.path for i in broken.errors] == ["/title"]  # the messages are fine
    unknown = {"context_type": "conversation", "title": "t", "messages": UNKNOWN_SHAPES[:1]}
    result = await validator.validate_context(unknown)
    assert not result.is_valid
    assert [(i.path, i.code) for i in result.errors] == [("/messages/0", "schema.invalid")]
    assert "Anthropic" in result.errors[0].message
    assert "pydantic" not in result.errors[0].message
    cached = {"type": "text", "text": "GM", "cache_control": {"type": "ephemeral"}}
    fields = {
        "context_type": "conversation",
        "title": "t",
        "messages": [{"role": "system", "content": [cached]}],
    }
    assert (await validator.validate_context(fields, source="openai")).is_valid
    refused = await validator.validate_context(
        {**fields, "messages": ANTHROPIC_TOOLS}, source="openai"
    )
    assert not refused.is_valid


# The command line.


def cli(url: str, capsys: pytest.CaptureFixture[str], *args: str, code: int = 0) -> str:
    exit_code = main([*args, "--database-url", url])
    out, err = capsys.readouterr()
    assert exit_code == code, (out, err)
    return out + err


async def _conversation(url: str) -> str:
    async with ContextManager(database_url=url) as cm:
        return await cm.create_context(ConversationContext(title="cli"))


async def _messages(url: str, context_id: str) -> list[Message]:
    async with ContextManager(database_url=url) as cm:
        return await stored(cm, context_id)


def test_loremaster_append_reads_provider_files(
    sqlite_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    context_id = asyncio.run(_conversation(sqlite_url))
    files = {}
    for name, body in {
        "openai.json": PARALLEL_OPENAI,
        "claude.json": ANTHROPIC_TOOLS[2],  # one message that is three
        "gemini.json": GEMINI_ROLLS,
        "cached.json": {
            "role": "system",
            "content": [{"type": "text", "text": "GM", "cache_control": {"type": "ephemeral"}}],
        },
        "unknown.json": UNKNOWN_SHAPES[0],
    }.items():
        files[name] = tmp_path / name
        files[name].write_text(json.dumps(body))
    append = ("append", context_id, "--file")
    assert "revision 2" in cli(sqlite_url, capsys, *append, str(files["openai.json"]))
    assert "revision 3" in cli(
        sqlite_url, capsys, *append, str(files["claude.json"]), "--from", "anthropic"
    )
    assert "revision 4" in cli(
        sqlite_url, capsys, *append, str(files["gemini.json"]), "--from", "gemini"
    )
    assert "revision 5" in cli(
        sqlite_url, capsys, *append, str(files["cached.json"]), "--from", "openai"
    )
    error = cli(sqlite_url, capsys, *append, str(files["unknown.json"]), code=1)
    assert "Anthropic" in error
    assert "--from" in error
    assert "pydantic" not in error
    wrong = cli(sqlite_url, capsys, *append, str(files["gemini.json"]), "--from", "openai", code=1)
    assert "cannot read this openai message" in wrong
    unknown = cli(sqlite_url, capsys, *append, str(files["openai.json"]), "--from", "x", code=1)
    assert "'--from'" in unknown
    messages = asyncio.run(_messages(sqlite_url, context_id))
    assert [m.role for m in messages] == [
        *["user", "assistant", "tool", "tool", "assistant"],
        *["tool", "user", "tool"],
        *["user", "assistant", "tool", "tool"],
        "system",
    ]
    assert results(messages) == ["call_a", "call_b", "t1", "t2", "call_1_0", "call_1_1"]
    assert messages[-1].parts[0].provider_data == {
        "openai": {"cache_control": {"type": "ephemeral"}}
    }
