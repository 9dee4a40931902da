"""Would the provider's API take this body fragment? Shapes, then the order rules.

The shapes are JSON Schemas of the request fields loremaster writes and reads (the tests
check them against the providers' own SDK types); the rules are what the APIs check
beyond shape: who speaks first, and that every tool call is answered in the next turn.
No SDK is needed at run time.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import jsonschema

from ..errors import Issue, ValidationFailed
from ..models import ProviderType
from ._google import DATA_FIELDS, camel, field

__all__ = ["shape_issues", "validate_payload"]

_STRING: dict[str, Any] = {"type": "string"}
_OBJECT: dict[str, Any] = {"type": "object"}


def _object(required: dict[str, Any], optional: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {**required, **(optional or {})},
        "required": list(required),
        "additionalProperties": False,
    }


def _tagged(key: str, variants: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """An object whose `key` says which of `variants` it is."""
    return {
        "type": "object",
        "required": [key],
        "properties": {key: {"enum": list(variants)}},
        "allOf": [
            {"if": {"properties": {key: {"const": tag}}, "required": [key]}, "then": schema}
            for tag, schema in variants.items()
        ],
    }


def _const(value: str) -> dict[str, Any]:
    return {"const": value}


def _anthropic_schema() -> dict[str, Any]:
    cache = {
        **_object({"type": _const("ephemeral")}, {"ttl": {"enum": ["5m", "1h"]}}),
        "type": ["object", "null"],
    }
    tool_id = {"type": "string", "pattern": "^[a-zA-Z0-9_-]+$"}
    text = _object(
        {"type": _const("text"), "text": _STRING},
        {"cache_control": cache, "citations": {"type": ["array", "null"]}},
    )
    url = _object({"type": _const("url"), "url": _STRING})
    image_types = ["image/jpeg", "image/png", "image/gif", "image/webp"]
    image_source = _tagged(
        "type",
        {
            "base64": _object(
                {"type": _const("base64"), "media_type": {"enum": image_types}, "data": _STRING}
            ),
            "url": url,
        },
    )
    image = _object({"type": _const("image"), "source": image_source}, {"cache_control": cache})
    document_source = _tagged(
        "type",
        {
            "base64": _object(
                {"type": _const("base64"), "media_type": _const("application/pdf"), "data": _STRING}
            ),
            "text": _object(
                {"type": _const("text"), "media_type": _const("text/plain"), "data": _STRING}
            ),
            "url": url,
        },
    )
    document = _object(
        {"type": _const("document"), "source": document_source},
        {
            "cache_control": cache,
            "title": {"type": ["string", "null"]},
            "context": {"type": ["string", "null"]},
            "citations": {"type": ["object", "null"]},
        },
    )
    results = _tagged("type", {"text": text, "image": image, "document": document})
    block = _tagged(
        "type",
        {
            "text": text,
            "image": image,
            "document": document,
            "tool_use": _object(
                {
                    "type": _const("tool_use"),
                    "id": tool_id,
                    "name": {"type": "string", "minLength": 1},
                    "input": _OBJECT,
                },
                {"cache_control": cache},
            ),
            "tool_result": _object(
                {"type": _const("tool_result"), "tool_use_id": tool_id},
                {
                    "content": {"type": ["string", "array"], "items": results},
                    "is_error": {"type": "boolean"},
                    "cache_control": cache,
                },
            ),
            "thinking": _object(
                {"type": _const("thinking"), "thinking": _STRING, "signature": _STRING}
            ),
            "redacted_thinking": _object({"type": _const("redacted_thinking"), "data": _STRING}),
        },
    )
    message = _object(
        {
            "role": {"enum": ["user", "assistant", "system"]},
            "content": {"type": ["string", "array"], "items": block},
        }
    )
    return _object(
        {"messages": {"type": "array", "minItems": 1, "items": message}},
        {"system": {"type": ["string", "array"], "items": text}},
    )


def _openai_schema() -> dict[str, Any]:
    text = _object({"type": _const("text"), "text": _STRING})
    texts = {"type": ["string", "array"], "items": text}
    image = _object(
        {
            "type": _const("image_url"),
            "image_url": _object({"url": _STRING}, {"detail": {"enum": ["auto", "low", "high"]}}),
        }
    )
    file = _object(
        {
            "type": _const("file"),
            "file": _object({}, {"file_data": _STRING, "file_id": _STRING, "filename": _STRING}),
        }
    )
    call = _object(
        {
            "id": {"type": "string", "maxLength": 40},
            "type": _const("function"),
            "function": _object({"name": _STRING, "arguments": _STRING}),
        }
    )
    named = {"name": _STRING}
    assistant_content = {
        "type": ["string", "array", "null"],
        "items": _tagged(
            "type",
            {"text": text, "refusal": _object({"type": _const("refusal"), "refusal": _STRING})},
        ),
    }
    message = _tagged(
        "role",
        {
            "system": _object({"role": _const("system"), "content": texts}, named),
            "developer": _object({"role": _const("developer"), "content": texts}, named),
            "user": _object(
                {
                    "role": _const("user"),
                    "content": {
                        "type": ["string", "array"],
                        "items": _tagged("type", {"text": text, "image_url": image, "file": file}),
                    },
                },
                named,
            ),
            "assistant": _object(
                {"role": _const("assistant")},
                {
                    **named,
                    "content": assistant_content,
                    "tool_calls": {"type": "array", "items": call},
                    "refusal": {"type": ["string", "null"]},
                    "audio": {"type": "null"},
                    "function_call": {"type": "null"},
                },
            ),
            "tool": _object({"role": _const("tool"), "tool_call_id": _STRING, "content": texts}),
        },
    )
    return _object({"messages": {"type": "array", "minItems": 1, "items": message}})


def _both(name: str, schema: dict[str, Any]) -> dict[str, Any]:
    """A Gemini field in its proto name and its JSON name."""
    return {name: schema, camel(name): schema}


def _google_schema() -> dict[str, Any]:
    blob = _object({"data": _STRING}, _both("mime_type", _STRING))
    file_data = _object({}, {**_both("mime_type", _STRING), **_both("file_uri", _STRING)})
    media = {**_both("inline_data", blob), **_both("file_data", file_data)}
    call = _object({"name": _STRING}, {"id": _STRING, "args": {"type": ["object", "null"]}})
    response = _object(
        {"name": _STRING, "response": _OBJECT},
        {
            "id": _STRING,
            "parts": {"type": "array", "items": _object({}, media)},
            **_both("will_continue", {"type": "boolean"}),
        },
    )
    part = _object(
        {},
        {
            "text": _STRING,
            **media,
            **_both("function_call", call),
            **_both("function_response", response),
            "thought": {"type": "boolean"},
            **_both("thought_signature", _STRING),
            **_both("video_metadata", _OBJECT),
            **_both("part_metadata", _OBJECT),
        },
    )
    content = _object(
        {"parts": {"type": "array", "items": part}}, {"role": {"enum": ["user", "model"]}}
    )
    system = _object({"parts": {"type": "array", "items": part}}, {"role": _STRING})
    return _object(
        {"contents": {"type": "array", "minItems": 1, "items": content}},
        _both("system_instruction", system),
    )


_SCHEMAS: dict[ProviderType, Callable[[], dict[str, Any]]] = {
    ProviderType.ANTHROPIC: _anthropic_schema,
    ProviderType.OPENAI: _openai_schema,
    ProviderType.GOOGLE: _google_schema,
}


@functools.cache
def _validator(provider: ProviderType) -> Any:
    schema = _SCHEMAS[provider]()
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema)


def _pointer(parts: Iterable[Any]) -> str:
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in parts)


def shape_issues(payload: Any, provider: ProviderType) -> list[Issue]:
    """Where `payload` breaks the provider's request shape (the order rules not checked)."""
    issues = []
    for error in _validator(provider).iter_errors(payload):
        deepest = error
        while deepest.context:
            deepest = max(deepest.context, key=lambda e: len(e.absolute_path))
        issues.append(Issue(_pointer(deepest.absolute_path), deepest.message, "payload.shape"))
    return sorted(issues, key=lambda issue: issue.path)


# The order rules, on payloads of the right shape.


def _turns(messages: list[Mapping[str, Any]]) -> list[tuple[str, list[tuple[str, Any]]]]:
    """Anthropic's turns: consecutive messages of a role are one turn, as the API merges
    them; each block with its path."""
    turns: list[tuple[str, list[tuple[str, Any]]]] = []
    for index, message in enumerate(messages):
        content = message["content"]
        blocks = (
            [(f"/messages/{index}/content", {"type": "text", "text": content})]
            if isinstance(content, str)
            else [
                (f"/messages/{index}/content/{number}", block)
                for number, block in enumerate(content)
            ]
        )
        if turns and turns[-1][0] == message["role"]:
            turns[-1][1].extend(blocks)
        else:
            turns.append((message["role"], blocks))
    return turns


_UNANSWERED = "this tool call is not answered in the next turn"
_ORPHAN = "this tool result answers no call of the turn before"


def _anthropic_rules(payload: Mapping[str, Any]) -> list[Issue]:
    messages = payload["messages"]
    issues = []
    if messages[0]["role"] != "user":
        issues.append(
            Issue("/messages/0/role", "the first message must be the user's", "payload.first_role")
        )
    open_calls: dict[str, str] = {}
    for role, blocks in _turns(messages):
        kinds = [block["type"] for _, block in blocks]
        results = kinds.count("tool_result")
        if kinds[:results] != ["tool_result"] * results:
            issues.append(
                Issue(blocks[0][0], "tool results come first in their turn", "payload.result_order")
            )
        for path, block in blocks:
            if block["type"] == "text" and not block["text"].strip():
                issues.append(Issue(path, "text must not be empty", "payload.empty_text"))
            elif (
                block["type"] == "tool_result"
                and open_calls.pop(block["tool_use_id"], None) is None
            ):
                issues.append(Issue(path, _ORPHAN, "payload.orphan_result"))
        issues.extend(
            Issue(path, _UNANSWERED, "payload.unanswered_call") for path in open_calls.values()
        )
        calls = [(path, block) for path, block in blocks if block["type"] == "tool_use"]
        open_calls = {block["id"]: path for path, block in calls if role == "assistant"}
    issues.extend(
        Issue(path, _UNANSWERED, "payload.unanswered_call") for path in open_calls.values()
    )
    return issues


def _openai_rules(payload: Mapping[str, Any]) -> list[Issue]:
    issues = []
    open_calls: dict[str, str] = {}
    for index, message in enumerate(payload["messages"]):
        path = f"/messages/{index}"
        if message["role"] == "tool":
            if open_calls.pop(message["tool_call_id"], None) is None:
                issues.append(Issue(path, _ORPHAN, "payload.orphan_result"))
            continue
        issues.extend(Issue(p, _UNANSWERED, "payload.unanswered_call") for p in open_calls.values())
        calls = message.get("tool_calls") or []
        open_calls = {call["id"]: f"{path}/tool_calls/{n}" for n, call in enumerate(calls)}
        if message["role"] == "assistant" and message.get("content") is None and not calls:
            issues.append(
                Issue(path, "an assistant message needs content", "payload.empty_message")
            )
    issues.extend(Issue(p, _UNANSWERED, "payload.unanswered_call") for p in open_calls.values())
    return issues


_Call = tuple[str | None, str, str]
"""A Gemini function call: its id (if any), name and path."""


def _google_rules(payload: Mapping[str, Any]) -> list[Issue]:
    issues = []
    system = field(payload, "system_instruction")
    for number, part in enumerate(system["parts"] if system is not None else []):
        issues.extend(_google_part_issues(part, f"/system_instruction/parts/{number}"))
    open_calls: list[_Call] = []
    previous: str | None = None
    for index, content in enumerate(payload["contents"]):
        path = f"/contents/{index}"
        calls: list[_Call] = []
        for number, part in enumerate(content["parts"]):
            where = f"{path}/parts/{number}"
            issues.extend(_google_part_issues(part, where))
            call, response = field(part, "function_call"), field(part, "function_response")
            if call is not None:
                calls.append((call.get("id"), call["name"], where))
            if response is not None:
                answered = _answered(open_calls, response)
                if answered is None:
                    issues.append(Issue(where, _ORPHAN, "payload.orphan_result"))
                else:
                    open_calls.remove(answered)
        issues.extend(Issue(at, _UNANSWERED, "payload.unanswered_call") for _, _, at in open_calls)
        if calls and previous != "user":
            issues.append(Issue(path, "a function call follows a user turn", "payload.call_order"))
        open_calls, previous = calls, content.get("role", "user")
    issues.extend(Issue(at, _UNANSWERED, "payload.unanswered_call") for _, _, at in open_calls)
    return issues


def _answered(open_calls: list[_Call], response: Mapping[str, Any]) -> _Call | None:
    wanted = response.get("id")
    for call in open_calls:
        if call[1] == response["name"] and (wanted is None or call[0] in (None, wanted)):
            return call
    return None


def _google_part_issues(part: Mapping[str, Any], path: str) -> list[Issue]:
    present = [name for name in DATA_FIELDS if field(part, name) is not None]
    if len(present) != 1:
        fields = ", ".join(DATA_FIELDS)
        return [Issue(path, f"a part holds exactly one of {fields}", "payload.part_data")]
    signed = field(part, "thought_signature") is not None
    if present == ["text"] and not part["text"] and not signed:
        return [Issue(path, "text must not be empty", "payload.empty_text")]
    return []


_RULES: dict[ProviderType, Callable[[Mapping[str, Any]], list[Issue]]] = {
    ProviderType.ANTHROPIC: _anthropic_rules,
    ProviderType.OPENAI: _openai_rules,
    ProviderType.GOOGLE: _google_rules,
}


def validate_payload(payload: Any, provider: ProviderType | str) -> None:
    """Raise `ValidationFailed`, one `Issue` per problem, unless the provider's API would
    take `payload` (a body fragment as `to_provider` makes) as far as shape and order go."""
    provider = ProviderType(provider)
    issues = shape_issues(payload, provider) or _RULES[provider](payload)
    if issues:
        raise ValidationFailed(f"not a valid {provider.value} payload", issues)
