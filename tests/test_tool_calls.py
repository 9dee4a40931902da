"""Writes attributed to a tool call (`ContextManager.tool_call`): each change made inside
the block is one event naming the tool, on every backend; what is outside it names none."""

from __future__ import annotations

import asyncio

import pytest

from loremaster import CollaborativeContext, ContextManager, ConversationContext, ValidationFailed


async def test_every_kind_of_change_names_the_tool(manager: ContextManager) -> None:
    cm = manager
    with cm.tool_call("mcp:create_context"):
        story = await cm.create_context(ConversationContext(title="log"), user_id="dm")
    with cm.tool_call("agent:edit"):
        await cm.append_messages(story, {"role": "user", "content": "hi"}, user_id="dm")
        await cm.update_context(story, {"data": {"hp": 3}}, user_id="dm")
        version = await cm.create_version(story, "dm", "checkpoint")
        await cm.create_branch(story, "side", version.version_id, "dm")
        await cm.update_context(story, {"data": {"side": 1}}, user_id="dm", branch="side")
        await cm.merge_branch(story, "side", "main", "dm")
        await cm.rollback_to_version(story, version.version_id, "dm")
    await cm.update_context(story, {"data": {"by": "hand"}}, user_id="dm")
    events = await cm.get_events(story)
    assert [(e.op, e.tool) for e in events] == [
        ("create", "mcp:create_context"),
        ("append_messages", "agent:edit"),
        ("update", "agent:edit"),
        ("create_version", "agent:edit"),
        ("create_branch", "agent:edit"),
        ("update", "agent:edit"),
        ("merge", "agent:edit"),
        ("rollback", "agent:edit"),
        ("update", None),
    ]

    room = await cm.create_context(CollaborativeContext(title="table"), user_id="dm")
    with cm.tool_call("mcp:join_collaborative_session"):
        await cm.join_collaborative_session(room, "ana")
    assert [e.tool for e in await cm.get_events(room)] == [None, "mcp:join_collaborative_session"]


async def test_the_tool_is_this_tasks_and_blocks_nest(manager: ContextManager) -> None:
    cm = manager
    story = await cm.create_context(ConversationContext(title="log"))
    elsewhere = asyncio.Event()

    async def meanwhile() -> None:
        await elsewhere.wait()
        await cm.update_context(story, {"data": {"other": "task"}})

    other = asyncio.create_task(meanwhile())  # started outside the block: not attributed
    with cm.tool_call("outer"):
        with cm.tool_call("inner"):
            await cm.update_context(story, {"data": {"n": 1}})
        elsewhere.set()
        await other
        await cm.update_context(story, {"data": {"n": 2}})
    tools = [e.tool for e in await cm.get_events(story)]
    assert tools == [None, "inner", None, "outer"]


@pytest.mark.parametrize("name", ["", "x" * 201, 7, "nul\x00"])
async def test_a_tool_name_is_checked(manager: ContextManager, name: object) -> None:
    with pytest.raises(ValidationFailed):
        manager.tool_call(name)  # type: ignore[arg-type]
