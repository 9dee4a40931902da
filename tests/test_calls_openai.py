"""Recording the calls of the official OpenAI SDK client (Chat Completions and the
Responses API), against the providers' stand-in."""

from __future__ import annotations

import json

import httpx
import openai
import pytest

from _providers import Answer, Drop, Failure, StandIn, numbered, stand_in
from loremaster import ContextManager, ConversationContext, ToolCallPart, ValidationFailed

__all__ = ["stand_in"]

DROPPED = "peer closed connection"
"""What the transport says of a stream cut off mid-way: the SDK raises it as it is (openai
2) or as the cause of its `APIConnectionError` (openai 3)."""


def causes(error: BaseException | None) -> str:
    """The messages of `error` and of the errors it was raised from."""
    said = []
    while error is not None:
        said.append(str(error))
        error = error.__cause__ or error.__context__
    return " <- ".join(said)


MODEL = "gpt-4.1"


async def conversation(cm: ContextManager) -> str:
    return await cm.create_context(ConversationContext(title="Session 1"))


def chat(*texts: str) -> list[dict[str, object]]:
    return [
        {"role": "system", "content": "You are the game master."},
        *({"role": "user", "content": text} for text in texts),
    ]


async def test_a_chat_completion_is_recorded_with_its_usage_and_cost(
    manager: ContextManager, stand_in: StandIn
) -> None:
    context_id = await conversation(manager)
    client = manager.record_calls(stand_in.openai(), context_id)
    assert isinstance(client, openai.AsyncOpenAI)
    stand_in.script("openai", Answer("Two goblins.", cache_read=4, reasoning=2))
    completion = await client.chat.completions.create(
        model=MODEL, messages=chat("Who is there?"), max_completion_tokens=50, temperature=0.2
    )
    assert isinstance(completion, openai.types.chat.ChatCompletion)
    stored = (await manager.get_context(context_id)).messages
    assert [m.text for m in stored] == ["You are the game master.", "Who is there?", "Two goblins."]
    call = stored[-1].metadata["call"]
    assert call["usage"] == {
        "input_tokens": 12,
        "output_tokens": 4,
        "cache_read.input_tokens": 4,
        "reasoning.output_tokens": 2,
    }
    assert call["request"] == {"max_tokens": 50, "temperature": 0.2}
    assert call["request_id"] == "req_stand_in_1"
    assert call["finish_reasons"] == ["stop"]
    # gpt-4.1: $2 in, $0.50 cached, $8 out
    assert call["cost_usd"] == pytest.approx((8 * 2 + 4 * 0.5 + 4 * 8) / 1e6)
    # The reply sent back (the SDK's own message object) is not stored again.
    history = [
        *chat("Who is there?"),
        completion.choices[0].message,
        {"role": "user", "content": "I attack."},
    ]
    await client.chat.completions.create(model=MODEL, messages=history)
    assert len((await manager.get_context(context_id)).messages) == 5


async def test_a_stream_is_asked_for_its_usage_and_the_extra_chunk_is_kept_from_the_caller(
    manager: ContextManager, stand_in: StandIn
) -> None:
    context_id = await conversation(manager)
    client = manager.record_calls(stand_in.openai(), context_id)
    expected = [
        chunk
        async for chunk in await stand_in.openai().chat.completions.create(
            model=MODEL, messages=chat("Hi"), stream=True
        )
    ]
    assert "stream_options" not in stand_in.requests[-1].body
    stream = await client.chat.completions.create(model=MODEL, messages=chat("Hi"), stream=True)
    assert isinstance(stream, openai.AsyncStream)
    got = [chunk async for chunk in stream]
    assert stand_in.requests[-1].body["stream_options"] == {"include_usage": True}
    # Each chunk as the caller would have had it (usage: null is what the SDK makes of
    # both a missing usage and a null one), and no usage-only chunk.
    assert [numbered(c.model_dump_json()) for c in got] == [
        numbered(c.model_dump_json()) for c in expected
    ]
    call = (await manager.get_context(context_id)).messages[-1].metadata["call"]
    assert call["usage"]["input_tokens"] == 12
    assert call["usage"]["output_tokens"] == 3
    assert call["ttft_ms"] > 0
    assert call["finish_reasons"] == ["stop"]


async def test_a_caller_who_asked_for_usage_gets_its_chunk(
    manager: ContextManager, stand_in: StandIn
) -> None:
    client = manager.record_calls(stand_in.openai(), await conversation(manager))
    stream = await client.chat.completions.create(
        model=MODEL, messages=chat("Hi"), stream=True, stream_options={"include_usage": True}
    )
    chunks = [chunk async for chunk in stream]
    assert chunks[-1].choices == []
    assert chunks[-1].usage is not None
    assert client.loremaster.last is not None
    assert client.loremaster.last.call["usage"]["output_tokens"] == 3


async def test_streamed_tool_calls_are_recorded_whole(
    manager: ContextManager, stand_in: StandIn
) -> None:
    context_id = await conversation(manager)
    client = manager.record_calls(stand_in.openai(), context_id)
    stand_in.script("openai", Answer("Rolling.", tool_call=("roll_dice", {"sides": 20})))
    stream = await client.chat.completions.create(model=MODEL, messages=chat("Roll"), stream=True)
    async for _ in stream:
        pass
    reply = (await manager.get_context(context_id)).messages[-1]
    assert reply.text == "Rolling."
    [tool] = [p for p in reply.parts if isinstance(p, ToolCallPart)]
    assert (tool.id, tool.name, tool.arguments) == ("call_stand_in_1", "roll_dice", {"sides": 20})
    assert reply.metadata["call"]["finish_reasons"] == ["tool_calls"]


async def test_a_broken_chat_stream_is_partial_and_a_failed_one_is_on_record(
    manager: ContextManager, stand_in: StandIn
) -> None:
    context_id = await conversation(manager)
    client = manager.record_calls(stand_in.openai(), context_id)
    stand_in.script("openai", Drop(after=3, answer=Answer("Far far away")), Failure(503))
    stream = await client.chat.completions.create(model=MODEL, messages=chat("Go"), stream=True)
    with pytest.raises((httpx.RemoteProtocolError, openai.APIConnectionError)) as broken:
        async for _ in stream:
            pass
    assert DROPPED in causes(broken.value)
    reply = (await manager.get_context(context_id)).messages[-1]
    assert reply.text == "Far far"
    assert reply.metadata["call"]["partial"] is True
    with pytest.raises(openai.InternalServerError):
        await client.chat.completions.create(model=MODEL, messages=chat("Go", "Again"))
    newest = (await manager.get_calls(context_id))[0]
    assert newest.failed
    assert newest.call["error"]["status"] == 503


async def test_the_responses_api_is_recorded_plain_and_streamed(
    manager: ContextManager, stand_in: StandIn
) -> None:
    context_id = await conversation(manager)
    client = manager.record_calls(stand_in.openai(), context_id)
    stand_in.script("openai", Answer("A dusty map.", tool_call=("look", {"at": "map"})))
    response = await client.responses.create(
        model=MODEL, instructions="You are the game master.", input="What is on the table?"
    )
    assert isinstance(response, openai.types.responses.Response)
    stored = (await manager.get_context(context_id)).messages
    assert [m.role.value for m in stored] == ["system", "user", "assistant"]
    assert stored[-1].text == "A dusty map."
    [look] = [p for p in stored[-1].parts if isinstance(p, ToolCallPart)]
    assert look.name == "look"
    assert look.arguments == {"at": "map"}
    # Sending the output back with the function's result, streamed.
    follow = [
        {"role": "user", "content": "What is on the table?"},
        *[item.model_dump(exclude_none=True) for item in response.output],
        {"type": "function_call_output", "call_id": look.id, "output": json.dumps({"map": "old"})},
    ]
    stream = await client.responses.create(
        model=MODEL, instructions="You are the game master.", input=follow, stream=True
    )
    events = [event async for event in stream]
    assert events[-1].type == "response.completed"
    stored = (await manager.get_context(context_id)).messages
    assert [m.role.value for m in stored] == ["system", "user", "assistant", "tool", "assistant"]
    call = stored[-1].metadata["call"]
    assert call["stream"] is True
    assert call["usage"]["output_tokens"] == 3
    assert call["response_id"] == "resp_stand_in_2"
    # With previous_response_id the input holds only what is new.
    await client.responses.create(
        model=MODEL, previous_response_id=response.id, input="And the door?"
    )
    stored = (await manager.get_context(context_id)).messages
    assert [m.text for m in stored[-2:]] == ["And the door?", "As you wish."]
    assert client.loremaster.branch == "main"


async def test_copies_record_and_synchronous_clients_are_refused(
    manager: ContextManager, stand_in: StandIn
) -> None:
    context_id = await conversation(manager)
    client = manager.record_calls(stand_in.openai(), context_id)
    await client.with_options(max_retries=1).chat.completions.create(
        model=MODEL, messages=chat("Hello")
    )
    assert len(await manager.get_calls(context_id)) == 1
    with pytest.raises(ValidationFailed, match="synchronous"):
        manager.record_calls(openai.OpenAI(api_key="x", base_url=stand_in.url), context_id)
