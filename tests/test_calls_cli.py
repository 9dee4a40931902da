"""``loremaster calls`` and the calls per provider in ``loremaster stats``."""

from __future__ import annotations

import asyncio

import orjson
import pytest

from _providers import Answer, Failure, StandIn, stand_in
from loremaster import ContextManager, ConversationContext
from loremaster.cli import main

__all__ = ["stand_in"]


async def run(capsys: pytest.CaptureFixture[str], url: str, *args: str) -> str:
    """The command's output (run in a thread: the CLI runs an event loop of its own)."""
    assert await asyncio.to_thread(main, [*args, "--database-url", url]) == 0
    return capsys.readouterr().out


async def test_calls_lists_a_contexts_calls_and_stats_counts_them_per_provider(
    sqlite_url: str, stand_in: StandIn, capsys: pytest.CaptureFixture[str]
) -> None:
    async with ContextManager(sqlite_url) as cm:
        context_id = await cm.create_context(ConversationContext(title="Session 1"))
        claude = cm.record_calls(stand_in.anthropic(), context_id)
        gpt = cm.record_calls(stand_in.openai(), context_id)
        stand_in.script("anthropic", Answer("Yes.", input_tokens=100), Failure(529))
        ask = [{"role": "user", "content": "Ready?"}]
        await claude.messages.create(model="claude-sonnet-4-6", max_tokens=8, messages=ask)
        with pytest.raises(Exception, match="529"):
            await claude.messages.create(model="claude-sonnet-4-6", max_tokens=8, messages=ask)
        await gpt.chat.completions.create(model="gpt-4.1", messages=ask)

    listed = orjson.loads(await run(capsys, sqlite_url, "calls", context_id, "--json"))
    assert [(c["provider"], c["failed"]) for c in listed] == [
        ("openai", False),
        ("anthropic", True),
        ("anthropic", False),
    ]
    # GPT was asked "Ready?" alone, not after Claude's answer: its own branch.
    assert listed[0]["branch"] != "main"
    assert listed[1]["branch"] == "main"
    assert listed[2]["input_tokens"] == 100
    assert listed[2]["cost_usd"] > 0
    table = await run(capsys, sqlite_url, "calls", context_id)
    assert "claude-sonnet-4-6" in table
    assert "gpt-4.1" in table
    assert "failed" in table
    assert "529" in table
    assert "100/1" in table
    assert "no calls recorded" in await run(
        capsys, sqlite_url, "calls", context_id, "--branch", "x"
    )

    stats = orjson.loads(await run(capsys, sqlite_url, "stats", "--json"))
    by_provider = stats["calls"]["by_provider"]
    assert by_provider["anthropic"]["calls"] == 2
    assert by_provider["anthropic"]["failed"] == 1
    assert by_provider["anthropic"]["input_tokens"] == 100
    assert by_provider["openai"]["output_tokens"] == 3
    assert by_provider["anthropic"]["cost_usd"] == pytest.approx(listed[2]["cost_usd"])
    assert "by_provider" in await run(capsys, sqlite_url, "stats")
