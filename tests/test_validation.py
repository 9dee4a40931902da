from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from loremaster import (
    CollaborativeContext,
    Context,
    ContextManager,
    ConversationContext,
    DataCorrupted,
    Message,
    SessionContext,
    ValidationFailed,
)
from loremaster.config import Settings
from loremaster.document._records import _canonical, canonical_json
from loremaster.validation import (
    CODES,
    ContextValidator,
    Severity,
    ValidationIssue,
    ValidationResult,
    export_schemas,
    schema_for,
)

T0 = datetime(2026, 11, 24, 1, 0, tzinfo=UTC)


def validator(**options: Any) -> ContextValidator:
    return ContextValidator(load_entry_points=False, **options)


def codes(result: ValidationResult, severity: Severity | None = None) -> list[str]:
    return [i.code for i in result.issues if severity is None or i.severity is severity]


def msg(role: str, text: str = "x", minutes: int = 0, **fields: Any) -> Message:
    return Message(role=role, content=text, created_at=T0 + timedelta(minutes=minutes), **fields)


def call(call_id: str, minutes: int = 0) -> Message:
    return Message.model_validate(
        {
            "role": "assistant",
            "created_at": T0 + timedelta(minutes=minutes),
            "parts": [{"kind": "tool_call", "id": call_id, "name": "roll", "arguments": {}}],
        }
    )


def result_of(call_id: str, minutes: int = 0) -> Message:
    return Message.model_validate(
        {
            "role": "tool",
            "created_at": T0 + timedelta(minutes=minutes),
            "parts": [{"kind": "tool_result", "call_id": call_id, "content": "17"}],
        }
    )


async def test_spec_example() -> None:
    context = ConversationContext(title="t", messages=[msg("user", "   ")])
    result = await validator(enable_auto_correction=True).validate_context(context)
    assert result.is_valid
    assert [(i.severity, i.code) for i in result.issues] == [
        (Severity.WARNING, "conversation.empty_message"),
        (Severity.INFO, "conversation.empty_message.fixed"),
    ]
    assert result.issues[0].suggested_fix == "remove the message"
    assert isinstance(result.corrected_data, ConversationContext)
    assert result.corrected_data.messages == []


async def test_a_valid_context_has_no_issues() -> None:
    context = ConversationContext(
        title="t",
        messages=[msg("system"), msg("user", minutes=1), call("c1", 2), result_of("c1", 3)],
    )
    result = await validator().validate_context(context)
    assert result == ValidationResult(is_valid=True, issues=[])


async def test_schema_errors_point_at_the_exact_path() -> None:
    result = await validator().validate_context(
        {
            "context_type": "conversation",
            "title": "t",
            "messages": [
                {"role": "user", "content": "hi"},
                {"role": "narrator", "content": "x"},
                {"role": "user", "parts": [{"kind": "tool_call", "name": "roll"}]},
            ],
            "permissions": {"bob": ["root"]},
        }
    )
    assert not result.is_valid
    assert [(i.code, i.path) for i in result.issues] == [
        ("schema.invalid", "/messages/1/role"),
        ("schema.invalid", "/messages/2/parts/0"),
        ("context.unknown_permission", "/permissions/bob/0"),
    ]
    assert "'id' is a required property" in result.issues[1].message


async def test_dict_input_gets_missing_ids_and_timestamps_filled() -> None:
    data = {
        "context_type": "conversation",
        "title": "t",
        "messages": [{"role": "user", "content": "hi"}],
    }
    result = await validator().validate_context(data)
    assert result.is_valid
    assert codes(result) == ["message.missing_id.fixed", "message.missing_timestamp.fixed"]
    corrected = result.corrected_data
    assert isinstance(corrected, dict)
    assert corrected["messages"][0]["id"]
    assert corrected["messages"][0]["created_at"]
    assert (await validator().validate_context(corrected)).issues == []
    plain = await validator(enable_auto_correction=False).validate_context(data)
    assert codes(plain) == ["message.missing_id", "message.missing_timestamp"]
    assert plain.corrected_data is None


async def test_orphan_and_duplicate_tool_results() -> None:
    context = ConversationContext(
        title="t",
        messages=[result_of("ghost", 0), call("c1", 1), result_of("c1", 2), result_of("c1", 3)],
    )
    result = await validator().validate_context(context)
    assert not result.is_valid
    assert codes(result) == [
        "conversation.orphan_tool_result",
        "conversation.orphan_tool_result.fixed",
        "conversation.duplicate_tool_result",
    ]
    assert result.issues[1].severity is Severity.WARNING  # dropped, with a warning
    assert result.corrected_data is None  # the duplicate cannot be fixed unambiguously

    only_orphan = ConversationContext(
        title="t", messages=[result_of("ghost"), msg("user", minutes=1)]
    )
    fixed = await validator().validate_context(only_orphan)
    assert [m.role for m in fixed.corrected_data.messages] == ["user"]


async def test_duplicate_ids_and_timestamps_going_backwards() -> None:
    context = ConversationContext(
        title="t", messages=[msg("user", minutes=5, id="a"), msg("assistant", minutes=1, id="a")]
    )
    result = await validator().validate_context(context)
    assert codes(result) == [
        "conversation.duplicate_message_id",
        "conversation.timestamp_backwards",
    ]
    assert [i.path for i in result.issues] == ["/messages/1/id", "/messages/1/created_at"]
    assert not result.is_valid


async def test_provider_rules_for_system_messages_and_alternation() -> None:
    context = ConversationContext(
        title="t",
        primary_provider="anthropic",
        messages=[
            msg("system"),
            msg("user", "a", 1),
            msg("user", "b", 2),
            msg("system", "late", 3),
        ],
    )
    result = await validator().validate_context(context)
    assert result.is_valid
    assert codes(result) == [
        "conversation.system_position",
        "conversation.consecutive_same_role",
        "conversation.consecutive_same_role.fixed",
    ]
    merged = result.corrected_data.messages
    assert [m.text for m in merged] == ["x", "a\n\nb", "late"]
    openai = await validator().validate_context(context, provider="openai")
    assert openai.issues == []


async def test_whitespace_parts_and_turn_count() -> None:
    context = ConversationContext.model_validate(
        {
            "title": "t",
            "turn_count": 5,
            "messages": [
                {
                    "role": "user",
                    "created_at": T0,
                    "parts": [
                        {"kind": "text", "text": "  "},
                        {"kind": "text", "text": "attack"},
                    ],
                },
            ],
        }
    )
    result = await validator().validate_context(context)
    assert codes(result) == [
        "conversation.empty_part",
        "conversation.empty_part.fixed",
        "conversation.turn_count_mismatch",
        "conversation.turn_count_mismatch.fixed",
    ]
    corrected = result.corrected_data
    assert corrected.turn_count == 1
    assert [p.text for p in corrected.messages[0].parts] == ["attack"]


async def test_rooms() -> None:
    room = CollaborativeContext(
        title="table",
        owner_id="dm",
        collaborators=["p1"],
        active_participants=["dm", "p1", "p1", "stranger"],
        locks={"map": {"holder": "ghost"}},
    )
    result = await validator().validate_context(room)
    assert codes(result) == [
        "collaborative.participant_not_member",
        "collaborative.lock_holder_not_participant",
        "collaborative.duplicate_participant",
        "collaborative.duplicate_participant.fixed",
    ]
    assert not result.is_valid
    crowded = CollaborativeContext(title="t", active_participants=[f"p{i}" for i in range(4)])
    small = validator(settings=Settings(max_participants=3))
    assert codes(await small.validate_context(crowded)) == ["collaborative.too_many_participants"]


async def test_size_limit() -> None:
    big = Context(title="t", data={"blob": "x" * 20_000})
    result = await validator(settings=Settings(max_size_mb=0.01)).validate_context(big)
    assert codes(result) == ["context.too_large"]


async def test_sessions_are_checked_against_a_manager(sqlite_url: str) -> None:
    async with ContextManager(database_url=sqlite_url) as cm:
        mine = await cm.create_context(ConversationContext(title="mine"), user_id="alice")
        theirs = await cm.create_context(ConversationContext(title="theirs"), user_id="bob")
        session = SessionContext(
            title="s",
            user_id="alice",
            active_conversations=[mine, theirs, "6f9619ff-8b86-d011-b42d-00c04fc964ff"],
        )
        result = await validator().validate_context(session, manager=cm)
        assert codes(result) == ["session.foreign_conversation", "session.unknown_conversation"]
        # Validating as alice: bob's conversation is as good as missing to her.
        as_alice = await validator().validate_context(session, manager=cm, user_id="alice")
        assert codes(as_alice) == ["session.unknown_conversation", "session.unknown_conversation"]
        assert (await validator().validate_context(session)).issues == []  # no manager, no lookup


async def test_custom_rules_sync_async_and_failing() -> None:
    def needs_campaign(context: Context) -> ValidationIssue | None:
        if "campaign" not in context.metadata:
            return ValidationIssue(
                severity=Severity.ERROR,
                code="house.no_campaign",
                message="no campaign",
                path="/metadata",
            )
        return None

    async def async_rule(context: Context) -> list[ValidationIssue]:
        return [ValidationIssue(severity=Severity.INFO, code="house.seen", message="seen")]

    def broken(context: Context) -> None:
        raise RuntimeError("boom")

    checker = validator(rules={"conversation": [needs_campaign]})
    checker.add_rule(async_rule)
    checker.add_rule(broken, context_type="session")
    result = await checker.validate_context(ConversationContext(title="t"))
    assert codes(result) == ["house.no_campaign", "house.seen"]
    session = await checker.validate_context(SessionContext(title="s"))
    assert codes(session) == ["house.seen", "rule.failed"]
    assert "RuntimeError: boom" in session.issues[1].message


async def test_rules_from_entry_points(monkeypatch: pytest.MonkeyPatch) -> None:
    from importlib import metadata

    def register(found: ContextValidator) -> None:
        found.add_rule(
            lambda c: ValidationIssue(severity=Severity.WARNING, code="plugin.hi", message="hi")
        )

    class Entry:
        name = "house-rules"

        def load(self) -> Any:
            return register

    monkeypatch.setattr(
        "loremaster.validation._validator.entry_points",
        lambda group: [Entry()] if group == "loremaster.validation_rules" else [],
    )
    del metadata
    result = await ContextValidator().validate_context(Context(title="t"))
    assert codes(result) == ["plugin.hi"]


def test_every_code_is_documented() -> None:
    from pathlib import Path

    docs = (Path(__file__).parent.parent / "docs" / "validation.md").read_text()
    for code in CODES:
        assert f"`{code}`" in docs, code


def test_schemas_are_published_per_type() -> None:
    schemas = export_schemas()
    assert set(schemas) == {"generic", "conversation", "session", "collaborative"}
    assert schemas["conversation"]["$schema"].endswith("2020-12/schema")
    assert "messages" in schema_for("conversation")["properties"]


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=10),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=5)
    ),
    max_leaves=25,
)
context_like = st.fixed_dictionaries(
    {},
    optional={
        "context_type": st.sampled_from(
            ["conversation", "session", "collaborative", "generic", "x", 3]
        ),
        "title": st.text(max_size=5) | st.integers(),
        "messages": st.lists(
            st.dictionaries(
                st.sampled_from(["role", "content", "parts", "id", "created_at"]), json_values
            ),
            max_size=4,
        )
        | json_values,
        "active_participants": st.lists(st.text(max_size=3), max_size=4) | json_values,
        "permissions": json_values,
        "locks": json_values,
    },
)


@given(value=json_values | context_like)
async def test_validation_never_raises_it_reports(value: Any) -> None:
    result = await validator().validate_context(value)
    assert isinstance(result, ValidationResult)
    if result.corrected_data is not None:
        assert (await validator().validate_context(result.corrected_data)).is_valid


async def test_the_manager_refuses_invalid_contexts_and_stores_nothing(sqlite_url: str) -> None:
    async with ContextManager(database_url=sqlite_url) as cm:
        bad = ConversationContext(title="t", messages=[result_of("ghost")])
        with pytest.raises(ValidationFailed) as caught:
            await cm.create_context(bad)
        assert caught.value.issues[0].code == "conversation.orphan_tool_result"
        assert (await cm.refresh_statistics())["contexts"] == 0

        def no_swearing(context: Context) -> ValidationIssue | None:
            if "darn" in context.title:
                return ValidationIssue(severity=Severity.ERROR, code="house.swearing", message="no")
            return None

        cm.validator.add_rule(no_swearing)
        room = await cm.create_context(CollaborativeContext(title="table"), user_id="dm")
        with pytest.raises(ValidationFailed, match=r"house\.swearing"):
            await cm.update_context(room, {"title": "darn table"})
        assert (await cm.get_context(room)).revision == 1
        # Warnings do not block a write.
        await cm.update_context(room, {"active_participants": ["dm", "visitor"]})

    async with ContextManager(database_url=sqlite_url, enable_validation=False) as lax:
        await lax.create_context(bad)


async def test_a_flipped_byte_is_an_integrity_error_never_data(sqlite_url: str) -> None:
    async with ContextManager(database_url=sqlite_url) as cm:
        context_id = await cm.create_context(Context(title="t", data={"gold": 120}))
    with sqlite3.connect(sqlite_url.removeprefix("sqlite:///")) as conn:
        conn.execute("UPDATE contexts SET data = replace(data, '120', '920')")
    async with ContextManager(database_url=sqlite_url) as cm:  # nothing cached yet
        with pytest.raises(DataCorrupted, match="checksum"):
            await cm.get_context(context_id)
        with pytest.raises(DataCorrupted):
            await cm.query_contexts()
    async with ContextManager(database_url=sqlite_url, enable_validation=False) as lax:
        assert (await lax.get_context(context_id)).data == {"gold": 920}


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.sampled_from([1.0, -0.0, 1e16, 1.5e20, 2.0**63, 7.0, 1e-5])
    | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=5), children, max_size=4)
    ),
    max_leaves=20,
)


@given(json_values)
def test_canonical_json_takes_its_fast_path_only_when_nothing_changes(value: Any) -> None:
    """Content checksums are a stored format: the shortcut that skips the walk over the
    value must give exactly the bytes the walk gives."""
    walked = orjson.dumps(_canonical(value), option=orjson.OPT_SORT_KEYS)
    assert canonical_json(value) == walked
    assert canonical_json({"document": value}) == orjson.dumps(
        {"document": _canonical(value)}, option=orjson.OPT_SORT_KEYS
    )
