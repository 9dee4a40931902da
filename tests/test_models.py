from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from pydantic import ValidationError

from loremaster import (
    CollaborativeContext,
    Context,
    ContextType,
    ConversationContext,
    ImagePart,
    Message,
    ProviderType,
    SessionContext,
    TextPart,
    ThinkingPart,
    ToolCallPart,
    ToolResultPart,
)
from loremaster.models import context_class


def test_content_shorthand_becomes_one_text_part() -> None:
    message = Message.model_validate({"role": "user", "content": "I want a new character."})
    assert message.parts == [TextPart(text="I want a new character.")]
    assert message.text == "I want a new character."


def test_content_may_be_a_list_of_parts() -> None:
    message = Message.model_validate(
        {
            "role": "assistant",
            "content": [
                {"kind": "text", "text": "Rolling."},
                {"kind": "tool_call", "id": "c1", "name": "roll", "arguments": {"d": 20}},
            ],
        }
    )
    assert isinstance(message.parts[1], ToolCallPart)
    assert message.parts[1].arguments == {"d": 20}


def test_content_and_parts_together_are_refused() -> None:
    with pytest.raises(ValidationError, match="either content or parts"):
        Message.model_validate({"role": "user", "content": "a", "parts": []})


def test_every_part_kind_round_trips_through_json() -> None:
    message = Message(
        role="assistant",
        parts=[
            TextPart(
                text="hi", provider_data={"anthropic": {"cache_control": {"type": "ephemeral"}}}
            ),
            ImagePart(data="aGVsbG8=", media_type="image/png", detail="low"),
            ImagePart(url="https://example.invalid/map.png"),
            ToolCallPart(id="c1", name="roll", arguments={"dice": "1d20"}),
            ToolResultPart(call_id="c1", content="17", is_error=False),
            ThinkingPart(text="hmm", signature="sig"),
            ThinkingPart(redacted=True, provider_data={"anthropic": {"data": "xyz"}}),
        ],
        name="gm",
        metadata={"turn": 3},
    )
    again = Message.model_validate_json(message.model_dump_json())
    assert again == message
    assert again.parts[4] == ToolResultPart(call_id="c1", content=[TextPart(text="17")])


def test_part_kind_tags_are_a_stable_wire_format() -> None:
    payload = {
        "id": "m1",
        "role": "assistant",
        "created_at": "2026-01-01T00:00:00Z",
        "parts": [
            {"kind": "text", "text": "a"},
            {"kind": "image", "url": "https://x.invalid/a.png"},
            {"kind": "document", "data": "JVBERi0=", "media_type": "application/pdf"},
            {"kind": "tool_call", "id": "c", "name": "n", "arguments": {}},
            {"kind": "tool_result", "call_id": "c", "content": [{"kind": "text", "text": "r"}]},
            {"kind": "thinking", "text": "t", "signature": None, "redacted": False},
        ],
    }
    message = Message.model_validate(payload)
    assert [part.kind for part in message.parts] == [
        "text",
        "image",
        "document",
        "tool_call",
        "tool_result",
        "thinking",
    ]


def test_image_needs_exactly_one_source() -> None:
    with pytest.raises(ValidationError, match="exactly one of url or data"):
        ImagePart()
    with pytest.raises(ValidationError, match="media_type"):
        ImagePart(data="aGk=")


def test_naive_timestamps_are_taken_as_utc() -> None:
    naive = datetime(2026, 5, 1, 12, 0)
    message = Message(role="user", content="x", created_at=naive)
    assert message.created_at == datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
    other = Message(
        role="user", content="x", created_at=naive.replace(tzinfo=timezone(timedelta(hours=2)))
    )
    assert other.created_at.tzinfo == UTC
    assert other.created_at.hour == 10


def test_spec_conversation_example_validates() -> None:
    context = ConversationContext(
        title="D&D Campaign Session 1",
        messages=[
            {"role": "system", "content": "You are a helpful D&D game master."},
            {"role": "user", "content": "I want to create a new character."},
        ],
        primary_provider="anthropic",
        model_parameters={"temperature": 0.7},
    )
    assert context.context_type is ContextType.CONVERSATION
    assert context.primary_provider is ProviderType.ANTHROPIC
    assert context.messages[1].text == "I want to create a new character."


@pytest.mark.parametrize(
    "context",
    [
        Context(title="base", data={"a": [1, 2]}, permissions={"bob": ["read"]}),
        ConversationContext(title="c", messages=[{"role": "user", "content": "hi"}]),
        SessionContext(title="s", user_id="u", active_conversations=["x"], ui_state={"tab": 2}),
        CollaborativeContext(title="r", room_id="room", active_participants=["a", "b"]),
    ],
)
def test_contexts_round_trip_through_json(context: Context) -> None:
    cls = context_class(context.context_type)
    assert cls is type(context)
    assert cls.model_validate_json(context.model_dump_json()) == context


def test_context_id_is_a_canonical_uuid() -> None:
    context = Context(title="t", context_id="6F9619FF-8B86-D011-B42D-00C04FC964FF")
    assert context.context_id == "6f9619ff-8b86-d011-b42d-00c04fc964ff"
    with pytest.raises(ValidationError, match="UUID"):
        Context(title="t", context_id="not-a-uuid")


def test_typed_context_refuses_another_type() -> None:
    with pytest.raises(ValidationError, match="context_type 'session'"):
        SessionContext(title="t", context_type="conversation")


def test_room_cannot_hold_more_than_max_participants() -> None:
    with pytest.raises(ValidationError, match="max_participants=2"):
        CollaborativeContext(title="r", max_participants=2, active_participants=["a", "b", "c"])


def test_unknown_fields_and_permission_words_are_refused() -> None:
    with pytest.raises(ValidationError):
        Context(title="t", colour="red")  # type: ignore[call-arg]
    with pytest.raises(ValidationError):
        Context(title="t", permissions={"bob": ["superuser"]})
