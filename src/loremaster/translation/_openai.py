"""The OpenAI Chat Completions body fragment: ``{"messages"}``.

`encode` renders messages already adapted to OpenAI (`_adapt`) one to one; `decode` reads
a fragment back. Tool call arguments travel as JSON text: a text that is not the compact
JSON of the arguments it holds (other spacing, invalid JSON, empty) is kept in the part's
``provider_data["openai"]["arguments"]`` and sent back as it came.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, assert_never

from ..models import (
    DocumentPart,
    ImagePart,
    Message,
    MessageRole,
    Part,
    ProviderType,
    TextPart,
    ThinkingPart,
    ToolCallPart,
    ToolResultPart,
)
from ._common import (
    TurnReader,
    arguments_json,
    data_url,
    extras,
    parse_arguments,
    split_data_url,
    unsupported,
    with_extras,
)

__all__ = ["decode", "encode", "turns"]

_PROVIDER = ProviderType.OPENAI
_NAMED = {"system", "user", "assistant"}


def encode(messages: Sequence[Message]) -> dict[str, Any]:
    return {"messages": [_message(message) for message in messages]}


def _message(message: Message) -> dict[str, Any]:
    match message.role, message.parts:
        case MessageRole.TOOL, [ToolResultPart() as result]:
            return {
                "role": "tool",
                "tool_call_id": result.call_id,
                "content": _content(result.content) if result.content else "",
                **extras(result, _PROVIDER),
            }
    out: dict[str, Any] = {"role": message.role.value}
    calls = [part for part in message.parts if isinstance(part, ToolCallPart)]
    rest = [part for part in message.parts if not isinstance(part, ToolCallPart)]
    if rest or message.role is not MessageRole.ASSISTANT:
        out["content"] = _content(rest)
    if calls:
        out["tool_calls"] = [_tool_call(call) for call in calls]
    if message.name is not None:
        out["name"] = message.name
    return out


def _tool_call(call: ToolCallPart) -> dict[str, Any]:
    own = extras(call, _PROVIDER)
    raw = own.get("arguments")
    if not (isinstance(raw, str) and parse_arguments(raw) == call.arguments):
        raw = arguments_json(call.arguments)
    rest = {key: value for key, value in own.items() if key != "arguments"}
    return {
        "id": call.id,
        "type": "function",
        "function": {"name": call.name, "arguments": raw},
        **rest,
    }


def _content(parts: Sequence[Part]) -> str | list[dict[str, Any]]:
    """A lone plain text part is a string, as the API's own shorthand."""
    if len(parts) == 1 and isinstance(parts[0], TextPart) and not extras(parts[0], _PROVIDER):
        return parts[0].text
    return [_part(part) for part in parts]


def _url(part: ImagePart | DocumentPart) -> str:
    return part.url if part.url is not None else data_url(part.media_type or "", part.data or "")


def _part(part: Part) -> dict[str, Any]:
    own = extras(part, _PROVIDER)
    match part:
        case TextPart():
            return {"type": "text", "text": part.text, **own}
        case ImagePart():
            image = {"url": _url(part)}
            if part.detail is not None:
                image["detail"] = part.detail
            return {"type": "image_url", "image_url": image, **own}
        case DocumentPart():
            file = {"file_data": _url(part)}
            if part.title is not None:
                file["filename"] = part.title
            return {"type": "file", "file": file, **own}
        case ToolCallPart() | ToolResultPart() | ThinkingPart():
            raise AssertionError(f"{part.kind} parts are not message content (see _adapt)")
        case _:
            assert_never(part)


def decode(payload: Mapping[str, Any]) -> list[dict[str, Any]]:
    return [
        _read(message, f"/messages/{index}") for index, message in enumerate(payload["messages"])
    ]


def turns() -> TurnReader:
    """A reader of one list's messages: each is one neutral message."""
    return lambda message, path: [_read(message, path)]


def _read(message: Mapping[str, Any], path: str) -> dict[str, Any]:
    role = message["role"]
    if role == "tool":
        content = message["content"]
        result = {
            "kind": "tool_result",
            "call_id": message["tool_call_id"],
            "content": _parts(content, f"{path}/content") if content else [],
        }
        consumed = frozenset({"role", "tool_call_id", "content"})
        return {"role": "tool", "parts": [with_extras(_PROVIDER, message, consumed, result)]}
    if role not in (*_NAMED, "developer"):
        raise unsupported(f"{path}/role", f"role {role!r}")
    for field in ("audio", "function_call"):
        if message.get(field) is not None:
            raise unsupported(f"{path}/{field}", f"assistant {field}")
    content = message.get("content") if role == "assistant" else message["content"]
    parts = [] if content is None else _parts(content, f"{path}/content")
    if message.get("refusal"):
        parts.append({"kind": "text", "text": message["refusal"]})
    calls = message.get("tool_calls") or []
    parts.extend(_read_call(call, f"{path}/tool_calls/{index}") for index, call in enumerate(calls))
    out: dict[str, Any] = {"role": "system" if role == "developer" else role, "parts": parts}
    if message.get("name") is not None:
        out["name"] = message["name"]
    return out


def _read_call(call: Mapping[str, Any], path: str) -> dict[str, Any]:
    if call.get("type", "function") != "function":
        raise unsupported(f"{path}/type", f"{call['type']!r} tool calls")
    function = call["function"]
    raw = function["arguments"]
    arguments = parse_arguments(raw)
    fields = {
        "kind": "tool_call",
        "id": call["id"],
        "name": function["name"],
        "arguments": arguments,
    }
    consumed = frozenset({"id", "type", "function"})
    part = with_extras(_PROVIDER, call, consumed, fields)
    if arguments_json(arguments) != raw:
        part.setdefault("provider_data", {}).setdefault(_PROVIDER.value, {})["arguments"] = raw
    return part


def _parts(content: str | list[Mapping[str, Any]], path: str) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"kind": "text", "text": content}]
    return [_read_part(part, f"{path}/{index}") for index, part in enumerate(content)]


def _read_part(part: Mapping[str, Any], path: str) -> dict[str, Any]:
    match part["type"]:
        case "text":
            return with_extras(
                _PROVIDER, part, frozenset({"type", "text"}), {"kind": "text", "text": part["text"]}
            )
        case "refusal":
            return {"kind": "text", "text": part["refusal"]}
        case "image_url":
            image = part["image_url"]
            fields = {"kind": "image", **_source(image["url"])}
            if image.get("detail") is not None:
                fields["detail"] = image["detail"]
            return with_extras(_PROVIDER, part, frozenset({"type", "image_url"}), fields)
        case "file" if "file_data" in part["file"]:
            file = part["file"]
            fields = {"kind": "document", **_source(file["file_data"])}
            if file.get("filename") is not None:
                fields["title"] = file["filename"]
            return with_extras(_PROVIDER, part, frozenset({"type", "file"}), fields)
        case other:
            raise unsupported(f"{path}/type", f"{other!r} content parts (files only inline)")


def _source(url: str) -> dict[str, str]:
    inline = split_data_url(url)
    if inline is None:
        return {"url": url}
    return {"media_type": inline[0], "data": inline[1]}
