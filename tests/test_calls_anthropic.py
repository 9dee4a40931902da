"""Recording the calls of the official Anthropic SDK client, against the providers'
stand-in (tests/_providers.py): every recorded method, plain and streamed, failures,
abandoned and broken streams, a history that departs onto a branch."""

from __future__ import annotations

import asyncio

import anthropic
import pytest

from _providers import Answer, Drop, Failure, StandIn, numbered, stand_in
from loremaster import (
    ContextManager,
    ConversationContext,
    ThinkingPart,
    ToolCallPart,
    ValidationFailed,
)
from loremaster.calls import call_attributes

__all__ = ["stand_in"]

DROPPED = "peer closed connection"
"""What the transport says of a stream cut off mid-way (the SDKs pass it on as it is)."""

MODEL = "claude-sonnet-4-6"
SYSTEM = "You are the game master."


async def conversation(cm: ContextManager) -> str:
    return await cm.create_context(ConversationContext(title="Session 1"))


def ask(*texts: str) -> list[dict[str, object]]:
    return [{"role": "user", "content": text} for text in texts]


async def test_a_plain_call_stores_the_request_and_the_reply_with_its_record(
    manager: ContextManager, stand_in: StandIn
) -> None:
    context_id = await conversation(manager)
    given = stand_in.anthropic()
    client = manager.record_calls(given, context_id)
    assert isinstance(client, anthropic.AsyncAnthropic)
    assert client is not given
    assert given.__dict__.get("loremaster") is None
    stand_in.script(
        "anthropic",
        Answer("The crypt is cold.", model=f"{MODEL}-20260101", cache_read=100, cache_write=20),
    )

    response = await client.messages.create(
        model=MODEL, max_tokens=256, system=SYSTEM, messages=ask("Describe the crypt.")
    )

    assert isinstance(response, anthropic.types.Message)
    assert response.content[0].text == "The crypt is cold."
    stored = (await manager.get_context(context_id)).messages
    assert [(m.role.value, m.text) for m in stored] == [
        ("system", SYSTEM),
        ("user", "Describe the crypt."),
        ("assistant", "The crypt is cold."),
    ]
    call = stored[-1].metadata["call"]
    assert call["provider"] == "anthropic"
    assert call["operation"] == "chat"
    assert call["model"] == {"request": MODEL, "response": f"{MODEL}-20260101"}
    assert call["usage"] == {
        "input_tokens": 12 + 100 + 20,  # OpenTelemetry counts the cached tokens in
        "output_tokens": 4,
        "cache_read.input_tokens": 100,
        "cache_creation.input_tokens": 20,
    }
    assert call["finish_reasons"] == ["end_turn"]
    assert call["request_id"] == "req_stand_in_1"
    assert call["response_id"] == "msg_stand_in_1"
    assert call["request"] == {"max_tokens": 256}
    assert call["stream"] is False
    assert "ttft_ms" not in call
    assert call["latency_ms"] > 0
    # claude-sonnet-4-6: $3 in, $15 out, cache reads a tenth, writes 1.25 times
    assert call["cost_usd"] == pytest.approx((12 * 3 + 100 * 0.3 + 20 * 3.75 + 4 * 15) / 1e6)
    last = client.loremaster.last
    assert last is not None
    assert last.recorded
    assert last.branch == "main"
    assert last.reply is not None
    assert last.reply.id == stored[-1].id
    assert last.message_ids == [m.id for m in stored]
    listed = await manager.get_calls(context_id)
    assert [(c.provider.value, c.input_tokens, c.output_tokens, c.failed) for c in listed] == [
        ("anthropic", 132, 4, False)
    ]
    assert listed[0].message_id == stored[-1].id
    assert listed[0].call == call


async def test_a_request_that_repeats_the_history_adds_only_what_is_new(
    manager: ContextManager, stand_in: StandIn
) -> None:
    context_id = await conversation(manager)
    client = manager.record_calls(stand_in.anthropic(), context_id)
    history = ask("I open the door.")
    for turn in range(3):
        response = await client.messages.create(
            model=MODEL, max_tokens=64, system=SYSTEM, messages=history
        )
        history = [
            *history,
            {"role": "assistant", "content": response.content},
            *ask(f"And then {turn}?"),
        ]
    stored = (await manager.get_context(context_id)).messages
    assert [m.role.value for m in stored] == ["system", *["user", "assistant"] * 3]
    assert [m.text for m in stored[3::2]] == ["And then 0?", "And then 1?"]
    assert len({m.id for m in stored}) == len(stored)
    assert len(await manager.get_calls(context_id)) == 3


async def test_streams_reach_the_caller_unchanged_and_are_recorded_once_at_the_end(
    sqlite_url: str, stand_in: StandIn
) -> None:
    answer = Answer(
        "Roll for initiative.",
        thinking=("The goblins wait.", "sig-abc"),
        tool_call=("roll_dice", {"sides": 20}),
    )
    stand_in.script("anthropic", answer, answer)
    request = {"model": MODEL, "max_tokens": 128, "messages": ask("We attack.")}
    plain = await stand_in.anthropic().messages.create(**request, stream=True)
    expected = [event async for event in plain]
    async with ContextManager(sqlite_url) as cm:
        context_id = await conversation(cm)
        client = cm.record_calls(stand_in.anthropic(), context_id)
        stream = await client.messages.create(**request, stream=True)
        assert isinstance(stream, anthropic.AsyncStream)
        assert await cm.get_calls(context_id) == []  # nothing stored while it runs
        got = [event async for event in stream]
        assert [numbered(e.model_dump_json()) for e in got] == [
            numbered(e.model_dump_json()) for e in expected
        ]
        reply = (await cm.get_context(context_id)).messages[-1]
    thinking, text, tool = reply.parts
    assert isinstance(thinking, ThinkingPart)
    assert thinking.text == "The goblins wait."
    assert thinking.provider_data["anthropic"]["signature"] == "sig-abc"
    assert text.text == "Roll for initiative."  # type: ignore[union-attr]
    assert isinstance(tool, ToolCallPart)
    assert tool.arguments == {"sides": 20}
    call = reply.metadata["call"]
    assert call["stream"] is True
    assert 0 < call["ttft_ms"] <= call["latency_ms"]
    assert call["finish_reasons"] == ["tool_use"]
    assert call["usage"]["output_tokens"] == answer.output_tokens  # from message_delta
    assert "partial" not in call


async def test_the_stream_helper_is_recorded(manager: ContextManager, stand_in: StandIn) -> None:
    context_id = await conversation(manager)
    client = manager.record_calls(stand_in.anthropic(), context_id)
    async with client.messages.stream(
        model=MODEL, max_tokens=64, messages=ask("Who goes first?")
    ) as stream:
        final = await stream.get_final_message()
    assert final.content[0].text == "As you wish."  # type: ignore[union-attr]
    stored = (await manager.get_context(context_id)).messages
    assert stored[-1].text == "As you wish."
    assert stored[-1].metadata["call"]["stream"] is True
    assert "partial" not in stored[-1].metadata["call"]


async def test_a_failed_call_raises_the_sdks_own_error_and_is_on_record_without_messages(
    manager: ContextManager, stand_in: StandIn
) -> None:
    context_id = await conversation(manager)
    client = manager.record_calls(stand_in.anthropic(), context_id)
    stand_in.script("anthropic", Failure(529), Failure(529))
    with pytest.raises(anthropic.APIStatusError) as unwrapped:
        await stand_in.anthropic().messages.create(model=MODEL, max_tokens=8, messages=ask("?"))
    with pytest.raises(type(unwrapped.value)) as raised:
        await client.messages.create(model=MODEL, max_tokens=8, messages=ask("Hello?"))
    assert raised.value.status_code == 529
    assert (await manager.get_context(context_id)).messages == []
    [failed] = await manager.get_calls(context_id)
    assert failed.failed
    assert failed.message_id is None
    assert failed.call["error"]["type"] == type(raised.value).__name__
    assert failed.call["error"]["status"] == 529
    assert failed.call["request_id"] == "req_stand_in_2"
    assert call_attributes(failed.call)["error.type"] == type(raised.value).__name__


async def test_a_broken_stream_is_recorded_as_partial_with_what_arrived(
    manager: ContextManager, stand_in: StandIn
) -> None:
    context_id = await conversation(manager)
    client = manager.record_calls(stand_in.anthropic(), context_id)
    stand_in.script("anthropic", Drop(after=5, answer=Answer("One two three four")))
    stream = await client.messages.create(
        model=MODEL, max_tokens=8, messages=ask("Go"), stream=True
    )
    with pytest.raises(Exception, match=DROPPED) as broken:  # the transport's, as unwrapped
        async for _ in stream:
            pass
    stored = (await manager.get_context(context_id)).messages
    assert [m.text for m in stored] == ["Go", "One two"]  # start, block, ping, 2 deltas
    call = stored[-1].metadata["call"]
    assert call["partial"] is True
    assert call["error"]["type"] == type(broken.value).__name__


async def test_an_abandoned_stream_is_recorded_as_partial_when_closed(
    manager: ContextManager, stand_in: StandIn
) -> None:
    context_id = await conversation(manager)
    client = manager.record_calls(stand_in.anthropic(), context_id)
    stand_in.script("anthropic", Answer("Slowly the door opens wide"))
    async with await client.messages.create(
        model=MODEL, max_tokens=8, messages=ask("Open it"), stream=True
    ) as stream:
        async for event in stream:
            if event.type == "content_block_delta":
                break
    reply = (await manager.get_context(context_id)).messages[-1]
    assert reply.text == "Slowly"
    assert reply.metadata["call"]["partial"] is True
    assert "error" not in reply.metadata["call"]


async def test_a_history_that_departs_goes_on_a_new_branch_that_later_calls_follow(
    manager: ContextManager, stand_in: StandIn
) -> None:
    context_id = await conversation(manager)
    client = manager.record_calls(stand_in.anthropic(), context_id)
    first = await client.messages.create(
        model=MODEL, max_tokens=8, system=SYSTEM, messages=ask("Left or right?")
    )
    history = [*ask("Left or right?"), {"role": "assistant", "content": first.content}]
    await client.messages.create(
        model=MODEL, max_tokens=8, system=SYSTEM, messages=[*history, *ask("Left.")]
    )
    # The player takes it back: the same start, another choice.
    stand_in.script("anthropic", Answer("The right passage is flooded."))
    await client.messages.create(
        model=MODEL, max_tokens=8, system=SYSTEM, messages=[*history, *ask("Right.")]
    )
    last = client.loremaster.last
    assert last is not None
    assert last.branched_from == "main"
    branch = last.branch
    assert branch != "main"
    assert client.loremaster.branch == branch
    main = (await manager.get_context(context_id)).messages
    assert [m.text for m in main][-2:] == ["Left.", "As you wish."]  # never merged
    on_branch = (await manager.get_context(context_id, branch=branch)).messages
    assert [m.text for m in on_branch] == [
        SYSTEM,
        "Left or right?",
        "As you wish.",
        "Right.",
        "The right passage is flooded.",
    ]
    assert [m.id for m in on_branch[:3]] == [m.id for m in main[:3]]  # shared, not copied
    # The next call continues the branch.
    follow = [*on_branch_history(on_branch), *ask("I swim.")]
    await client.messages.create(model=MODEL, max_tokens=8, system=SYSTEM, messages=follow)
    assert client.loremaster.last is not None
    assert client.loremaster.last.branch == branch
    assert client.loremaster.last.branched_from is None
    assert len((await manager.get_context(context_id, branch=branch)).messages) == 7
    assert {c.branch for c in await manager.get_calls(context_id)} == {"main", branch}


def on_branch_history(messages: list[object]) -> list[dict[str, object]]:
    """A stored conversation (system first) as Anthropic turns."""
    return [
        {"role": m.role.value, "content": m.text}  # type: ignore[attr-defined]
        for m in messages[1:]
    ]


async def test_copies_of_a_recorded_client_record_too(
    manager: ContextManager, stand_in: StandIn
) -> None:
    context_id = await conversation(manager)
    client = manager.record_calls(stand_in.anthropic(), context_id)
    copy = client.with_options(timeout=30)
    assert copy.loremaster is client.loremaster
    await copy.messages.create(model=MODEL, max_tokens=8, messages=ask("Again"))
    assert len(await manager.get_calls(context_id)) == 1
    # Endpoints it does not record pass through untouched.
    batches = client.messages.batches
    assert isinstance(batches, anthropic.resources.messages.AsyncBatches)


async def test_synchronous_and_foreign_clients_are_refused(
    manager: ContextManager, stand_in: StandIn
) -> None:
    context_id = await conversation(manager)
    with pytest.raises(ValidationFailed, match="synchronous"):
        manager.record_calls(anthropic.Anthropic(api_key="x", base_url=stand_in.url), context_id)
    with pytest.raises(ValidationFailed, match="not"):
        manager.record_calls(object(), context_id)
    with pytest.raises(ValidationFailed, match="on_record_error"):
        manager.record_calls(stand_in.anthropic(), context_id, on_record_error="ignore")  # type: ignore[arg-type]


def test_call_attributes_are_exactly_the_open_telemetry_ones() -> None:
    call = {
        "provider": "google",
        "operation": "generate_content",
        "model": {"request": "gemini-2.5-flash", "response": "gemini-2.5-flash-001"},
        "request": {"max_tokens": 100, "temperature": 0.5},
        "response_id": "r1",
        "finish_reasons": ["STOP"],
        "usage": {"input_tokens": 10, "output_tokens": 5, "reasoning.output_tokens": 2},
        "latency_ms": 12.5,
        "cost_usd": 0.001,
        "stream": False,
    }
    assert call_attributes(call, "ctx-1") == {
        "gen_ai.operation.name": "generate_content",
        "gen_ai.provider.name": "gcp.gemini",
        "gen_ai.request.model": "gemini-2.5-flash",
        "gen_ai.response.model": "gemini-2.5-flash-001",
        "gen_ai.request.max_tokens": 100,
        "gen_ai.request.temperature": 0.5,
        "gen_ai.response.id": "r1",
        "gen_ai.response.finish_reasons": ["STOP"],
        "gen_ai.usage.input_tokens": 10,
        "gen_ai.usage.output_tokens": 5,
        "gen_ai.usage.reasoning.output_tokens": 2,
        "gen_ai.conversation.id": "ctx-1",
    }


async def test_a_hard_delete_removes_the_calls_too(sqlite_url: str, stand_in: StandIn) -> None:
    async with ContextManager(sqlite_url) as cm:
        context_id = await conversation(cm)
        client = cm.record_calls(stand_in.anthropic(), context_id)
        await client.messages.create(model=MODEL, max_tokens=8, messages=ask("Bye"))
        await cm.delete_context(context_id, hard_delete=True)
        assert (await cm.get_performance_stats(max_age=0))["calls"]["by_provider"] == {}


async def test_two_managers_recording_into_one_context_at_once_never_merge_histories(
    sqlite_url: str, stand_in: StandIn
) -> None:
    async with ContextManager(sqlite_url) as first, ContextManager(sqlite_url) as second:
        context_id = await conversation(first)
        clients = [cm.record_calls(stand_in.anthropic(), context_id) for cm in (first, second)]
        stand_in.script("anthropic", Answer("North.", delay=0.2), Answer("South.", delay=0.2))
        await asyncio.gather(
            clients[0].messages.create(model=MODEL, max_tokens=8, messages=ask("Go north.")),
            clients[1].messages.create(model=MODEL, max_tokens=8, messages=ask("Go south.")),
        )
        branches = {client.loremaster.last.branch for client in clients}  # type: ignore[union-attr]
        assert "main" in branches
        assert len(branches) == 2  # the second to land compared again, and departed
        main = [m.text for m in (await first.get_context(context_id)).messages]
        assert main in (["Go north.", "North."], ["Go south.", "South."])
