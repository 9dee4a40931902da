"""The MCP client suite: what every transport of `loremaster mcp` must do, checked with the
official SDK's client (`ClientSession`), and the ways of connecting it."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from mcp import ClientSession, StdioServerParameters, types
from mcp.client.stdio import stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import McpError
from mcp.shared.session import RequestResponder
from pydantic import AnyUrl

from loremaster import ContextEvent, ContextManager

USER = "dm"
CLIENT = types.Implementation(name="suite-client", version="9.1")
TINY_MODEL = {"tiny": {"provider": "anthropic", "context_window": 1200, "max_output": 200}}
"""A model whose window a few dozen messages overflow: the resume prompt must cut."""
TOOL_NAMES = {
    "create_context",
    "get_context",
    "query_contexts",
    "search_contexts",
    "update_context",
    "append_messages",
    "get_messages",
    "create_version",
    "get_version_history",
    "rollback_to_version",
    "create_branch",
    "merge_branch",
    "diff_versions",
    "export_for_provider",
    "join_collaborative_session",
}
WRITING_VERBS = {"create", "update", "append", "rollback", "merge", "join"}
NOTICE_SECONDS = 10.0
"""A change made elsewhere reaches a subscriber well within this (the bridge's streams
read the event log on their own only every 30 s: a notice must come from the bus)."""


def process_env(**settings: str) -> dict[str, str]:
    """This process's environment without loremaster settings, plus `settings`."""
    kept = {k: v for k, v in os.environ.items() if not k.startswith(("CONTEXT_", "LOREMASTER_"))}
    return {**kept, **settings}


# -- notifications ------------------------------------------------------------------------------


@dataclass
class Notices:
    """The notifications a client received, to wait on."""

    updated: list[str] = field(default_factory=list)
    list_changed: int = 0
    _arrived: asyncio.Event = field(default_factory=asyncio.Event)

    async def handle(
        self,
        message: RequestResponder[types.ServerRequest, types.ClientResult]
        | types.ServerNotification
        | Exception,
    ) -> None:
        if isinstance(message, types.ServerNotification):
            root = message.root
            if isinstance(root, types.ResourceUpdatedNotification):
                self.updated.append(str(root.params.uri))
            elif isinstance(root, types.ResourceListChangedNotification):
                self.list_changed += 1
            self._arrived.set()

    async def wait_for(self, check: Any, seconds: float = NOTICE_SECONDS) -> None:
        async with asyncio.timeout(seconds):
            while not check():
                self._arrived.clear()
                await self._arrived.wait()


# -- connecting -----------------------------------------------------------------------------------


def mcp_command(database_url: str, *extra: str) -> list[str]:
    return ["-m", "loremaster", "mcp", "--database-url", database_url, "--user", USER, *extra]


@contextlib.asynccontextmanager
async def stdio_session(
    database_url: str, notices: Notices, *extra: str
) -> AsyncIterator[ClientSession]:
    """A `loremaster mcp` subprocess on stdio, and the SDK's client session to it."""
    parameters = StdioServerParameters(
        command=sys.executable,
        args=mcp_command(database_url, *extra),
        env=process_env(CONTEXT_MODELS=json.dumps(TINY_MODEL)),
    )
    async with (
        stdio_client(parameters) as (read, write),
        ClientSession(read, write, message_handler=notices.handle, client_info=CLIENT) as session,
    ):
        await session.initialize()
        yield session


@contextlib.asynccontextmanager
async def http_server(database_url: str, *extra: str) -> AsyncIterator[tuple[str, Any]]:
    """`loremaster mcp --http --port 0`: its URL (from its first line) and the process."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        *mcp_command(database_url, "--http", "--port", "0", *extra),
        env=process_env(CONTEXT_MODELS=json.dumps(TINY_MODEL)),
        stderr=asyncio.subprocess.PIPE,
    )
    assert process.stderr is not None
    try:
        async with asyncio.timeout(30):
            line = (await process.stderr.readline()).decode()
        assert line.startswith("loremaster MCP on http://127.0.0.1:"), line
        yield line.split()[3], process
    finally:
        if process.returncode is None:
            process.send_signal(2)  # Ctrl-C
            try:
                async with asyncio.timeout(15):
                    await process.wait()
            except TimeoutError:
                process.kill()
                await process.wait()


@contextlib.asynccontextmanager
async def http_session(url: str, notices: Notices) -> AsyncIterator[ClientSession]:
    async with (
        streamable_http_client(url) as (read, write, _),
        ClientSession(read, write, message_handler=notices.handle, client_info=CLIENT) as session,
    ):
        await session.initialize()
        yield session


async def run_loremaster(*args: str, settings: dict[str, str] | None = None) -> str:
    """A `loremaster` command in another OS process (with these `CONTEXT_*` settings); its
    standard output."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "loremaster",
        *args,
        env=process_env(**(settings or {})),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate()
    assert process.returncode == 0, err.decode()
    return out.decode()


# -- calling --------------------------------------------------------------------------------------


async def call(session: ClientSession, tool: str, /, **arguments: Any) -> dict[str, Any]:
    """A tool's structured result; the call must succeed, and its text say the same."""
    result = await session.call_tool(tool, arguments)
    assert not result.isError, result.content
    assert result.structuredContent is not None
    text = result.content[0]
    assert isinstance(text, types.TextContent)
    assert json.loads(text.text) == result.structuredContent
    return result.structuredContent


async def refused(session: ClientSession, tool: str, /, **arguments: Any) -> dict[str, Any]:
    """A tool error: its ``{"code", "message", "details"}``."""
    result = await session.call_tool(tool, arguments)
    assert result.isError, result
    assert result.structuredContent is not None
    error: dict[str, Any] = result.structuredContent["error"]
    text = result.content[0]
    assert isinstance(text, types.TextContent)
    assert text.text.startswith(f"{error['code']}: ")
    return error


# -- the suite ----------------------------------------------------------------------------------


@dataclass
class Campaign:
    """What calling every tool made."""

    conversation_id: str
    room_id: str
    checkpoint_id: str
    expected_events: list[tuple[str, str | None]]


async def list_every_tool(session: ClientSession) -> None:
    tools = (await session.list_tools()).tools
    assert {tool.name for tool in tools} == TOOL_NAMES
    for tool in tools:
        assert tool.description, tool.name
        assert tool.inputSchema["type"] == "object"
        assert tool.inputSchema.get("additionalProperties") is False, tool.name
        assert tool.annotations is not None
        writes = tool.annotations.readOnlyHint is False
        assert writes == (
            tool.name.split("_")[0] in {"create", "update", "append", "rollback", "merge", "join"}
        )
    update = next(tool for tool in tools if tool.name == "update_context")
    assert set(update.inputSchema["required"]) == {"context_id", "changes"}


async def call_every_tool(session: ClientSession) -> Campaign:
    """Each tool once, in a campaign's life; each call that changes something is one
    revision whose event names the tool."""
    created = await call(
        session,
        "create_context",
        title="Curse of the goblin king",
        data={"hp": 10},
        messages=[
            {"role": "system", "content": "You are the game master."},
            {"role": "user", "content": "We enter the cave."},
        ],
    )
    cid = created["context_id"]
    assert (created["revision"], created["message_count"], created["owner_id"]) == (1, 2, USER)
    read = await call(session, "get_context", context_id=cid, include_messages=True)
    assert [m["role"] for m in read["messages"]] == ["system", "user"]

    appended = await call(
        session,
        "append_messages",
        context_id=cid,
        messages=[{"role": "assistant", "content": "A goblin king blocks the way."}],
    )
    assert appended == {"context_id": cid, "revision": 2}
    page = await call(session, "get_messages", context_id=cid, limit=2)
    assert [m["seq"] for m in page["messages"]] == [2, 3]
    assert page["before_seq"] == 2
    fitted = await call(session, "get_messages", context_id=cid, provider="anthropic")
    assert (len(fitted["messages"]), fitted["left_out"]) == (3, 0)

    updated = await call(
        session, "update_context", context_id=cid, changes={"data": {"hp": 7}}, expected_revision=2
    )
    assert (updated["revision"], updated["data"]) == (3, {"hp": 7})
    checkpoint = await call(
        session, "create_version", context_id=cid, message="after the ambush", tags=["ambush"]
    )
    history = await call(session, "get_version_history", context_id=cid)
    numbers = [v["number"] for v in history["versions"]]
    assert numbers == sorted(numbers, reverse=True)
    assert checkpoint["version_id"] in {v["version_id"] for v in history["versions"]}
    before_update = next(v for v in history["versions"] if v["revision"] == 2)

    branch = await call(
        session,
        "create_branch",
        context_id=cid,
        name="what-if",
        from_version_id=checkpoint["version_id"],
    )
    assert branch["name"] == "what-if"
    await call(
        session, "update_context", context_id=cid, changes={"data": {"gold": 5}}, branch="what-if"
    )
    merged = await call(session, "merge_branch", context_id=cid, source="what-if")
    assert merged["merged"] is True
    newest = (await call(session, "get_version_history", context_id=cid, limit=1))["versions"][0]
    diff = await call(
        session, "diff_versions", context_id=cid, a=checkpoint["version_id"], b=newest["version_id"]
    )
    assert {"op": "add", "path": "/data/gold", "value": 5} in diff["patch"]

    # The agent's update and merge undone: back to before the update.
    rolled = await call(
        session, "rollback_to_version", context_id=cid, version_id=before_update["version_id"]
    )
    assert rolled["data"] == {"hp": 10}

    exported = await call(session, "export_for_provider", context_id=cid, provider="openai")
    assert [m["role"] for m in exported["messages"]] == ["system", "user", "assistant"]
    listed = await call(session, "query_contexts", context_type="conversation")
    assert cid in {c["context_id"] for c in listed["items"]}
    found = await call(session, "search_contexts", text="goblin king")
    assert found["hits"][0]["context_id"] == cid

    room = await call(
        session,
        "create_context",
        context_type="collaborative",
        title="The party",
        fields={"shared_state": {"torches": 3}},
    )
    joined = await call(session, "join_collaborative_session", context_id=room["context_id"])
    assert USER in joined["active_participants"]
    return Campaign(
        cid,
        room["context_id"],
        checkpoint["version_id"],
        [
            ("create", "mcp:create_context"),
            ("append_messages", "mcp:append_messages"),
            ("update", "mcp:update_context"),
            ("create_version", "mcp:create_version"),
            ("create_branch", "mcp:create_branch"),
            ("update", "mcp:update_context"),
            ("merge", "mcp:merge_branch"),
            ("rollback", "mcp:rollback_to_version"),
        ],
    )


def check_attributed(events: list[ContextEvent], campaign: Campaign) -> None:
    """One event per call that changed something, each naming its tool."""
    assert [(e.op, e.tool) for e in events] == campaign.expected_events
    assert all(e.user_id == USER for e in events)


async def check_events(manager: ContextManager, campaign: Campaign) -> None:
    check_attributed(await manager.get_events(campaign.conversation_id), campaign)
    room = await manager.get_events(campaign.room_id)
    assert [(e.op, e.tool) for e in room] == [
        ("create", "mcp:create_context"),
        ("join", "mcp:join_collaborative_session"),
    ]


async def bad_arguments_are_tool_errors(session: ClientSession, context_id: str) -> None:
    """Each bad call is a tool error with the library's code; the server goes on."""
    missing = await refused(session, "update_context", changes={"data": {"hp": 1}})
    assert missing["code"] == "validation_failed"
    assert "/context_id" in {issue["path"] for issue in missing["details"]["issues"]}
    typed = await refused(
        session, "update_context", context_id=context_id, changes={}, expected_revision="x"
    )
    assert typed["code"] == "validation_failed"
    extra = await refused(session, "get_context", context_id=context_id, colour="red")
    assert extra["code"] == "validation_failed"
    unknown = await refused(
        session, "get_context", context_id="6f9619ff-8b86-d011-b42d-00c04fc964ff"
    )
    assert unknown["code"] == "not_found"
    not_an_id = await refused(session, "get_context", context_id="../../etc/passwd")
    assert not_an_id["code"] in {"not_found", "validation_failed"}
    role = await refused(
        session,
        "append_messages",
        context_id=context_id,
        messages=[{"role": "wizard", "content": "x"}],
    )
    assert role["code"] == "validation_failed"
    assert (await refused(session, "no_such_tool"))["code"] == "validation_failed"
    current = (await call(session, "get_context", context_id=context_id))["revision"]
    await call(session, "update_context", context_id=context_id, changes={"data": {"hp": 4}})
    stale = await refused(
        session,
        "update_context",
        context_id=context_id,
        changes={"data": {"hp": 99}},
        expected_revision=current,
    )
    assert stale["code"] == "revision_conflict"
    assert stale["details"]["expected_revision"] == current
    assert stale["details"]["paths"] == ["/data/hp"]
    assert (await call(session, "get_context", context_id=context_id))["data"]["hp"] == 4


async def read_resources(session: ClientSession, context_id: str) -> None:
    listed = (await session.list_resources()).resources
    uris = {str(resource.uri) for resource in listed}
    base = f"loremaster://contexts/{context_id}"
    assert {base, f"{base}/messages", f"{base}/history"} <= uris
    templates = (await session.list_resource_templates()).resourceTemplates
    assert {t.name for t in templates} == {"context", "messages", "history"}

    context = json.loads(await _read_text(session, base))
    assert context["context_id"] == context_id
    messages = json.loads(await _read_text(session, f"{base}/messages?limit=2"))["messages"]
    assert len(messages) == 2
    versions = json.loads(await _read_text(session, f"{base}/history?limit=3"))["versions"]
    assert len(versions) == 3
    for uri, code in (
        ("loremaster://contexts/6f9619ff-8b86-d011-b42d-00c04fc964ff", -32002),
        (f"{base}/elsewhere", types.INVALID_PARAMS),
        (f"{base}/messages?limit=zero", types.INVALID_PARAMS),
    ):
        with pytest.raises(McpError) as refusal:
            await session.read_resource(AnyUrl(uri))
        assert refusal.value.error.code == code, uri


async def _read_text(session: ClientSession, uri: str) -> str:
    contents = (await session.read_resource(AnyUrl(uri))).contents
    assert len(contents) == 1
    content = contents[0]
    assert isinstance(content, types.TextResourceContents)
    assert content.mimeType == "application/json"
    return content.text


async def subscribed_changes_arrive(
    session: ClientSession,
    notices: Notices,
    database_url: str,
    context_id: str,
    settings: dict[str, str],
) -> None:
    """A change made through the library in another OS process reaches the subscriber."""
    uri = f"loremaster://contexts/{context_id}"
    await session.subscribe_resource(AnyUrl(uri))
    before = len(notices.updated)
    change = '{"data": {"torch": "lit"}}'
    await run_loremaster(
        "update", context_id, change, "--database-url", database_url, settings=settings
    )
    await notices.wait_for(lambda: uri in notices.updated[before:])
    listed = notices.list_changed
    await run_loremaster(
        "create", "--title", "made elsewhere", "--database-url", database_url, settings=settings
    )
    await notices.wait_for(lambda: notices.list_changed > listed)
    await session.unsubscribe_resource(AnyUrl(uri))


async def prompts_render(session: ClientSession, context_id: str, version: str) -> None:
    prompts = {prompt.name: prompt for prompt in (await session.list_prompts()).prompts}
    assert set(prompts) == {"resume", "what_changed"}
    for number in range(30):
        await call(
            session,
            "append_messages",
            context_id=context_id,
            messages=[
                {"role": "user", "content": f"Turn {number}: we search the next chamber " * 4},
                {"role": "assistant", "content": f"Chamber {number} holds old bones. " * 4},
            ],
        )
    resumed = await session.get_prompt("resume", {"context_id": context_id, "model": "tiny"})
    texts = [m.content.text for m in resumed.messages if isinstance(m.content, types.TextContent)]
    assert "Curse of the goblin king" in texts[0]
    summary = next(text for text in texts if "were left out to fit tiny's window" in text)
    assert summary.startswith("[system] ")
    assert texts[-1].startswith("Chamber 29 holds old bones")
    assert resumed.description is not None
    assert "left out" in resumed.description

    changed = await session.get_prompt(
        "what_changed", {"context_id": context_id, "version": version}
    )
    text = changed.messages[0].content
    assert isinstance(text, types.TextContent)
    assert "via mcp:append_messages" in text.text
    assert "via mcp:rollback_to_version" in text.text
    with pytest.raises(McpError) as refusal:
        await session.get_prompt("resume", {"context_id": "6f9619ff-8b86-d011-b42d-00c04fc964ff"})
    assert refusal.value.error.code == -32002


async def whole_suite(
    session: ClientSession,
    notices: Notices,
    database_url: str,
    checker: ContextManager,
    settings: dict[str, str] | None = None,
) -> Campaign:
    """Everything a transport must do, in one client session; `settings` are those of the
    other processes that make changes (Redis, say)."""
    await list_every_tool(session)
    campaign = await call_every_tool(session)
    await check_events(checker, campaign)
    await bad_arguments_are_tool_errors(session, campaign.conversation_id)
    await read_resources(session, campaign.conversation_id)
    await subscribed_changes_arrive(
        session, notices, database_url, campaign.room_id, settings or {}
    )
    await prompts_render(session, campaign.conversation_id, "1")
    return campaign
