"""The Gemini generateContent body fragment: ``{"system_instruction", "contents"}``.

Written with the REST API's field names as the proto declares them (snake_case); read in
either spelling, since the API's own responses use camelCase. `encode` renders messages
already adapted to Gemini (`_adapt`) one to one; `decode` reads a fragment back, keeping
every part field the neutral model has no place for (``thought_signature`` above all) in
the part's ``provider_data["google"]``, in snake_case.

Function calls without an id get one from their position (``call_<content>_<part>``) and
a response without one answers the oldest open call of its name. A function response's
``response`` must be an object: a result that is the compact JSON of an object is sent as
that object, any other text as ``{"output": text}`` (``{"error": text}`` for an error),
several texts as a list there; reading undoes exactly that.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping, Sequence
from typing import Any, assert_never

import orjson

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
from ._common import TurnReader, extras, json_object, split_results, unsupported, with_extras

__all__ = ["DATA_FIELDS", "camel", "decode", "encode", "field", "snake", "turns"]

_PROVIDER = ProviderType.GOOGLE
DATA_FIELDS = ("text", "inline_data", "file_data", "function_call", "function_response")


def camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(word.title() for word in rest)


@functools.cache
def snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def field(source: Mapping[str, Any], name: str) -> Any:
    """A field of a payload object in either spelling (``mime_type`` or ``mimeType``)."""
    value = source.get(name)
    return source.get(camel(name)) if value is None else value


def encode(messages: Sequence[Message]) -> dict[str, Any]:
    payload: dict[str, Any] = {}
    names: dict[str, str] = {}
    if messages and messages[0].role is MessageRole.SYSTEM:
        payload["system_instruction"] = {"parts": [_part(p, names) for p in messages[0].parts]}
        messages = messages[1:]
    contents: list[dict[str, Any]] = []
    responses: list[Any] | None = None
    for message in messages:
        if message.role is MessageRole.TOOL:
            if responses is None:
                responses = []
                contents.append({"role": "user", "parts": responses})
            responses.extend(_part(part, names) for part in message.parts)
            continue
        parts = [_part(part, names) for part in message.parts]
        if responses is not None and message.role is MessageRole.USER:
            responses.extend(parts)  # the same user turn; read back as its own message
            continue
        responses = None
        role = "model" if message.role is MessageRole.ASSISTANT else "user"
        contents.append({"role": role, "parts": parts})
    payload["contents"] = contents
    return payload


def _media(part: ImagePart | DocumentPart) -> dict[str, Any]:
    if part.url is not None:
        return {"file_data": {"mime_type": part.media_type, "file_uri": part.url}}
    return {"inline_data": {"mime_type": part.media_type, "data": part.data}}


def _part(part: Part, names: dict[str, str]) -> dict[str, Any]:
    """One part; `names` maps the call ids seen so far to their function names."""
    own = extras(part, _PROVIDER)
    match part:
        case TextPart():
            return {"text": part.text, **own}
        case ImagePart() | DocumentPart():
            return {**_media(part), **own}
        case ToolCallPart():
            names[part.id] = part.name
            call = {"id": part.id, "name": part.name, "args": part.arguments}
            return {"function_call": call, **own}
        case ToolResultPart():
            return {"function_response": _response(part, names[part.call_id]), **own}
        case ThinkingPart():
            return {"text": part.text, "thought": True, **own}
        case _:
            assert_never(part)


def _response(part: ToolResultPart, name: str) -> dict[str, Any]:
    texts = [item.text for item in part.content if isinstance(item, TextPart)]
    media = [_media(item) for item in part.content if isinstance(item, ImagePart)]
    response: dict[str, Any] | None = None
    if len(texts) == 1 and not part.is_error:
        response = json_object(texts[0])
    if response is None or _unwrapped(response) is not None:
        value: str | list[str] = texts[0] if len(texts) == 1 else texts or ""
        response = {"error" if part.is_error else "output": value}
    out = {"id": part.call_id, "name": name, "response": response}
    return {**out, "parts": media} if media else out


def _unwrapped(response: Mapping[str, Any]) -> tuple[list[str], bool] | None:
    """The texts and error flag of a response in the wrapped form, else None."""
    if len(response) != 1:
        return None
    ((key, value),) = response.items()
    if key not in ("output", "error"):
        return None
    if isinstance(value, str):
        return ([value] if value else []), key == "error"
    if isinstance(value, list) and len(value) > 1 and all(isinstance(v, str) for v in value):
        return value, key == "error"
    return None


def decode(payload: Mapping[str, Any]) -> list[dict[str, Any]]:
    reader = _Reader()
    messages: list[dict[str, Any]] = []
    system = field(payload, "system_instruction")
    if system is not None:
        parts = [
            reader.part(p, f"/system_instruction/parts/{i}") for i, p in enumerate(system["parts"])
        ]
        messages.append({"role": "system", "parts": parts})
    for index, content in enumerate(payload["contents"]):
        messages.extend(reader.content(content, f"/contents/{index}"))
    return messages


def turns() -> TurnReader:
    """A reader of one list's contents, pairing responses without an id with the calls
    before them in the same list."""
    return _Reader().content


class _Reader:
    """Reads parts in order, pairing function responses without an id to their calls."""

    def __init__(self) -> None:
        self.open_calls: dict[str, list[str]] = {}

    def content(self, content: Mapping[str, Any], path: str) -> list[dict[str, Any]]:
        """A model turn is one assistant message; a user turn a tool message per response
        and user messages for the parts between them."""
        parts = [self.part(part, f"{path}/parts/{i}") for i, part in enumerate(content["parts"])]
        if content.get("role") == "model":
            return [{"role": "assistant", "parts": parts}]
        return split_results(parts)

    def part(self, raw: Mapping[str, Any], path: str) -> dict[str, Any]:
        part = {snake(key): value for key, value in raw.items()}
        present = [name for name in DATA_FIELDS if part.get(name) is not None]
        if len(present) != 1:
            raise unsupported(path, f"a part with {', '.join(part) or 'no fields'}")
        (name,) = present
        consumed = frozenset({name})
        value = part[name]
        match name:
            case "text" if part.get("thought") is True:
                consumed, fields = (
                    frozenset({"text", "thought"}),
                    {"kind": "thinking", "text": value},
                )
            case "text":
                fields = {"kind": "text", "text": value}
            case "inline_data" | "file_data":
                fields = _read_media(value)
            case "function_call":
                fields = self.call(value, path)
            case _:
                fields = self.response(value, path)
        return with_extras(_PROVIDER, part, consumed, fields)

    def call(self, call: Mapping[str, Any], path: str) -> dict[str, Any]:
        call_id = call.get("id") or _synthesized_id(path)
        self.open_calls.setdefault(call["name"], []).append(call_id)
        return {
            "kind": "tool_call",
            "id": call_id,
            "name": call["name"],
            "arguments": call.get("args") or {},
        }

    def response(self, response: Mapping[str, Any], path: str) -> dict[str, Any]:
        waiting = self.open_calls.get(response["name"], [])
        call_id = response.get("id")
        if call_id is None:
            call_id = waiting.pop(0) if waiting else _synthesized_id(path)
        elif call_id in waiting:
            waiting.remove(call_id)
        body = response.get("response") or {}
        unwrapped = _unwrapped(body)
        texts, error = unwrapped if unwrapped else ([orjson.dumps(body).decode()], False)
        media = [
            _read_media(field(item, "inline_data") or field(item, "file_data"))
            for item in response.get("parts") or []
        ]
        content = [{"kind": "text", "text": text} for text in texts] + media
        return {"kind": "tool_result", "call_id": call_id, "content": content, "is_error": error}


def _synthesized_id(path: str) -> str:
    """``call_3_1`` for the part at /contents/3/parts/1: the same on every read."""
    return "call_" + "_".join(re.findall(r"\d+", path))


def _read_media(source: Mapping[str, Any]) -> dict[str, Any]:
    media_type = field(source, "mime_type")
    kind = "image" if media_type and media_type.startswith("image/") else "document"
    uri = field(source, "file_uri")
    if uri is not None:
        return {"kind": kind, "url": uri, "media_type": media_type}
    return {"kind": kind, "data": source["data"], "media_type": media_type}
