"""Never lose the reply: the database stops while a call is in flight (a private
PostgreSQL cluster, stopped mid-call); the caller gets the provider's answer all the same,
the failure is logged and counted, or raised with ``on_record_error="raise"``."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

import anthropic
import pytest

from _providers import Answer, StandIn, stand_in
from loremaster import CallNotRecorded, ContextManager, ConversationContext

if TYPE_CHECKING:
    from _postgres import PrivatePostgres

pytest_plugins = ["_postgres"]
__all__ = ["stand_in"]

MODEL = "claude-sonnet-4-6"
SYNC_TIMEOUT = 2.0


@pytest.fixture
async def manager(private_postgres: PrivatePostgres) -> AsyncIterator[ContextManager]:
    cm = ContextManager(private_postgres.url, sync_timeout=SYNC_TIMEOUT, auto_cleanup=False)
    await cm.initialize()
    try:
        yield cm
    finally:
        await cm.close()


async def in_flight(stand_in: StandIn, sent: int) -> None:
    """Wait until the stand-in has the request (it holds its answer a while)."""
    async with asyncio.timeout(10):
        while len(stand_in.requests) < sent:
            await asyncio.sleep(0.01)


async def test_the_caller_gets_the_reply_while_the_database_is_down(
    manager: ContextManager,
    private_postgres: PrivatePostgres,
    stand_in: StandIn,
    caplog: pytest.LogCaptureFixture,
) -> None:
    context_id = await manager.create_context(ConversationContext(title="Session 1"))
    client = manager.record_calls(stand_in.anthropic(), context_id)
    stand_in.script("anthropic", Answer("Still here.", delay=1.0))
    history = [{"role": "user", "content": "Are you there?"}]
    call = asyncio.create_task(client.messages.create(model=MODEL, max_tokens=8, messages=history))
    await in_flight(stand_in, 1)
    await private_postgres.stopped()
    with caplog.at_level(logging.WARNING, logger="loremaster.calls"):
        response = await call
    assert isinstance(response, anthropic.types.Message)
    assert response.content[0].text == "Still here."  # type: ignore[union-attr]
    assert "was not recorded" in caplog.text
    last = client.loremaster.last
    assert last is not None
    assert not last.recorded
    assert last.record_error
    stats = await manager.get_performance_stats(max_age=0)
    assert stats["calls"]["record_failures"] == 1
    assert stats["operations"]["record_call"]["errors"] == 1
    assert "unavailable" in stats["calls"]
    # A stream read whole in the outage reaches the caller whole, recorded or not.
    stream = await client.messages.create(model=MODEL, max_tokens=8, messages=history, stream=True)
    events = [event async for event in stream]
    assert events[-1].type == "message_stop"
    assert (await manager.get_performance_stats(max_age=0))["calls"]["record_failures"] == 2

    await private_postgres.started()
    # Back up: the next call's history holds what was missed, and it is all stored.
    follow = [*history, {"role": "assistant", "content": response.content}]
    await client.messages.create(
        model=MODEL, max_tokens=8, messages=[*follow, {"role": "user", "content": "Good."}]
    )
    stored = (await manager.get_context(context_id)).messages
    assert [m.text for m in stored] == ["Are you there?", "Still here.", "Good.", "As you wish."]
    assert client.loremaster.last is not None
    assert client.loremaster.last.recorded


async def test_on_record_error_raise_hands_over_the_reply_in_the_error(
    manager: ContextManager, private_postgres: PrivatePostgres, stand_in: StandIn
) -> None:
    context_id = await manager.create_context(ConversationContext(title="Session 1"))
    client = manager.record_calls(stand_in.anthropic(), context_id, on_record_error="raise")
    stand_in.script("anthropic", Answer("Caught.", delay=1.0))
    call = asyncio.create_task(
        client.messages.create(
            model=MODEL, max_tokens=8, messages=[{"role": "user", "content": "Hello"}]
        )
    )
    await in_flight(stand_in, 1)
    await private_postgres.stopped()
    with pytest.raises(CallNotRecorded) as raised:
        await call
    assert isinstance(raised.value.response, anthropic.types.Message)
    assert raised.value.response.content[0].text == "Caught."  # type: ignore[union-attr]
    assert raised.value.__cause__ is not None
    await private_postgres.started()
