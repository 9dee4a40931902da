"""The Anthropic Messages API body fragment: ``{"system", "messages"}``.

`encode` renders messages already adapted to Anthropic (`_adapt`) one to one; `decode`
reads a fragment back, keeping every field the neutral model has no place for in the
part's ``provider_data["anthropic"]``.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Mapping, Sequence
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
from ._common import TurnReader, extras, split_results, unsupported, with_extras

__all__ = ["decode", "encode", "turns"]

_PROVIDER = ProviderType.ANTHROPIC
_ROLES = {
    MessageRole.USER: "user",
    MessageRole.ASSISTANT: "assistant",
    MessageRole.SYSTEM: "system",
}


def encode(messages: Sequence[Message]) -> dict[str, Any]:
    payload: dict[str, Any] = {}
    if messages and messages[0].role is MessageRole.SYSTEM:
        payload["system"] = _content(messages[0].parts)
        messages = messages[1:]
    turns: list[dict[str, Any]] = []
    results: list[Any] | None = None
    for message in messages:
        if message.role is MessageRole.TOOL:
            if results is None:
                results = []
                turns.append({"role": "user", "content": results})
            results.extend(_block(part) for part in message.parts)
            continue
        results = None
        turns.append({"role": _ROLES[message.role], "content": _content(message.parts)})
    payload["messages"] = turns
    return payload


def _content(parts: Sequence[Part]) -> str | list[dict[str, Any]]:
    """A lone plain text part is a string, as the API's own shorthand."""
    if len(parts) == 1 and isinstance(parts[0], TextPart) and not extras(parts[0], _PROVIDER):
        return parts[0].text
    return [_block(part) for part in parts]


def _source(part: ImagePart | DocumentPart) -> dict[str, Any]:
    if part.url is not None:
        return {"type": "url", "url": part.url}
    if isinstance(part, DocumentPart) and part.media_type == "text/plain":
        return {"type": "text", "media_type": "text/plain", "data": _text_of(part)}
    return {"type": "base64", "media_type": part.media_type, "data": part.data}


def _text_of(part: DocumentPart) -> str:
    return base64.b64decode(part.data or "", validate=True).decode()


def _block(part: Part) -> dict[str, Any]:
    own = extras(part, _PROVIDER)
    match part:
        case TextPart():
            return {"type": "text", "text": part.text, **own}
        case ImagePart():
            return {"type": "image", "source": _source(part), **own}
        case DocumentPart():
            title = {} if part.title is None else {"title": part.title}
            return {"type": "document", "source": _source(part), **title, **own}
        case ToolCallPart():
            return {
                "type": "tool_use",
                "id": part.id,
                "name": part.name,
                "input": part.arguments,
                **own,
            }
        case ToolResultPart():
            block: dict[str, Any] = {"type": "tool_result", "tool_use_id": part.call_id}
            if part.content:
                block["content"] = _content(part.content)
            if part.is_error:
                block["is_error"] = True
            return {**block, **own}
        case ThinkingPart():
            if part.redacted:
                return {"type": "redacted_thinking", **own}
            return {"type": "thinking", "thinking": part.text, **own}
        case _:
            assert_never(part)


def decode(payload: Mapping[str, Any]) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = []
    if payload.get("system") is not None:
        messages.append({"role": "system", "parts": _parts(payload["system"], "/system")})
    for index, turn in enumerate(payload["messages"]):
        messages.extend(_turn(turn, f"/messages/{index}"))
    return messages


def turns() -> TurnReader:
    """A reader of one list's turns: a user turn is a tool message per result and user
    messages for the parts between them."""
    return _turn


def _turn(turn: Mapping[str, Any], path: str) -> list[dict[str, Any]]:
    parts = _parts(turn["content"], f"{path}/content")
    role = turn["role"]
    if role == "user":
        return split_results(parts)
    if role in ("assistant", "system"):
        return [{"role": role, "parts": parts}]
    raise unsupported(f"{path}/role", f"role {role!r}")


def _parts(content: str | list[Mapping[str, Any]], path: str) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"kind": "text", "text": content}]
    return [_part(block, f"{path}/{index}") for index, block in enumerate(content)]


def _part(block: Mapping[str, Any], path: str) -> dict[str, Any]:
    reader = _READERS.get(block["type"])
    if reader is None:
        raise unsupported(f"{path}/type", f"{block['type']!r} blocks")
    consumed, fields = reader(block, path)
    return with_extras(_PROVIDER, block, consumed, fields)


_Read = tuple[frozenset[str], dict[str, Any]]


def _text(block: Mapping[str, Any], path: str) -> _Read:
    return frozenset({"type", "text"}), {"kind": "text", "text": block["text"]}


def _media(block: Mapping[str, Any], path: str) -> dict[str, Any]:
    source = block["source"]
    match source["type"]:
        case "base64":
            return {"data": source["data"], "media_type": source["media_type"]}
        case "url":
            return {"url": source["url"]}
        case "text":
            data = base64.b64encode(source["data"].encode()).decode()
            return {"data": data, "media_type": "text/plain"}
        case other:
            raise unsupported(f"{path}/source/type", f"{other!r} sources")


def _image(block: Mapping[str, Any], path: str) -> _Read:
    return frozenset({"type", "source"}), {"kind": "image", **_media(block, path)}


def _document(block: Mapping[str, Any], path: str) -> _Read:
    fields = {"kind": "document", **_media(block, path)}
    if block.get("title") is not None:
        fields["title"] = block["title"]
    return frozenset({"type", "source", "title"}), fields


def _tool_use(block: Mapping[str, Any], path: str) -> _Read:
    fields = {
        "kind": "tool_call",
        "id": block["id"],
        "name": block["name"],
        "arguments": block["input"],
    }
    return frozenset({"type", "id", "name", "input"}), fields


def _tool_result(block: Mapping[str, Any], path: str) -> _Read:
    content = block.get("content") or []
    fields = {
        "kind": "tool_result",
        "call_id": block["tool_use_id"],
        "content": _parts(content, f"{path}/content"),
        "is_error": block.get("is_error") or False,
    }
    return frozenset({"type", "tool_use_id", "content", "is_error"}), fields


def _thinking(block: Mapping[str, Any], path: str) -> _Read:
    return frozenset({"type", "thinking"}), {"kind": "thinking", "text": block["thinking"]}


def _redacted(block: Mapping[str, Any], path: str) -> _Read:
    return frozenset({"type"}), {"kind": "thinking", "redacted": True}


_READERS: dict[str, Callable[[Mapping[str, Any], str], _Read]] = {
    "text": _text,
    "image": _image,
    "document": _document,
    "tool_use": _tool_use,
    "tool_result": _tool_result,
    "thinking": _thinking,
    "redacted_thinking": _redacted,
}
