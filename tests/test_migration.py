"""Moving a stored conversation between providers, and exporting request payloads."""

from __future__ import annotations

import pytest

from loremaster import (
    ContextManager,
    ConversationContext,
    Message,
    SessionContext,
    TextPart,
    ThinkingPart,
    ToolCallPart,
    ToolResultPart,
    ValidationFailed,
)
from loremaster.translation import ContextTranslator, validate_payload


def _tool_conversation() -> ConversationContext:
    return ConversationContext(
        title="Dice",
        primary_provider="openai",
        messages=[
            Message(role="system", content="You are the game master."),
            Message(role="user", content="Roll two dice."),
            Message(
                role="assistant",
                parts=[
                    ToolCallPart(id="call_1", name="roll", arguments={"dice": "1d6"}),
                    ToolCallPart(id="call_2", name="roll", arguments={"dice": "1d8"}),
                ],
            ),
            Message(role="tool", parts=[ToolResultPart(call_id="call_1", content="4")]),
            Message(role="tool", parts=[ToolResultPart(call_id="call_2", content="7")]),
            Message(role="assistant", content="You rolled 4 and 7."),
        ],
    )


async def test_spec_migration_example(db_url: str) -> None:
    from loremaster import ProviderType

    async with ContextManager(database_url=db_url) as context_manager:
        context_id = await context_manager.create_context(_tool_conversation(), user_id="dm")
        result = await context_manager.migrate_context(
            context_id,
            from_provider=ProviderType.OPENAI,
            to_provider=ProviderType.ANTHROPIC,
            options={"preserve_history": True},
        )

        assert result.migrated
        assert result.fits
        migrated = await context_manager.get_context(context_id)
        assert isinstance(migrated, ConversationContext)
        assert migrated.primary_provider is ProviderType.ANTHROPIC
        assert migrated.metadata["migration"]["from"] == "openai"
        assert migrated.metadata["migration"]["to"] == "anthropic"
        payload = await context_manager.export_for_provider(context_id, "anthropic")
        validate_payload(payload, "anthropic")
        results = payload["messages"][2]["content"]
        assert [block["type"] for block in results] == ["tool_result", "tool_result"]
        history = await context_manager.get_version_history(context_id, limit=2)
        assert [v.version_id for v in history] == [result.version_after, result.version_before]
        before = await context_manager.get_version(context_id, result.version_before)
        assert before.primary_provider is ProviderType.OPENAI
        assert (await context_manager.get_events(context_id))[-1].op == "migrate"


async def test_a_lossy_migration_is_reported_or_refused(db_url: str) -> None:
    conversation = ConversationContext(
        title="Thinking",
        primary_provider="anthropic",
        messages=[
            Message(role="user", content="Plan the heist."),
            Message(
                role="assistant",
                parts=[ThinkingPart(text="They need a distraction."), TextPart(text="Here.")],
            ),
        ],
    )
    async with ContextManager(database_url=db_url) as cm:
        context_id = await cm.create_context(conversation, user_id="dm")
        revision = (await cm.get_context(context_id)).revision

        refused = await cm.migrate_context(
            context_id, to_provider="openai", options={"on_loss": "refuse"}
        )
        assert not refused.migrated
        assert refused.reason is not None
        assert "lose" in refused.reason
        assert not refused.lossless
        unchanged = await cm.get_context(context_id)
        assert unchanged.revision == revision  # untouched: no version, no change

        converted = await cm.migrate_context(context_id, to_provider="openai")
        assert converted.migrated
        assert not converted.lossless
        assert any(not change.lossless for change in converted.changes)
        after = await cm.get_context(context_id)
        assert isinstance(after, ConversationContext)
        assert [type(p).__name__ for p in after.messages[1].parts] == ["TextPart"]
        before = await cm.get_version(context_id, converted.version_before)
        assert isinstance(before, ConversationContext)
        assert isinstance(before.messages[1].parts[0], ThinkingPart)  # still reachable


async def test_dropping_history_to_fit_a_small_window(db_url: str) -> None:
    conversation = ConversationContext(
        title="Long",
        messages=[Message(role="system", content="Be brief.")]
        + [
            Message(role="user" if i % 2 == 0 else "assistant", content="word " * 200)
            for i in range(40)
        ],
    )
    models = {"tiny": {"provider": "openai", "context_window": 3000, "max_output": 500}}
    async with ContextManager(database_url=db_url, models=models) as cm:
        context_id = await cm.create_context(conversation, user_id="dm")
        kept = await cm.migrate_context(context_id, to_provider="openai", options={"model": "tiny"})
        assert kept.migrated
        assert not kept.fits
        assert kept.removed_to_fit > 0
        assert kept.messages_after == 41

        dropped = await cm.migrate_context(
            context_id, to_provider="openai", options={"model": "tiny", "preserve_history": False}
        )
        assert dropped.fits
        assert dropped.messages_after < 41
        after = await cm.get_context(context_id)
        assert isinstance(after, ConversationContext)
        assert after.messages[0].text == "Be brief."
        assert len(after.messages) == dropped.messages_after
        full = await cm.get_version(context_id, dropped.version_before)
        assert isinstance(full, ConversationContext)
        assert len(full.messages) == 41


async def test_bad_migrations_are_refused_before_anything_is_written(db_url: str) -> None:
    async with ContextManager(database_url=db_url) as cm:
        session = await cm.create_context(SessionContext(title="s", user_id="u"), user_id="u")
        conversation = await cm.create_context(_tool_conversation(), user_id="dm")
        with pytest.raises(ValidationFailed):
            await cm.migrate_context(session, to_provider="anthropic")
        with pytest.raises(ValidationFailed):
            await cm.migrate_context(conversation, to_provider="mistral")
        with pytest.raises(ValidationFailed):
            await cm.migrate_context(conversation, to_provider="google", options={"fast": True})
        assert len(await cm.get_version_history(conversation)) == 1


async def test_exports_are_cached_per_revision(db_url: str) -> None:
    async with ContextManager(database_url=db_url) as cm:
        context_id = await cm.create_context(_tool_conversation(), user_id="dm")
        first = await cm.export_for_provider(context_id, "google")
        first["contents"].clear()  # a caller's changes do not reach the cache
        again = await cm.export_for_provider(context_id, "google")
        assert again["contents"]
        assert (await cm.get_performance_stats())["translation_cache_entries"] == 1
        await cm.append_messages(context_id, {"role": "user", "content": "Again!"})
        newer = await cm.export_for_provider(context_id, "google")
        assert newer["contents"][-1]["parts"] == [{"text": "Again!"}]
        translator = ContextTranslator()
        stored = await cm.get_context(context_id)
        assert isinstance(stored, ConversationContext)
        assert newer == translator.to_provider(stored.messages, "google").payload


async def test_migration_can_be_turned_off(sqlite_url: str) -> None:
    from loremaster import ConfigurationError

    async with ContextManager(database_url=sqlite_url, enable_translation=False) as cm:
        context_id = await cm.create_context(_tool_conversation(), user_id="dm")
        with pytest.raises(ConfigurationError):
            await cm.migrate_context(context_id, to_provider="anthropic")
