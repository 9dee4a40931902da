"""Recording the calls of the official Google Gen AI SDK client (``client.aio``), against
the providers' stand-in."""

from __future__ import annotations

import pytest
from google import genai
from google.genai import errors, types

from _providers import Answer, Drop, Failure, StandIn, stand_in
from loremaster import (
    ContextManager,
    ConversationContext,
    ThinkingPart,
    ToolCallPart,
    ValidationFailed,
)

__all__ = ["stand_in"]

DROPPED = "peer closed connection"
"""What the transport says of a stream cut off mid-way (the SDKs pass it on as it is)."""

MODEL = "gemini-2.5-flash"
CONFIG = types.GenerateContentConfig(system_instruction="You are the game master.", temperature=0.5)


async def conversation(cm: ContextManager) -> str:
    return await cm.create_context(ConversationContext(title="Session 1"))


async def test_generate_content_is_recorded(manager: ContextManager, stand_in: StandIn) -> None:
    context_id = await conversation(manager)
    client = manager.record_calls(stand_in.gemini(), context_id)
    assert isinstance(client, genai.Client)
    stand_in.script(
        "google",
        Answer("The tavern is loud.", model="gemini-2.5-flash-001", reasoning=5, cache_read=3),
    )
    response = await client.aio.models.generate_content(
        model=MODEL, contents="Where am I?", config=CONFIG
    )
    assert isinstance(response, types.GenerateContentResponse)
    assert response.text == "The tavern is loud."
    stored = (await manager.get_context(context_id)).messages
    assert [(m.role.value, m.text) for m in stored] == [
        ("system", "You are the game master."),
        ("user", "Where am I?"),
        ("assistant", "The tavern is loud."),
    ]
    call = stored[-1].metadata["call"]
    assert call["operation"] == "generate_content"
    assert call["model"] == {"request": MODEL, "response": "gemini-2.5-flash-001"}
    assert call["usage"] == {
        "input_tokens": 12,
        "output_tokens": 4 + 5,  # the answer's and the thinking's
        "cache_read.input_tokens": 3,
        "reasoning.output_tokens": 5,
    }
    assert call["request"] == {"temperature": 0.5}
    assert call["finish_reasons"] == ["STOP"]
    # gemini-2.5-flash: $0.30 in, $0.03 cached, $2.50 out
    assert call["cost_usd"] == pytest.approx((9 * 0.3 + 3 * 0.03 + 9 * 2.5) / 1e6)


async def test_a_stream_with_thinking_and_a_function_call_is_recorded_whole(
    manager: ContextManager, stand_in: StandIn
) -> None:
    context_id = await conversation(manager)
    client = manager.record_calls(stand_in.gemini(), context_id)
    answer = Answer("I roll.", thinking=("A check.", "c2lnbmF0dXJl"), tool_call=("roll", {"d": 20}))
    stand_in.script("google", answer)
    chunks = [
        chunk
        async for chunk in await client.aio.models.generate_content_stream(
            model=MODEL, contents=["Climb the wall"], config=CONFIG
        )
    ]
    assert len(chunks) == len(answer.pieces())
    reply = (await manager.get_context(context_id)).messages[-1]
    thinking, text, call_part = reply.parts
    assert isinstance(thinking, ThinkingPart)
    assert thinking.text == "A check."
    assert text.text == "I roll."  # type: ignore[union-attr]
    assert isinstance(call_part, ToolCallPart)
    assert call_part.arguments == {"d": 20}
    assert call_part.provider_data["google"]["thought_signature"] == "c2lnbmF0dXJl"
    call = reply.metadata["call"]
    assert call["stream"] is True
    assert call["ttft_ms"] > 0
    assert call["usage"]["output_tokens"] == answer.output_tokens


async def test_a_chat_sends_its_history_and_only_the_new_turn_is_stored(
    manager: ContextManager, stand_in: StandIn
) -> None:
    context_id = await conversation(manager)
    client = manager.record_calls(stand_in.gemini(), context_id)
    chat = client.aio.chats.create(model=MODEL, config=CONFIG)
    await chat.send_message("Hello")
    await chat.send_message("And now?")
    stored = (await manager.get_context(context_id)).messages
    assert [m.text for m in stored] == [
        "You are the game master.",
        "Hello",
        "As you wish.",
        "And now?",
        "As you wish.",
    ]
    assert client.loremaster.branch == "main"


async def test_failures_and_broken_streams(manager: ContextManager, stand_in: StandIn) -> None:
    context_id = await conversation(manager)
    client = manager.record_calls(stand_in.gemini(), context_id)
    stand_in.script("google", Failure(429), Drop(after=2, answer=Answer("One two three")))
    with pytest.raises(errors.ClientError) as raised:
        await client.aio.models.generate_content(model=MODEL, contents="Hi")
    assert raised.value.code == 429
    [failed] = await manager.get_calls(context_id)
    assert failed.failed
    assert failed.call["error"]["status"] == 429
    with pytest.raises(Exception, match=DROPPED):  # the transport's error, as unwrapped
        async for _ in await client.aio.models.generate_content_stream(model=MODEL, contents="Hi"):
            pass
    reply = (await manager.get_context(context_id)).messages[-1]
    assert reply.text == "One two"
    assert reply.metadata["call"]["partial"] is True


async def test_the_synchronous_models_refuse_rather_than_go_unrecorded(
    manager: ContextManager, stand_in: StandIn
) -> None:
    client = manager.record_calls(stand_in.gemini(), await conversation(manager))
    with pytest.raises(ValidationFailed, match="async"):
        client.models.generate_content(model=MODEL, contents="Hi")
    assert stand_in.requests == []


@pytest.mark.filterwarnings("ignore:Inheritance class AiohttpClientSession:DeprecationWarning")
async def test_the_sdks_default_transport_records_too(sqlite_url: str, stand_in: StandIn) -> None:
    async with ContextManager(sqlite_url) as cm:
        context_id = await conversation(cm)
        client = cm.record_calls(stand_in.gemini(transport="aiohttp"), context_id)
        await client.aio.models.generate_content(model=MODEL, contents="Hi")
        history = [
            {"role": "user", "parts": [{"text": "Hi"}]},
            {"role": "model", "parts": [{"text": "As you wish."}]},
            {"role": "user", "parts": [{"text": "again"}]},
        ]
        async for _ in await client.aio.models.generate_content_stream(
            model=MODEL, contents=history
        ):
            pass
        stored = (await cm.get_context(context_id)).messages
        assert [m.text for m in stored] == ["Hi", "As you wish.", "again", "As you wish."]
