"""`complete`: one conversation, answered by the first provider that can, translated for
each; failed attempts on record, errors that another provider would not fix raised at
once. Against the providers' stand-in."""

from __future__ import annotations

import logging

import anthropic
import openai
import pytest

from _providers import Answer, Drop, Failure, StandIn, stand_in
from loremaster import ContextManager, ConversationContext, Message, ValidationFailed

__all__ = ["stand_in"]

CLAUDE, GPT, GEMINI = "claude-sonnet-4-6", "gpt-4.1", "gemini-2.5-flash"


async def campaign(cm: ContextManager) -> str:
    return await cm.create_context(
        ConversationContext(
            title="Session 1",
            messages=[
                Message(role="system", content="You are the game master."),
                Message(role="user", content="We enter the crypt."),
                Message(role="assistant", content="It is dark."),
            ],
        )
    )


def three(stand_in: StandIn) -> list[tuple[object, str]]:
    return [(stand_in.anthropic(), CLAUDE), (stand_in.openai(), GPT), (stand_in.gemini(), GEMINI)]


async def test_a_chain_of_three_with_the_first_two_failing(
    manager: ContextManager, stand_in: StandIn
) -> None:
    context_id = await campaign(manager)
    stand_in.script("anthropic", Failure(529))
    stand_in.script("openai", Drop(after=3))  # a connection dropped mid-stream
    stand_in.script("google", Answer("Bones rattle in the dark."))

    result = await manager.complete(context_id, "I light a torch.", providers=three(stand_in))

    assert (result.provider.value, result.model) == ("google", GEMINI)
    assert result.reply is not None
    assert result.reply.text == "Bones rattle in the dark."
    stored = (await manager.get_context(context_id)).messages
    assert [m.text for m in stored][-3:] == [
        "It is dark.",
        "I light a torch.",
        "Bones rattle in the dark.",
    ]
    assert len(stored) == 5  # the user's message once, the reply once
    call = stored[-1].metadata["call"]
    assert [(f["provider"], f["model"]) for f in call["fallbacks"]] == [
        ("anthropic", CLAUDE),
        ("openai", GPT),
    ]
    assert call["fallbacks"][0]["error"]["status"] == 529
    assert call["fallbacks"][1]["error"]["type"]  # the transport's error
    assert call["usage"]["input_tokens"] == 12
    assert call["stream"] is True
    # Each provider had the whole conversation, in its own format.
    sent = {seen.provider: seen.body for seen in stand_in.requests}
    assert sent["anthropic"]["system"] == "You are the game master."
    assert sent["anthropic"]["messages"][-1] == {"role": "user", "content": "I light a torch."}
    assert sent["anthropic"]["max_tokens"] == 128_000  # the registry's longest answer
    assert sent["openai"]["messages"][0] == {
        "role": "system",
        "content": "You are the game master.",
    }
    assert sent["openai"]["stream_options"] == {"include_usage": True}
    assert sent["google"]["systemInstruction"]["parts"] == [{"text": "You are the game master."}]
    assert sent["google"]["contents"][-1] == {
        "role": "user",
        "parts": [{"text": "I light a torch."}],
    }
    [listed] = await manager.get_calls(context_id)
    assert listed.provider.value == "google"
    assert listed.message_id == stored[-1].id


async def test_an_error_another_provider_would_not_fix_is_raised_at_once(
    manager: ContextManager, stand_in: StandIn
) -> None:
    context_id = await campaign(manager)
    stand_in.script("anthropic", Failure(400))
    with pytest.raises(anthropic.BadRequestError):
        await manager.complete(context_id, "Hello?", providers=three(stand_in))
    assert [seen.provider for seen in stand_in.requests] == ["anthropic"]
    stored = (await manager.get_context(context_id)).messages
    assert stored[-1].text == "Hello?"  # the user's message stays
    [failed] = await manager.get_calls(context_id)
    assert failed.failed
    assert failed.call["error"]["status"] == 400
    assert "fallbacks" not in failed.call


async def test_when_every_provider_fails_the_last_error_is_raised_and_all_are_on_record(
    manager: ContextManager, stand_in: StandIn
) -> None:
    context_id = await campaign(manager)
    stand_in.script("anthropic", Failure(503))
    stand_in.script("openai", Failure(429))
    with pytest.raises(openai.RateLimitError):
        await manager.complete(
            context_id,
            [{"role": "user", "content": "Anyone?"}],
            providers=[(stand_in.anthropic(), CLAUDE), (stand_in.openai(), GPT)],
        )
    [failed] = await manager.get_calls(context_id)
    assert failed.failed
    assert failed.provider.value == "openai"
    assert [f["error"]["status"] for f in failed.call["fallbacks"]] == [503]


async def test_options_defaults_and_a_model_the_registry_does_not_know(
    sqlite_url: str, stand_in: StandIn, caplog: pytest.LogCaptureFixture
) -> None:
    async with ContextManager(sqlite_url) as cm:
        context_id = await campaign(cm)
        with caplog.at_level(logging.WARNING, logger="loremaster.calls"):
            result = await cm.complete(
                context_id,
                "Hi",
                providers=[(stand_in.anthropic(), "claude-experimental-9")],
                max_tokens=500,
                temperature=0.1,
            )
        assert "does not know" in caplog.text
        assert result.call["warnings"][0].startswith("'claude-experimental-9'")
        assert "cost_usd" not in result.call  # no price for it
        body = stand_in.requests[-1].body
        assert (body["max_tokens"], body["temperature"]) == (500, 0.1)
        assert result.call["request"] == {"max_tokens": 500, "temperature": 0.1}
        with pytest.raises(ValidationFailed, match="portable"):
            await cm.complete(context_id, "Hi", providers=three(stand_in), seed=4)
        with pytest.raises(ValidationFailed, match="providers"):
            await cm.complete(context_id, "Hi", providers=[])
        recorded = cm.record_calls(stand_in.openai(), context_id)
        with pytest.raises(ValidationFailed, match="record_calls"):
            await cm.complete(context_id, "Hi", providers=[(recorded, GPT)])
        assert len((await cm.get_context(context_id)).messages) == 5  # refused: no append
