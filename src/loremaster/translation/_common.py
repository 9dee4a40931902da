"""Small pieces every provider format shares: extras, data URLs, JSON arguments, errors."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any
from uuid import uuid4

import orjson

from ..errors import Issue, ValidationFailed
from ..models import Part, ProviderType, utc_now

__all__ = [
    "ORIGIN_KEY",
    "TurnReader",
    "arguments_json",
    "data_url",
    "extras",
    "identify",
    "json_object",
    "parse_arguments",
    "split_data_url",
    "split_results",
    "unsupported",
    "with_extras",
]

ORIGIN_KEY = "model"
"""The key of a provider's part data naming the model that made the part: recorded by
`from_provider(..., model=...)`, used to send signatures back only to that model. Not a
payload field: adapting a part to its provider takes it out."""

TurnReader = Callable[[Mapping[str, Any], str], list[dict[str, Any]]]
"""Reads one message of a provider's list (at its JSON pointer) into the neutral messages
it holds; one reader reads one list, in order (Gemini pairs responses with earlier calls)."""

_DATA_URL = re.compile(
    r"data:(?P<type>[\w.+-]+/[\w.+-]+)?(?:;[\w-]+=[^;,]*)*;base64,(?P<data>.*)", re.S
)


def extras(part: Part, provider: ProviderType) -> dict[str, Any]:
    """The provider's own fields of this part, to send as they came (not to be changed:
    it is the part's own dict)."""
    return part.provider_data.get(provider.value) or {}


def with_extras(
    provider: ProviderType,
    source: Mapping[str, Any],
    consumed: frozenset[str],
    fields: dict[str, Any],
) -> dict[str, Any]:
    """A neutral part's fields, with the keys of `source` (a payload object) that were not
    `consumed` into them kept as the provider's part data."""
    rest = {key: value for key, value in source.items() if key not in consumed}
    if rest:
        fields["provider_data"] = {provider.value: rest}
    return fields


def identify(messages: list[dict[str, Any]]) -> None:
    """Ids and times for messages read at once: one random prefix and one clock reading
    for the lot (a fresh uuid and clock reading per message cost more than the rest)."""
    prefix, now = uuid4().hex[:24], utc_now()
    for number, message in enumerate(messages):
        message["id"] = f"{prefix}{number:08x}"
        message["created_at"] = now


def split_results(parts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A user turn as neutral messages: each tool result a tool message of its own, the
    parts between them user messages."""
    messages: list[dict[str, Any]] = []
    for part in parts:
        if part["kind"] == "tool_result":
            messages.append({"role": "tool", "parts": [part]})
        elif messages and messages[-1]["role"] == "user":
            messages[-1]["parts"].append(part)
        else:
            messages.append({"role": "user", "parts": [part]})
    return messages


def split_data_url(url: str) -> tuple[str, str] | None:
    """(media type, base64 data) of a ``data:...;base64,`` URL, else None."""
    if not url.startswith("data:"):
        return None
    found = _DATA_URL.fullmatch(url)
    if found is None or not found["type"]:
        return None
    return found["type"], found["data"]


def data_url(media_type: str, data: str) -> str:
    return f"data:{media_type};base64,{data}"


def arguments_json(arguments: Mapping[str, Any]) -> str:
    """Tool call arguments as the compact JSON text OpenAI models write."""
    return orjson.dumps(arguments).decode()


def parse_arguments(raw: str) -> dict[str, Any]:
    """The arguments a JSON text holds: {} when empty, invalid or not an object."""
    try:
        parsed = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return {}
    return parsed if isinstance(parsed, dict) else {}


def json_object(text: str) -> dict[str, Any] | None:
    """The object a text holds when it is an object's exact compact JSON, else None."""
    if not text.startswith("{"):
        return None
    try:
        parsed = orjson.loads(text)
    except orjson.JSONDecodeError:
        return None
    if isinstance(parsed, dict) and orjson.dumps(parsed).decode() == text:
        return parsed
    return None


def unsupported(path: str, what: str) -> ValidationFailed:
    return ValidationFailed(
        "the payload holds something loremaster cannot translate",
        [Issue(path, what, "payload.unsupported")],
    )
