"""Translation between the neutral model and the Anthropic, OpenAI and Gemini formats.

Every payload made here is also checked against the providers' own SDK request types
(offline: the ``anthropic``, ``openai`` and ``google-genai`` packages, no API calls).
"""

from __future__ import annotations

import base64
import copy
import functools
import itertools
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import anthropic.types as anthropic_types
import pytest
from click.testing import CliRunner
from google.genai import types as genai_types
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from openai.types.chat import ChatCompletionMessageParam
from pydantic import ConfigDict, TypeAdapter, ValidationError

from loremaster import (
    DocumentPart,
    ImagePart,
    Message,
    MessageRole,
    ProviderType,
    TextPart,
    ThinkingPart,
    ToolCallPart,
    ToolResultPart,
    ValidationFailed,
)
from loremaster.cli._translate import translate_command
from loremaster.models import Part
from loremaster.translation import (
    CHANGE_CODES,
    PLACEHOLDER_TEXT,
    SKIP_SIGNATURE,
    Action,
    ContextTranslator,
    safe_id,
    validate_payload,
)

ANTHROPIC, OPENAI, GOOGLE = ProviderType.ANTHROPIC, ProviderType.OPENAI, ProviderType.GOOGLE
PROVIDERS = [ANTHROPIC, OPENAI, GOOGLE]
PNG = base64.b64encode(
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x01\x00\x00\x00\x00\xc8"
).decode()

translator = ContextTranslator()


# The providers' SDK request types, strict about unknown fields.

_FORBID = ConfigDict(extra="forbid")
_ANTHROPIC_BLOCKS: dict[str, Any] = {
    "text": anthropic_types.TextBlockParam,
    "image": anthropic_types.ImageBlockParam,
    "document": anthropic_types.DocumentBlockParam,
    "tool_use": anthropic_types.ToolUseBlockParam,
    "tool_result": anthropic_types.ToolResultBlockParam,
    "thinking": anthropic_types.ThinkingBlockParam,
    "redacted_thinking": anthropic_types.RedactedThinkingBlockParam,
}


def _consume(value: Any) -> None:
    """Walk a validated value: the SDKs' `Iterable` fields validate as they are read."""
    if isinstance(value, dict):
        for item in value.values():
            _consume(item)
    elif isinstance(value, (list, tuple)) or type(value).__name__ == "ValidatorIterator":
        for item in list(value):
            _consume(item)


@functools.cache
def _adapter(kind: Any) -> TypeAdapter[Any]:
    """Kept alive: the values it validates lazily need it while they are read."""
    return TypeAdapter(list[kind], config=_FORBID)  # type: ignore[valid-type]


def _strict(kind: Any, value: Any) -> None:
    _consume(_adapter(kind).validate_python([value]))


def sdk_check(payload: dict[str, Any], provider: ProviderType) -> None:
    """Raise unless the provider's own SDK types accept the body fragment."""
    if provider is ANTHROPIC:
        assert set(payload) <= {"system", "messages"}
        if "system" in payload:
            _strict(str | list[anthropic_types.TextBlockParam], payload["system"])
        for message in payload["messages"]:
            _strict(anthropic_types.MessageParam, message)
            for block in message["content"] if isinstance(message["content"], list) else []:
                _strict(_ANTHROPIC_BLOCKS[block["type"]], block)
    elif provider is OPENAI:
        assert set(payload) == {"messages"}
        for message in payload["messages"]:
            _strict(ChatCompletionMessageParam, message)
    else:
        assert set(payload) <= {"system_instruction", "contents"}
        if "system_instruction" in payload:
            genai_types.Content.model_validate(payload["system_instruction"])
        for content in payload["contents"]:
            genai_types.Content.model_validate(content)


def content(messages: Iterable[Message]) -> list[tuple[MessageRole, str | None, list[Part]]]:
    """What a payload can carry of messages: not their ids or times."""
    return [(m.role, m.name, list(m.parts)) for m in messages]


def translate(messages: list[Any], provider: ProviderType, model: str | None = None) -> Any:
    """to_provider, with the checks every translation must pass."""
    result = translator.to_provider(messages, provider, model)
    if not result.messages:  # nothing to send: no API takes an empty conversation
        return result
    validate_payload(result.payload, provider)
    sdk_check(result.payload, provider)
    assert content(translator.from_provider(result.payload, provider)) == content(result.messages)
    return result


def codes(result: Any) -> dict[str, int]:
    return dict(result.report.codes())


def msg(role: str, *parts: Part, name: str | None = None) -> Message:
    return Message(role=MessageRole(role), parts=list(parts), name=name)


def call(call_id: str, name: str = "roll", **arguments: Any) -> ToolCallPart:
    return ToolCallPart(id=call_id, name=name, arguments=arguments)


def result(call_id: str, *texts: str, is_error: bool = False) -> ToolResultPart:
    return ToolResultPart(
        call_id=call_id, content=[TextPart(text=t) for t in texts], is_error=is_error
    )


def text(value: str, **provider_data: dict[str, Any]) -> TextPart:
    return TextPart(text=value, provider_data=provider_data)


# System prompts.


def test_a_leading_system_prompt_becomes_each_providers_own_field() -> None:
    conversation = [msg("system", text("You are the GM.")), msg("user", text("Hi"))]
    assert translate(conversation, ANTHROPIC).payload == {
        "system": "You are the GM.",
        "messages": [{"role": "user", "content": "Hi"}],
    }
    assert translate(conversation, OPENAI).payload == {
        "messages": [
            {"role": "system", "content": "You are the GM."},
            {"role": "user", "content": "Hi"},
        ]
    }
    assert translate(conversation, GOOGLE).payload == {
        "system_instruction": {"parts": [{"text": "You are the GM."}]},
        "contents": [{"role": "user", "parts": [{"text": "Hi"}]}],
    }
    assert translate(conversation, ANTHROPIC).report.lossless


def test_several_system_prompts_are_never_concatenated() -> None:
    conversation = [
        msg("system", text("Rules.")),
        msg("system", text("Tone.")),
        msg("user", text("Hi")),
    ]
    result = translate(conversation, ANTHROPIC)
    assert result.payload["system"] == [
        {"type": "text", "text": "Rules."},
        {"type": "text", "text": "Tone."},
    ]
    assert codes(result)["system_merged"] == 2
    read = translator.from_provider(result.payload, ANTHROPIC)
    assert read[0].parts == [text("Rules."), text("Tone.")]
    google = translate(conversation, GOOGLE).payload["system_instruction"]
    assert google == {"parts": [{"text": "Rules."}, {"text": "Tone."}]}
    assert translate(conversation, OPENAI).report.lossless


def test_a_system_message_mid_conversation_goes_where_each_provider_takes_it() -> None:
    conversation = [
        msg("user", text("Hi")),
        msg("assistant", text("Hello")),
        msg("system", text("The dragon wakes.")),
        msg("user", text("Run!")),
    ]
    openai = translate(conversation, OPENAI)
    assert openai.payload["messages"][2] == {"role": "system", "content": "The dragon wakes."}
    assert openai.report.lossless
    anthropic = translate(conversation, ANTHROPIC)
    assert [c.code for c in anthropic.report.changes] == ["system_as_user"]
    assert anthropic.report.changes[0].path == "/2"
    assert anthropic.messages[2].role is MessageRole.USER
    # Gemini wants turns to alternate: the system message, now a user one, joins the next.
    google = translate(conversation, GOOGLE)
    assert [(c.code, c.path) for c in google.report.changes] == [
        ("system_as_user", "/2"),
        ("same_role_merged", "/2"),
        ("same_role_merged", "/3"),
    ]
    assert google.payload["contents"][2] == {
        "role": "user",
        "parts": [{"text": "The dragon wakes."}, {"text": "Run!"}],
    }
    newer = translate(conversation, ANTHROPIC, "claude-opus-4-8")
    assert newer.payload["messages"][2] == {"role": "system", "content": "The dragon wakes."}
    assert newer.report.lossless


def test_system_messages_read_back() -> None:
    anthropic = {
        "system": [{"type": "text", "text": "A", "cache_control": {"type": "ephemeral"}}],
        "messages": [{"role": "user", "content": "x"}],
    }
    (system, _) = translator.from_provider(anthropic, ANTHROPIC)
    assert system.role is MessageRole.SYSTEM
    assert system.parts == [text("A", anthropic={"cache_control": {"type": "ephemeral"}})]
    openai = {"messages": [{"role": "developer", "content": "B"}, {"role": "user", "content": "x"}]}
    assert translator.from_provider(openai, OPENAI)[0].role is MessageRole.SYSTEM
    google = {
        "systemInstruction": {"parts": [{"text": "C"}]},
        "contents": [{"parts": [{"text": "x"}]}],
    }
    assert translator.from_provider(google, GOOGLE)[0].parts == [text("C")]


# Tool calls and results.

PARALLEL_OPENAI = {
    "messages": [
        {"role": "user", "content": "Attack!"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_a",
                    "type": "function",
                    "function": {"name": "roll", "arguments": '{"dice":"1d20"}'},
                },
                {
                    "id": "call_b",
                    "type": "function",
                    "function": {"name": "damage", "arguments": '{"dice":"2d6"}'},
                },
            ],
        },
        {"role": "tool", "tool_call_id": "call_a", "content": "17"},
        {"role": "tool", "tool_call_id": "call_b", "content": "9"},
        {"role": "assistant", "content": "You hit for 9."},
    ]
}


def test_parallel_tool_results_are_grouped_the_way_each_api_wants() -> None:
    messages = translator.from_provider(PARALLEL_OPENAI, OPENAI)
    assert [m.role for m in messages] == ["user", "assistant", "tool", "tool", "assistant"]
    anthropic = translate(messages, ANTHROPIC)
    assert anthropic.payload["messages"][2] == {
        "role": "user",
        "content": [
            {"type": "tool_result", "tool_use_id": "call_a", "content": "17"},
            {"type": "tool_result", "tool_use_id": "call_b", "content": "9"},
        ],
    }
    assert anthropic.report.lossless
    assert codes(anthropic) == {"tool_results_grouped": 1}
    google = translate(messages, GOOGLE)
    assert google.payload["contents"][2] == {
        "role": "user",
        "parts": [
            {"function_response": {"id": "call_a", "name": "roll", "response": {"output": "17"}}},
            {"function_response": {"id": "call_b", "name": "damage", "response": {"output": "9"}}},
        ],
    }
    back = translate(translator.from_provider(google.payload, GOOGLE), OPENAI)
    assert back.payload == translate(messages, OPENAI).payload


def test_a_user_turn_with_results_and_text_is_split_back() -> None:
    payload = {
        "messages": [
            {"role": "user", "content": "Roll"},
            {
                "role": "assistant",
                "content": [{"type": "tool_use", "id": "t1", "name": "roll", "input": {}}],
            },
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": "t1", "content": "4"},
                    {"type": "text", "text": "Again?"},
                ],
            },
        ]
    }
    messages = translator.from_provider(payload, ANTHROPIC)
    assert [m.role for m in messages] == ["user", "assistant", "tool", "user"]
    assert messages[3].parts == [text("Again?")]
    assert translate(messages, OPENAI).payload["messages"][2:] == [
        {"role": "tool", "tool_call_id": "t1", "content": "4"},
        {"role": "user", "content": "Again?"},
    ]
    again = translate(messages, ANTHROPIC)
    assert again.report.lossless
    assert translator.from_provider(again.payload, ANTHROPIC)[3].parts == [text("Again?")]


def test_gemini_gets_function_names_by_call_id() -> None:
    conversation = [
        msg("user", text("Look around")),
        msg("assistant", call("c1", "perception"), call("c2", "stealth")),
        msg("tool", result("c2", "11")),
        msg("tool", result("c1", "18")),
    ]
    parts = translate(conversation, GOOGLE).payload["contents"][2]["parts"]
    assert [(p["function_response"]["id"], p["function_response"]["name"]) for p in parts] == [
        ("c2", "stealth"),
        ("c1", "perception"),
    ]


GEMINI_ROLLS = {
    "contents": [
        {"role": "user", "parts": [{"text": "Two rolls"}]},
        {
            "role": "model",
            "parts": [
                {"functionCall": {"name": "roll", "args": {"dice": "1d20"}}},
                {"functionCall": {"name": "roll", "args": {"dice": "1d4"}}},
            ],
        },
        {
            "role": "user",
            "parts": [
                {"functionResponse": {"name": "roll", "response": {"output": "15"}}},
                {"functionResponse": {"name": "roll", "response": {"output": "2"}}},
            ],
        },
    ]
}


def test_gemini_calls_without_ids_get_ids_that_pair_them_with_their_responses() -> None:
    messages = translator.from_provider(GEMINI_ROLLS, GOOGLE)
    calls = messages[1].parts
    assert [c.id for c in calls if isinstance(c, ToolCallPart)] == ["call_1_0", "call_1_1"]
    results = [m.parts[0] for m in messages[2:]]
    assert [(r.call_id, r.content) for r in results if isinstance(r, ToolResultPart)] == [
        ("call_1_0", [text("15")]),
        ("call_1_1", [text("2")]),
    ]
    assert (
        translator.from_provider(GEMINI_ROLLS, GOOGLE)[1].parts == calls
    )  # the same on every read
    openai = translate(messages, OPENAI).payload["messages"]
    assert [m["tool_call_id"] for m in openai[2:]] == ["call_1_0", "call_1_1"]


def test_ids_are_sanitized_the_same_way_on_call_and_result() -> None:
    odd, long = "call.1/x", "call_" + "x" * 60
    conversation = [
        msg("user", text("Go")),
        msg("assistant", call(odd), call(long)),
        msg("tool", result(odd, "1")),
        msg("tool", result(long, "2")),
    ]
    anthropic = translate(conversation, ANTHROPIC)
    blocks = anthropic.payload["messages"][1]["content"]
    results = anthropic.payload["messages"][2]["content"]
    assert (
        [b["id"] for b in blocks]
        == [r["tool_use_id"] for r in results]
        == [safe_id(odd, ANTHROPIC), long]
    )
    assert safe_id(odd, ANTHROPIC) == safe_id(odd, ANTHROPIC) != safe_id("call.1-x", ANTHROPIC)
    openai = translate(conversation, OPENAI)
    ids = [c["id"] for c in openai.payload["messages"][1]["tool_calls"]]
    assert ids == [odd, safe_id(long, OPENAI)]
    assert len(ids[1]) <= 40
    assert [m["tool_call_id"] for m in openai.payload["messages"][2:]] == ids
    assert codes(openai) == {"id_sanitized": 2}
    assert translate(conversation, GOOGLE).report.lossless


@pytest.mark.parametrize(
    ("raw", "arguments"),
    [
        ('{"dice":"1d20"}', {"dice": "1d20"}),
        ('{"dice": "1d20"}', {"dice": "1d20"}),
        ("", {}),
        ("{not json", {}),
        ("[1, 2]", {}),
    ],
)
def test_argument_strings_and_objects(raw: str, arguments: dict[str, Any]) -> None:
    payload = {
        "messages": [
            {"role": "user", "content": "Go"},
            {
                "role": "assistant",
                "tool_calls": [
                    {"id": "c", "type": "function", "function": {"name": "roll", "arguments": raw}}
                ],
            },
            {"role": "tool", "tool_call_id": "c", "content": "3"},
        ]
    }
    messages = translator.from_provider(payload, OPENAI)
    part = messages[1].parts[0]
    assert isinstance(part, ToolCallPart)
    assert part.arguments == arguments
    assert translate(messages, OPENAI).payload == payload
    anthropic = translate(messages, ANTHROPIC)
    assert anthropic.payload["messages"][1]["content"][0]["input"] == arguments
    assert anthropic.report.lossless is (raw == '{"dice":"1d20"}')


def test_tool_results_that_are_not_objects_are_wrapped_for_gemini_and_unwrapped_back() -> None:
    conversation = [
        msg("user", text("Go")),
        msg("assistant", call("a"), call("b"), call("c"), call("d")),
        msg("tool", result("a", "17")),
        msg("tool", result("b", '{"hp":3}')),
        msg("tool", result("c", "no such spell", is_error=True)),
        msg("tool", result("d", "first", "second")),
    ]
    google = translate(conversation, GOOGLE)
    responses = [p["function_response"]["response"] for p in google.payload["contents"][2]["parts"]]
    assert responses == [
        {"output": "17"},
        {"hp": 3},
        {"error": "no such spell"},
        {"output": ["first", "second"]},
    ]
    assert google.report.lossless
    assert content(translator.from_provider(google.payload, GOOGLE)) == content(conversation)


def test_a_gemini_object_response_is_read_as_its_json() -> None:
    payload = {
        "contents": [
            {"role": "user", "parts": [{"text": "Weather?"}]},
            {
                "role": "model",
                "parts": [{"function_call": {"id": "w", "name": "weather", "args": {}}}],
            },
            {
                "role": "user",
                "parts": [
                    {
                        "function_response": {
                            "id": "w",
                            "name": "weather",
                            "response": {"temperature": 20, "sky": "clear"},
                        }
                    }
                ],
            },
        ]
    }
    messages = translator.from_provider(payload, GOOGLE)
    assert messages[2].parts == [result("w", '{"temperature":20,"sky":"clear"}')]
    assert (
        translate(messages, OPENAI).payload["messages"][2]["content"]
        == '{"temperature":20,"sky":"clear"}'
    )
    assert translate(messages, GOOGLE).payload == payload


def test_error_results() -> None:
    conversation = [
        msg("user", text("Cast")),
        msg("assistant", call("s")),
        msg("tool", result("s", "no slots left", is_error=True)),
    ]
    anthropic = translate(conversation, ANTHROPIC)
    assert anthropic.payload["messages"][2]["content"] == [
        {"type": "tool_result", "tool_use_id": "s", "content": "no slots left", "is_error": True}
    ]
    assert anthropic.report.lossless
    openai = translate(conversation, OPENAI)
    assert openai.payload["messages"][2] == {
        "role": "tool",
        "tool_call_id": "s",
        "content": "no slots left",
    }
    assert codes(openai) == {"error_flag_dropped": 1}


# Images and documents.


def test_images_as_data_urls_and_links() -> None:
    payload = {
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "Where are we?"},
                    {
                        "type": "image_url",
                        "image_url": {"url": f"data:image/png;base64,{PNG}", "detail": "high"},
                    },
                    {"type": "image_url", "image_url": {"url": "https://example.com/map.jpg"}},
                ],
            }
        ]
    }
    (message,) = translator.from_provider(payload, OPENAI)
    assert message.parts[1] == ImagePart(data=PNG, media_type="image/png", detail="high")
    assert message.parts[2] == ImagePart(url="https://example.com/map.jpg")
    assert translate([message], OPENAI).payload == payload
    anthropic = translate([message], ANTHROPIC)
    assert anthropic.payload["messages"][0]["content"][1:] == [
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}},
        {"type": "image", "source": {"type": "url", "url": "https://example.com/map.jpg"}},
    ]
    assert codes(anthropic) == {"image_detail_dropped": 1}
    google = translate([message], GOOGLE)
    assert google.payload["contents"][0]["parts"][1:] == [
        {"inline_data": {"mime_type": "image/png", "data": PNG}},
        {"file_data": {"mime_type": "image/jpeg", "file_uri": "https://example.com/map.jpg"}},
    ]
    assert codes(google) == {"image_detail_dropped": 1, "media_type_guessed": 1}


def test_images_inside_tool_results() -> None:
    picture = ImagePart(data=PNG, media_type="image/png")
    conversation = [
        msg("user", text("Show the map")),
        msg("assistant", call("m", "map")),
        msg("tool", ToolResultPart(call_id="m", content=[text("the keep"), picture])),
        msg("assistant", text("Here it is.")),
    ]
    anthropic = translate(conversation, ANTHROPIC)
    assert anthropic.payload["messages"][2]["content"][0]["content"][1]["type"] == "image"
    assert anthropic.report.lossless
    google = translate(conversation, GOOGLE)
    response = google.payload["contents"][2]["parts"][0]["function_response"]
    assert response["parts"] == [{"inline_data": {"mime_type": "image/png", "data": PNG}}]
    assert google.report.lossless
    openai = translate(conversation, OPENAI)
    assert openai.payload["messages"][2:4] == [
        {"role": "tool", "tool_call_id": "m", "content": "the keep"},
        {
            "role": "user",
            "content": [
                {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}}
            ],
        },
    ]
    assert codes(openai) == {"tool_result_image_moved": 1}


def test_documents() -> None:
    pdf = DocumentPart(
        data=base64.b64encode(b"%PDF-1.4").decode(), media_type="application/pdf", title="rules.pdf"
    )
    notes = DocumentPart(data=base64.b64encode(b"Loot: 40 gp").decode(), media_type="text/plain")
    conversation = [msg("user", text("Read these"), pdf, notes)]
    anthropic = translate(conversation, ANTHROPIC)
    assert anthropic.payload["messages"][0]["content"][2] == {
        "type": "document",
        "source": {"type": "text", "media_type": "text/plain", "data": "Loot: 40 gp"},
    }
    assert anthropic.report.lossless
    openai = translate(conversation, OPENAI)
    assert openai.payload["messages"][0]["content"][1] == {
        "type": "file",
        "file": {"file_data": f"data:application/pdf;base64,{pdf.data}", "filename": "rules.pdf"},
    }
    assert codes(translate(conversation, GOOGLE)) == {"document_title_dropped": 1}


# Thinking.

SIGNED = {
    "system": "GM",
    "messages": [
        {"role": "user", "content": "Plan the ambush"},
        {
            "role": "assistant",
            "content": [
                {"type": "thinking", "thinking": "Goblins flank left.", "signature": "sig-1"},
                {"type": "redacted_thinking", "data": "opaque"},
                {"type": "text", "text": "Ready."},
            ],
        },
        {"role": "user", "content": "Go"},
    ],
}


def test_thinking_goes_back_to_claude_as_it_came() -> None:
    messages = translator.from_provider(SIGNED, ANTHROPIC)
    assert messages[2].parts[:2] == [
        ThinkingPart(
            text="Goblins flank left.", provider_data={"anthropic": {"signature": "sig-1"}}
        ),
        ThinkingPart(redacted=True, provider_data={"anthropic": {"data": "opaque"}}),
    ]
    again = translate(messages, ANTHROPIC)
    assert again.payload == SIGNED
    assert again.report.lossless


def test_thinking_is_never_sent_to_a_provider_that_did_not_sign_it() -> None:
    messages = translator.from_provider(SIGNED, ANTHROPIC)
    openai = translate(messages, OPENAI)
    assert openai.payload["messages"][2] == {"role": "assistant", "content": "Ready."}
    assert codes(openai) == {"thinking_dropped": 2}
    google = translate(messages, GOOGLE)
    assert google.payload["contents"][1]["parts"][0] == {
        "text": "Goblins flank left.",
        "thought": True,
    }
    assert codes(google)["provider_data_dropped"] == 1
    assert codes(google)["thinking_dropped"] == 1
    unsigned = [msg("user", text("Hi")), msg("assistant", ThinkingPart(text="hmm"), text("Hello"))]
    assert codes(translate(unsigned, ANTHROPIC)) == {"thinking_dropped": 1}


def test_signatures_go_back_only_to_the_model_that_made_them() -> None:
    messages = translator.from_provider(SIGNED, ANTHROPIC, model="claude-sonnet-4-5")
    assert messages[2].parts[0].provider_data["anthropic"]["model"] == "claude-sonnet-4-5"
    same = translate(messages, ANTHROPIC, "claude-sonnet-4-5-20250929")
    assert same.payload == SIGNED
    other = translate(messages, ANTHROPIC, "claude-opus-4-1")
    assert codes(other) == {"system_prompt": 1, "thinking_dropped": 2}
    assert other.payload["messages"][1]["content"] == "Ready."


def test_gemini_thought_signatures() -> None:
    payload = {
        "contents": [
            {"role": "user", "parts": [{"text": "Open the door"}]},
            {
                "role": "model",
                "parts": [
                    {"text": "Checking for traps", "thought": True},
                    {
                        "functionCall": {"name": "search", "args": {}},
                        "thoughtSignature": "c2lnLTE=",
                    },
                ],
            },
            {
                "role": "user",
                "parts": [{"functionResponse": {"name": "search", "response": {"output": "none"}}}],
            },
        ]
    }
    messages = translator.from_provider(payload, GOOGLE, model="gemini-3-pro-preview")
    tool_call = messages[1].parts[1]
    assert tool_call.provider_data == {
        "google": {"thought_signature": "c2lnLTE=", "model": "gemini-3-pro-preview"}
    }
    assert isinstance(messages[1].parts[0], ThinkingPart)
    again = translate(messages, GOOGLE, "gemini-3-pro-preview")
    assert again.payload["contents"][1]["parts"][1]["thought_signature"] == "c2lnLTE="
    assert again.report.lossless
    other = translate(messages, GOOGLE, "gemini-2.5-flash")
    assert "thought_signature" not in other.payload["contents"][1]["parts"][1]
    assert codes(translate(messages, ANTHROPIC))["provider_data_dropped"] == 1


def test_gemini_3_gets_the_documented_placeholder_on_calls_another_model_made() -> None:
    messages = translator.from_provider(PARALLEL_OPENAI, OPENAI)[:4]
    result = translate(messages, GOOGLE, "gemini-3-pro-preview")
    calls = result.payload["contents"][1]["parts"]
    assert calls[0]["thought_signature"] == SKIP_SIGNATURE
    assert "thought_signature" not in calls[1]
    assert codes(result) == {"thought_signature_added": 1, "tool_results_grouped": 1}
    assert translate(messages, GOOGLE, "gemini-2.5-pro").report.lossless


# Shapes of history.


def test_history_starting_with_the_assistant() -> None:
    conversation = [
        msg("system", text("GM")),
        msg("assistant", text("Welcome, travellers.")),
        msg("user", text("Hi")),
    ]
    anthropic = translate(conversation, ANTHROPIC)
    assert anthropic.payload["messages"][0] == {"role": "user", "content": PLACEHOLDER_TEXT}
    assert codes(anthropic) == {"system_prompt": 1, "placeholder_user": 1}
    assert translate(conversation, OPENAI).report.lossless
    google = translate(conversation, GOOGLE)
    assert google.payload["contents"][0] == {"role": "user", "parts": [{"text": PLACEHOLDER_TEXT}]}
    assert codes(google) == {"system_prompt": 1, "placeholder_user": 1}
    with_call = [msg("assistant", call("x")), msg("tool", result("x", "1"))]
    assert translate(with_call, GOOGLE).payload["contents"][0] == {
        "role": "user",
        "parts": [{"text": PLACEHOLDER_TEXT}],
    }


def test_consecutive_assistant_messages_are_one_gemini_turn() -> None:
    conversation = [
        msg("user", text("Go")),
        msg("assistant", text("Let me roll.")),
        msg("assistant", call("r")),
        msg("tool", result("r", "6")),
    ]
    google = translate(conversation, GOOGLE)
    assert google.payload["contents"][1] == {
        "role": "model",
        "parts": [
            {"text": "Let me roll."},
            {"function_call": {"id": "r", "name": "roll", "args": {}}},
        ],
    }
    assert [c.path for c in google.report.changes if c.code == "same_role_merged"] == ["/1", "/2"]
    anthropic = translate(conversation, ANTHROPIC)
    assert len(anthropic.payload["messages"]) == 4
    assert anthropic.report.lossless


def test_empty_text_next_to_tool_calls() -> None:
    payload = {
        "messages": [
            {"role": "user", "content": "Go"},
            {
                "role": "assistant",
                "content": "",
                "tool_calls": [
                    {"id": "c", "type": "function", "function": {"name": "roll", "arguments": "{}"}}
                ],
            },
            {"role": "tool", "tool_call_id": "c", "content": "5"},
        ]
    }
    messages = translator.from_provider(payload, OPENAI)
    assert messages[1].parts == [text(""), call("c")]
    assert translate(messages, OPENAI).payload == payload
    anthropic = translate(messages, ANTHROPIC)
    assert anthropic.payload["messages"][1]["content"] == [
        {"type": "tool_use", "id": "c", "name": "roll", "input": {}}
    ]
    assert codes(anthropic) == {"empty_text": 1}
    assert codes(translate(messages, GOOGLE)) == {"empty_text": 1}


def test_text_after_a_tool_call_comes_first_for_claude() -> None:
    conversation = [
        msg("user", text("Go")),
        msg("assistant", call("c"), text("Rolling...")),
        msg("tool", result("c", "2")),
    ]
    anthropic = translate(conversation, ANTHROPIC)
    assert [b["type"] for b in anthropic.payload["messages"][1]["content"]] == ["text", "tool_use"]
    assert codes(anthropic) == {"parts_reordered": 1}
    assert translate(conversation, GOOGLE).report.lossless


def test_cache_control_goes_back_to_claude_only() -> None:
    cached = {"anthropic": {"cache_control": {"type": "ephemeral"}}}
    conversation = [
        msg("system", TextPart(text="Long rules", provider_data=cached)),
        msg("user", text("Hi")),
        msg("assistant", call("c")),
        msg("tool", ToolResultPart(call_id="c", content=[text("ok")], provider_data=cached)),
    ]
    anthropic = translate(conversation, ANTHROPIC)
    assert anthropic.payload["system"] == [
        {"type": "text", "text": "Long rules", "cache_control": {"type": "ephemeral"}}
    ]
    assert anthropic.payload["messages"][2]["content"][0]["cache_control"] == {"type": "ephemeral"}
    assert anthropic.report.lossless
    openai = translate(conversation, OPENAI)
    assert codes(openai) == {"provider_data_dropped": 2}
    assert openai.payload["messages"][0] == {"role": "system", "content": "Long rules"}


def test_orphan_results_and_unanswered_calls_are_dropped_and_named() -> None:
    conversation = [
        msg("user", text("Go")),
        msg("tool", result("ghost", "?")),
        msg("assistant", call("a"), call("b")),
        msg("tool", result("a", "1")),
        msg("user", text("And then?")),
    ]
    for provider in PROVIDERS:
        result_ = translate(conversation, provider)
        assert codes(result_)["orphan_tool_result"] == 1
        assert codes(result_)["unanswered_tool_call"] == 1


def test_a_result_far_from_its_call_is_moved_next_to_it() -> None:
    conversation = [
        msg("user", text("Go")),
        msg("assistant", call("a")),
        msg("user", text("wait")),
        msg("tool", result("a", "1")),
    ]
    moved = translate(conversation, OPENAI)
    assert [m["role"] for m in moved.payload["messages"]] == ["user", "assistant", "tool", "user"]
    assert codes(moved) == {"tool_result_moved": 1}


def test_names_go_to_openai_only() -> None:
    conversation = [
        msg("user", text("I search the room."), name="Ann"),
        msg("user", text("Me too."), name="Bo"),
    ]
    openai = translate(conversation, OPENAI)
    assert [m["name"] for m in openai.payload["messages"]] == ["Ann", "Bo"]
    assert openai.report.lossless
    assert codes(translate(conversation, ANTHROPIC)) == {"name_dropped": 2}


# The API.


def test_to_provider_takes_dicts_and_provider_names() -> None:
    result = translator.to_provider([{"role": "user", "content": "Hi"}], "openai")
    assert result.payload == {"messages": [{"role": "user", "content": "Hi"}]}
    assert result.report.provider is OPENAI
    assert str(result.report) == "openai: lossless, nothing converted, moved or dropped"
    with pytest.raises(ValidationFailed) as raised:
        translator.to_provider([{"role": "wizard", "content": "Hi"}], "openai")
    assert raised.value.issues[0].path == "/0/role"


def test_every_change_code_has_an_action_and_a_meaning() -> None:
    for code, (action, lossless, meaning) in CHANGE_CODES.items():
        assert isinstance(action, Action), code
        assert isinstance(lossless, bool), code
        assert meaning, code


@pytest.mark.parametrize(
    ("payload", "provider", "path"),
    [
        ({"messages": [{"role": "user"}]}, ANTHROPIC, "/messages/0"),
        (
            {"messages": [{"role": "user", "content": [{"type": "text"}]}]},
            ANTHROPIC,
            "/messages/0/content/0",
        ),
        ({"messages": [{"role": "tool", "content": "x"}]}, OPENAI, "/messages/0"),
        (
            {"contents": [{"role": "user", "parts": [{"text": 3}]}]},
            GOOGLE,
            "/contents/0/parts/0/text",
        ),
        ({"contents": "nope"}, GOOGLE, "/contents"),
    ],
)
def test_a_malformed_payload_is_a_validation_error_that_says_where(
    payload: dict[str, Any], provider: ProviderType, path: str
) -> None:
    with pytest.raises(ValidationFailed) as raised:
        translator.from_provider(payload, provider)
    assert raised.value.issues[0].path == path
    assert raised.value.issues[0].code == "payload.shape"


def test_parts_loremaster_cannot_carry_are_refused() -> None:
    payload = {
        "messages": [
            {
                "role": "user",
                "content": [{"type": "server_tool_use", "id": "s", "name": "web", "input": {}}],
            }
        ]
    }
    with pytest.raises(ValidationFailed) as raised:
        translator.from_provider(payload, ANTHROPIC)
    assert raised.value.issues[0].code == "payload.unsupported"
    assert raised.value.issues[0].path == "/messages/0/content/0/type"


@pytest.mark.parametrize(
    ("payload", "provider", "code"),
    [
        ({"messages": [{"role": "assistant", "content": "Hi"}]}, ANTHROPIC, "payload.first_role"),
        ({"messages": [{"role": "user", "content": "  "}]}, ANTHROPIC, "payload.empty_text"),
        (
            {
                "messages": [
                    {"role": "user", "content": "Go"},
                    {
                        "role": "assistant",
                        "content": [{"type": "tool_use", "id": "t", "name": "roll", "input": {}}],
                    },
                    {"role": "user", "content": "no result"},
                ]
            },
            ANTHROPIC,
            "payload.unanswered_call",
        ),
        (
            {
                "messages": [
                    {"role": "user", "content": "Go"},
                    {
                        "role": "assistant",
                        "content": [{"type": "tool_use", "id": "t", "name": "roll", "input": {}}],
                    },
                    {
                        "role": "user",
                        "content": [
                            {"type": "text", "text": "x"},
                            {"type": "tool_result", "tool_use_id": "t"},
                        ],
                    },
                ]
            },
            ANTHROPIC,
            "payload.result_order",
        ),
        (
            {
                "messages": [
                    {"role": "user", "content": "x"},
                    {"role": "tool", "tool_call_id": "t", "content": "1"},
                ]
            },
            OPENAI,
            "payload.orphan_result",
        ),
        (
            {
                "contents": [
                    {
                        "role": "user",
                        "parts": [
                            {"text": "a", "inline_data": {"mime_type": "image/png", "data": PNG}}
                        ],
                    }
                ]
            },
            GOOGLE,
            "payload.part_data",
        ),
        (
            {"contents": [{"role": "model", "parts": [{"function_call": {"name": "roll"}}]}]},
            GOOGLE,
            "payload.call_order",
        ),
    ],
)
def test_validate_payload_checks_the_order_rules(
    payload: dict[str, Any], provider: ProviderType, code: str
) -> None:
    with pytest.raises(ValidationFailed) as raised:
        validate_payload(payload, provider)
    assert code in [issue.code for issue in raised.value.issues]


SHAPE_ERRORS: list[tuple[ProviderType, dict[str, Any]]] = [
    (
        ANTHROPIC,
        {
            "messages": [
                {"role": "user", "content": [{"type": "text", "text": "a", "colour": "red"}]}
            ]
        },
    ),
    (
        ANTHROPIC,
        {
            "messages": [
                {
                    "role": "user",
                    "content": [
                        {"type": "image", "source": {"type": "base64", "media_type": "image/png"}}
                    ],
                }
            ]
        },
    ),
    (
        ANTHROPIC,
        {
            "messages": [
                {
                    "role": "assistant",
                    "content": [{"type": "tool_use", "id": "t", "name": "roll", "input": "x"}],
                }
            ]
        },
    ),
    (
        ANTHROPIC,
        {"messages": [{"role": "user", "content": [{"type": "tool_result", "tool_use_id": 5}]}]},
    ),
    (
        ANTHROPIC,
        {"messages": [{"role": "assistant", "content": [{"type": "thinking", "thinking": "x"}]}]},
    ),
    (
        OPENAI,
        {
            "messages": [
                {"role": "user", "content": [{"type": "image_url", "image_url": {"link": "x"}}]}
            ]
        },
    ),
    (
        OPENAI,
        {
            "messages": [
                {
                    "role": "assistant",
                    "tool_calls": [{"id": "c", "type": "function", "function": {"name": "f"}}],
                }
            ]
        },
    ),
    (OPENAI, {"messages": [{"role": "tool", "content": "x"}]}),
    (
        GOOGLE,
        {
            "contents": [
                {
                    "role": "user",
                    "parts": [{"inline_data": {"mime_type": "image/png", "data": PNG}, "extra": 1}],
                }
            ]
        },
    ),
    (
        GOOGLE,
        {"contents": [{"role": "model", "parts": [{"function_call": {"name": "f", "args": "x"}}]}]},
    ),
]


@pytest.mark.parametrize(("provider", "payload"), SHAPE_ERRORS)
def test_shapes_loremaster_rejects_the_sdks_reject_too(
    provider: ProviderType, payload: dict[str, Any]
) -> None:
    with pytest.raises(ValidationFailed):
        validate_payload(payload, provider)
    with pytest.raises(ValidationError):
        sdk_check(payload, provider)


# The same laws over generated conversations.

_SNIPPETS = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=12)
_JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-1000, 1000) | _SNIPPETS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_SNIPPETS, inner, max_size=3),
    max_leaves=6,
)
_ARGUMENTS = st.dictionaries(st.from_regex(r"[a-z_]{1,8}", fullmatch=True), _JSON, max_size=3)
_BASE64 = st.binary(min_size=1, max_size=16).map(lambda data: base64.b64encode(data).decode())
_IDS = st.sampled_from(["toolu_{}", "call_{}", "call.{}/x", "fc-{}", "x" * 45 + "{}"])
_DATA = st.sampled_from(
    [
        {},
        {"anthropic": {"cache_control": {"type": "ephemeral"}}},
        {"google": {"thought_signature": "c2ln"}},
    ]
)


def _texts(nonblank: bool = False) -> st.SearchStrategy[TextPart]:
    values = _SNIPPETS.filter(str.strip) if nonblank else _SNIPPETS
    return st.builds(TextPart, text=values, provider_data=_DATA)


_IMAGES = st.one_of(
    st.builds(
        ImagePart,
        data=_BASE64,
        media_type=st.sampled_from(["image/png", "image/jpeg", "image/webp"]),
        detail=st.sampled_from([None, "low", "high"]),
    ),
    st.builds(
        ImagePart,
        url=st.sampled_from(["https://example.com/map.png", "https://example.com/portrait"]),
        media_type=st.sampled_from([None, "image/png"]),
    ),
)
_DOCUMENTS = st.one_of(
    st.builds(
        DocumentPart,
        data=_BASE64,
        media_type=st.just("application/pdf"),
        title=st.sampled_from([None, "rules.pdf"]),
    ),
    st.builds(
        DocumentPart,
        data=st.text(min_size=1, max_size=12)
        .filter(str.strip)
        .map(lambda t: base64.b64encode(t.encode()).decode()),
        media_type=st.just("text/plain"),
    ),
    st.builds(
        DocumentPart,
        url=st.just("https://example.com/handbook.pdf"),
        media_type=st.sampled_from([None, "application/pdf"]),
    ),
)
_THOUGHTS = st.sampled_from(
    [
        ThinkingPart(text="They are lying.", provider_data={"anthropic": {"signature": "sig"}}),
        ThinkingPart(redacted=True, provider_data={"anthropic": {"data": "opaque"}}),
        ThinkingPart(text="A trap?", provider_data={"google": {"thought_signature": "c2ln"}}),
        ThinkingPart(text="Unsigned musing"),
    ]
)


@st.composite
def conversations(draw: st.DrawFn) -> list[Message]:
    """Conversations as users have them: system prompts, turns with images and documents,
    parallel tool calls with results (grouped or not, in any order, some with images or
    errors), thinking, names, and now and then a history that starts mid-way."""
    counter = itertools.count()
    messages = [msg("system", draw(_texts(nonblank=True))) for _ in range(draw(st.integers(0, 2)))]
    if draw(st.booleans()):
        messages.append(msg("assistant", draw(_texts(nonblank=True))))
    for _ in range(draw(st.integers(1, 4))):
        user_parts = [draw(_texts()), *draw(st.lists(st.one_of(_IMAGES, _DOCUMENTS), max_size=2))]
        messages.append(msg("user", *user_parts, name=draw(st.sampled_from([None, "Ann"]))))
        if draw(st.integers(0, 5)) == 0:
            messages.append(msg("system", draw(_texts(nonblank=True))))
        assistant: list[Part] = draw(st.lists(_THOUGHTS, max_size=1)) + draw(
            st.lists(_texts(), max_size=2)
        )
        calls = [
            ToolCallPart(
                id=draw(_IDS).format(next(counter)),
                name=draw(st.sampled_from(["roll", "map"])),
                arguments=draw(_ARGUMENTS),
                provider_data=draw(
                    st.sampled_from([{}, {"google": {"thought_signature": "c2ln"}}])
                ),
            )
            for _ in range(draw(st.integers(0, 3)))
        ]
        if calls and draw(st.booleans()):
            calls[0] = calls[0].model_copy(
                update={"provider_data": {"openai": {"arguments": json.dumps(calls[0].arguments)}}}
            )
        messages.append(msg("assistant", *draw(st.permutations(assistant + calls))))
        results = [
            ToolResultPart(
                call_id=c.id,
                is_error=draw(st.booleans()),
                content=draw(
                    st.lists(
                        st.one_of(
                            _texts(nonblank=True), _IMAGES.filter(lambda i: i.data is not None)
                        ),
                        max_size=2,
                    )
                ),
            )
            for c in draw(st.permutations(calls))
        ]
        if draw(st.booleans()) and results:
            messages.append(msg("tool", *results))
        else:
            messages.extend(msg("tool", r) for r in results)
    return messages


_SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@_SETTINGS
@given(conversations(), st.sampled_from(PROVIDERS))
def test_every_payload_is_valid_and_reads_back_as_its_messages(
    conversation: list[Message], provider: ProviderType
) -> None:
    result = translate(conversation, provider)
    if result.report.lossless:
        assert content(result.messages) == content(conversation)


@_SETTINGS
@given(conversations(), st.sampled_from(PROVIDERS))
def test_what_a_provider_carries_round_trips_exactly(
    conversation: list[Message], provider: ProviderType
) -> None:
    carried = translator.to_provider(conversation, provider).messages
    again = translate(carried, provider)
    assert again.report.lossless
    assert content(translator.from_provider(again.payload, provider)) == content(carried)
    assert again.payload == translator.to_provider(conversation, provider).payload


@_SETTINGS
@given(conversations())
def test_gemini_turns_alternate_and_start_with_the_user(conversation: list[Message]) -> None:
    """What Gemini refuses: "multiturn requests alternate between user and model", "function
    call turn comes immediately after a user turn or after a function response turn"."""
    contents = translate(conversation, GOOGLE).payload["contents"]
    roles = [c["role"] for c in contents]
    assert all(a != b for a, b in itertools.pairwise(roles)), roles
    assert not roles or roles[0] == "user"
    for before, turn in itertools.pairwise(contents):
        if any("function_call" in part for part in turn["parts"]):
            assert before["role"] == "user"


def test_a_user_message_after_tool_results_shares_their_gemini_turn() -> None:
    conversation = [
        msg("user", text("Open the door")),
        msg("assistant", call("r")),
        msg("tool", result("r", "6")),
        msg("user", text("And then?")),
        msg("user", text("Quickly!")),
    ]
    google = translate(conversation, GOOGLE)
    assert [c["role"] for c in google.payload["contents"]] == ["user", "model", "user"]
    assert google.payload["contents"][2]["parts"][1:] == [
        {"text": "And then?"},
        {"text": "Quickly!"},
    ]
    assert codes(google) == {"same_role_merged": 2, "user_after_results": 1}
    read = translator.from_provider(google.payload, GOOGLE)
    assert [m.role.value for m in read] == ["user", "assistant", "tool", "user"]


def _unnamed_survive(before: list[Message], after: list[Message], changes: Iterable[Any]) -> None:
    named = {int(c.path.split("/")[1]) for c in changes if c.path}
    remaining = iter(content(after))
    for index, expected in enumerate(content(before)):
        if index not in named:
            assert any(expected == found for found in remaining), f"message {index} lost unreported"


@_SETTINGS
@given(conversations(), st.sampled_from(list(itertools.permutations(PROVIDERS, 2))))
def test_a_trip_through_another_provider_loses_only_what_the_report_names(
    conversation: list[Message], pair: tuple[ProviderType, ProviderType]
) -> None:
    source, target = pair
    original = translator.to_provider(conversation, source).messages
    there = translate(original, target)
    back_there = translator.from_provider(there.payload, target)
    _unnamed_survive(original, back_there, there.report.changes)
    home = translate(back_there, source)
    assert content(translator.from_provider(home.payload, source)) == content(home.messages)


# The command line.


def test_translate_command(tmp_path: Path) -> None:
    source = tmp_path / "openai.json"
    source.write_text(json.dumps(PARALLEL_OPENAI))
    runner = CliRunner()
    printed = runner.invoke(
        translate_command, [str(source), "--from", "openai", "--to", "anthropic"]
    )
    assert printed.exit_code == 0, printed.output
    assert printed.stdout.startswith("{")
    assert (
        json.loads(printed.stdout)
        == translate(translator.from_provider(PARALLEL_OPENAI, OPENAI), ANTHROPIC).payload
    )
    assert "tool_results_grouped" in printed.stderr
    target = tmp_path / "google.json"
    written = runner.invoke(
        translate_command,
        [
            str(source),
            "--from",
            "openai",
            "--to",
            "google",
            "--model",
            "gemini-3-pro-preview",
            "-o",
            str(target),
        ],
    )
    assert written.exit_code == 0, written.output
    assert "thought_signature_added" in written.stdout
    validate_payload(json.loads(target.read_text()), GOOGLE)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("{not json", "is not valid JSON"),
        ("[]", "must hold a JSON object"),
        ('{"messages": [{"role": "user"}]}', "messages/0"),
    ],
)
def test_translate_command_errors(tmp_path: Path, body: str, message: str) -> None:
    source = tmp_path / "bad.json"
    source.write_text(body)
    outcome = CliRunner().invoke(
        translate_command, [str(source), "--from", "openai", "--to", "google"]
    )
    assert outcome.exit_code == 1
    assert message in outcome.output


def test_the_package_exports_a_sorted_complete_api() -> None:
    import loremaster.translation as package

    assert package.__all__ == sorted(package.__all__, key=lambda name: (not name.isupper(), name))
    for name in package.__all__:
        assert hasattr(package, name), name


# Wording and names a user reaches for.


def test_rewritten_arguments_are_converted_not_dropped() -> None:
    spaced = copy.deepcopy(PARALLEL_OPENAI)
    spaced["messages"][1]["tool_calls"][0]["function"]["arguments"] = (
        '{"dice": "1d20",  "bonus": 2}'
    )
    messages = translator.from_provider(spaced, OPENAI)
    for provider in (ANTHROPIC, GOOGLE):
        result = translate(messages, provider)
        [change] = [c for c in result.report.changes if c.code == "arguments_reserialized"]
        assert change.action.value == "converted"
        assert "provider_data_dropped" not in codes(result)
        read = translator.from_provider(result.payload, provider)
        [called] = [
            p for m in read for p in m.parts if isinstance(p, ToolCallPart) and p.id == "call_a"
        ]
        assert called.arguments == {"dice": "1d20", "bonus": 2}
    assert translate(messages, OPENAI).report.lossless


def test_gemini_is_another_name_of_google() -> None:
    assert ProviderType("gemini") is GOOGLE
    assert ProviderType("Anthropic") is ANTHROPIC
    assert translator.to_provider([msg("user", text("Hi"))], "gemini").report.provider is GOOGLE


def test_a_model_of_another_provider_or_an_unknown_one_warns() -> None:
    hello = [msg("user", text("Hi"))]
    assert translate(hello, GOOGLE, "gemini-2.5-pro").report.warnings == ()
    [other] = translate(hello, GOOGLE, "gpt-4o").report.warnings
    assert "gpt-4o" in other
    assert "openai" in other
    [unknown] = translate(hello, ANTHROPIC, "claude-9-imaginary").report.warnings
    assert "does not know" in unknown
    assert str(translate(hello, GOOGLE, "gpt-4o").report).startswith("warning: ")


def test_translate_command_takes_gemini_and_warns_of_a_foreign_model(tmp_path: Path) -> None:
    source = tmp_path / "openai.json"
    source.write_text(json.dumps(PARALLEL_OPENAI))
    printed = CliRunner().invoke(
        translate_command,
        [str(source), "--from", "openai", "--to", "gemini", "--model", "claude-opus-4-8"],
    )
    assert printed.exit_code == 0, printed.output
    assert "contents" in json.loads(printed.stdout)
    assert "warning: 'claude-opus-4-8' is a model of anthropic" in printed.stderr
