"""The MCP server: the official SDK's low-level `Server`, with loremaster's tools,
resources and prompts, and one `Connection` per client."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from typing import Any

import anyio
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream
from mcp import types
from mcp.server.lowlevel import NotificationOptions, Server
from mcp.server.models import InitializationOptions
from mcp.shared.exceptions import McpError
from mcp.shared.message import SessionMessage

from ..__about__ import __version__
from ..errors import ContextNotFound, Issue, LoremasterError, ValidationFailed
from ._bridge import Bridge, error_body, json_text, parse_arguments
from ._connection import Connection
from ._prompts import PROMPTS
from ._resources import TEMPLATES, list_resources, parse_uri, read_resource
from ._tools import TOOLS

__all__ = ["BridgeServer"]

log = logging.getLogger("loremaster.mcp")

RESOURCE_NOT_FOUND = -32002
"""The MCP specification's error code for a resource that does not exist."""

INSTRUCTIONS = (
    "loremaster keeps contexts — conversations, shared rooms (campaigns), sessions, any JSON "
    "state — durable and versioned. Find one with query_contexts or search_contexts, read it "
    "with get_context, change it with update_context (pass the revision you read as "
    "expected_revision) or append_messages. Every change is a new revision: "
    "get_version_history and rollback_to_version undo any of them."
)

_CONNECTION: ContextVar[Connection] = ContextVar("loremaster_mcp_connection")

Handler = Callable[[Any], Awaitable[types.ServerResult]]


def _text(text: str) -> types.TextContent:
    return types.TextContent(type="text", text=text)


def _protocol_error(exc: Exception) -> McpError:
    """A request other than a tool call that failed, as a JSON-RPC error carrying the
    library's code."""
    body = error_body(exc)
    if isinstance(exc, ContextNotFound):
        code = RESOURCE_NOT_FOUND
    elif isinstance(exc, ValidationFailed):
        code = types.INVALID_PARAMS
    else:
        code = types.INTERNAL_ERROR
    data = {"code": body["code"], "details": body["details"]}
    return McpError(types.ErrorData(code=code, message=body["message"], data=data))


class BridgeServer(Server[Any, Any]):
    """loremaster over MCP. Each connection `run` serves gets a `Connection`: the
    handlers of its requests find it, and it ends when the client leaves."""

    def __init__(self, bridge: Bridge) -> None:
        super().__init__("loremaster", version=__version__, instructions=INSTRUCTIONS)
        self.bridge = bridge
        handlers: dict[type, Handler] = {
            types.ListToolsRequest: self._list_tools,
            types.CallToolRequest: self._call_tool,
            types.ListResourcesRequest: self._list_resources,
            types.ListResourceTemplatesRequest: self._list_templates,
            types.ReadResourceRequest: self._read_resource,
            types.SubscribeRequest: self._subscribe,
            types.UnsubscribeRequest: self._unsubscribe,
            types.ListPromptsRequest: self._list_prompts,
            types.GetPromptRequest: self._get_prompt,
        }
        for request, handler in handlers.items():
            self.request_handlers[request] = self._with_connection(handler)

    def get_capabilities(
        self,
        notification_options: NotificationOptions,
        experimental_capabilities: dict[str, dict[str, Any]],
    ) -> types.ServerCapabilities:
        """Resources may be subscribed to, and their list changes."""
        capabilities = super().get_capabilities(notification_options, experimental_capabilities)
        resources = types.ResourcesCapability(subscribe=True, listChanged=True)
        return capabilities.model_copy(update={"resources": resources})

    async def run(
        self,
        read_stream: MemoryObjectReceiveStream[SessionMessage | Exception],
        write_stream: MemoryObjectSendStream[SessionMessage],
        initialization_options: InitializationOptions,
        raise_exceptions: bool = False,
        stateless: bool = False,
    ) -> None:
        """Serve one connection: its messages pass through `_relay`, which opens the
        `Connection` once the client has said who it is; it closes when the client goes."""
        async with anyio.create_task_group() as tasks:
            connection = Connection(self.bridge, tasks)
            token = _CONNECTION.set(connection)
            relay_in, relay_out = anyio.create_memory_object_stream[SessionMessage | Exception](0)
            tasks.start_soon(self._relay, read_stream, relay_in, connection)
            try:
                await super().run(
                    relay_out, write_stream, initialization_options, raise_exceptions, stateless
                )
            finally:
                _CONNECTION.reset(token)
                tasks.cancel_scope.cancel()
                with anyio.CancelScope(shield=True):
                    await connection.close()

    @staticmethod
    async def _relay(
        source: MemoryObjectReceiveStream[SessionMessage | Exception],
        target: MemoryObjectSendStream[SessionMessage | Exception],
        connection: Connection,
    ) -> None:
        client: types.Implementation | None = None
        async with source, target:
            async for message in source:
                if isinstance(message, SessionMessage):
                    root = message.message.root
                    method = getattr(root, "method", None)
                    if method == "initialize":
                        client = _client_of(getattr(root, "params", None))
                    elif method == "notifications/initialized":
                        await connection.opened(client)
                await target.send(message)

    def _with_connection(self, handler: Handler) -> Handler:
        async def handle(request: Any) -> types.ServerResult:
            _CONNECTION.get().session = self.request_context.session
            return await handler(request)

        return handle

    # -- tools ---------------------------------------------------------------------------------

    async def _list_tools(self, request: types.ListToolsRequest) -> types.ServerResult:
        tools = [
            types.Tool(
                name=tool.name,
                description=tool.description,
                inputSchema=tool.input_schema,
                annotations=types.ToolAnnotations(
                    readOnlyHint=not tool.writes,
                    destructiveHint=False,
                    openWorldHint=False,
                ),
            )
            for tool in TOOLS.values()
        ]
        return types.ServerResult(types.ListToolsResult(tools=tools))

    async def _call_tool(self, request: types.CallToolRequest) -> types.ServerResult:
        """Every call gets an answer: a result, or a tool error carrying the code."""
        name = request.params.name
        try:
            result = await self._run_tool(name, request.params.arguments or {})
        except Exception as exc:
            body = error_body(exc)
            outcome = types.CallToolResult(
                content=[_text(f"{body['code']}: {body['message']}")],
                structuredContent={"error": body},
                isError=True,
            )
        else:
            outcome = types.CallToolResult(
                content=[_text(json_text(result))], structuredContent=result
            )
        await _CONNECTION.get().called(name)
        return types.ServerResult(outcome)

    async def _run_tool(self, name: str, arguments: dict[str, Any]) -> dict[str, Any]:
        tool = TOOLS.get(name)
        if tool is None:
            raise ValidationFailed(f"no tool named {name!r}", [Issue("/name", name)])
        args = parse_arguments(tool.arguments, arguments, name)
        if not tool.writes:
            return await tool.run(self.bridge, args)
        with self.bridge.manager.tool_call(f"mcp:{name}"):
            return await tool.run(self.bridge, args)

    # -- resources -----------------------------------------------------------------------------

    async def _list_resources(self, request: types.ListResourcesRequest) -> types.ServerResult:
        cursor = request.params.cursor if request.params else None
        try:
            page = await list_resources(self.bridge, cursor)
        except LoremasterError as exc:
            raise _protocol_error(exc) from exc
        return types.ServerResult(page)

    async def _list_templates(
        self, request: types.ListResourceTemplatesRequest
    ) -> types.ServerResult:
        return types.ServerResult(types.ListResourceTemplatesResult(resourceTemplates=TEMPLATES))

    async def _read_resource(self, request: types.ReadResourceRequest) -> types.ServerResult:
        uri = request.params.uri
        try:
            text = await read_resource(self.bridge, parse_uri(uri))
        except LoremasterError as exc:
            raise _protocol_error(exc) from exc
        contents = types.TextResourceContents(uri=uri, mimeType="application/json", text=text)
        return types.ServerResult(types.ReadResourceResult(contents=[contents]))

    async def _subscribe(self, request: types.SubscribeRequest) -> types.ServerResult:
        """Follow the context the URI names (the user must be able to read it)."""
        try:
            address = parse_uri(request.params.uri)
            await self.bridge.manager.get_context(
                address.context_id, self.bridge.user_id, include_messages=False
            )
        except LoremasterError as exc:
            raise _protocol_error(exc) from exc
        _CONNECTION.get().subscribe(address.context_id, str(request.params.uri))
        return types.ServerResult(types.EmptyResult())

    async def _unsubscribe(self, request: types.UnsubscribeRequest) -> types.ServerResult:
        try:
            address = parse_uri(request.params.uri)
        except LoremasterError as exc:
            raise _protocol_error(exc) from exc
        _CONNECTION.get().unsubscribe(address.context_id, str(request.params.uri))
        return types.ServerResult(types.EmptyResult())

    # -- prompts -------------------------------------------------------------------------------

    async def _list_prompts(self, request: types.ListPromptsRequest) -> types.ServerResult:
        prompts = [prompt.listed for prompt in PROMPTS.values()]
        return types.ServerResult(types.ListPromptsResult(prompts=prompts))

    async def _get_prompt(self, request: types.GetPromptRequest) -> types.ServerResult:
        prompt = PROMPTS.get(request.params.name)
        try:
            if prompt is None:
                name = request.params.name
                raise ValidationFailed(f"no prompt named {name!r}", [Issue("/name", name)])
            return types.ServerResult(
                await prompt.render(self.bridge, request.params.arguments or {})
            )
        except LoremasterError as exc:
            raise _protocol_error(exc) from exc


def _client_of(params: Any) -> types.Implementation | None:
    """Who the client says it is in its initialize request (None if it does not say)."""
    info = params.get("clientInfo") if isinstance(params, dict) else None
    try:
        return types.Implementation.model_validate(info)
    except ValueError:
        return None
