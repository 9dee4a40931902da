"""Provider-shaped messages wherever neutral ones are accepted.

`detect` names the provider whose single-message shape a message dict is in, by marks no
other format has: OpenAI's ``tool_calls``, ``tool_call_id``, ``refusal``, ``audio`` or
``function_call``, its ``developer`` role and its content part types (``image_url``,
``file``, ``input_audio``); Anthropic's content block types (``image``, ``document``,
``tool_use``, ``tool_result``, ``thinking``...); Gemini's ``parts`` of objects without a
``kind`` (``text``, ``inline_data``, ``function_call`` or ``functionCall``...) and its
``model`` role. Content of text blocks alone reads the same either way (Anthropic's when
a block has more than ``type`` and ``text``: ``cache_control``, ``citations``).

`read_provider_messages` is the reader `loremaster.models` calls for what its cheap check
(`is_neutral_message`) finds not neutral: the package registers it on import. It reads
with the provider decoders, one reader per list, so Gemini responses without an id pair
with the calls before them in the same list, and a message at index i gets the ids
`from_provider` gives the content at i.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import ValidationError

from ..errors import Issue, ValidationFailed
from ..models import Message, ProviderType, is_neutral_message
from . import _anthropic, _google, _openai
from ._common import TurnReader, identify
from ._validate import shape_issues

__all__ = ["ACCEPTED_FORMS", "detect", "message_source", "read_provider_messages"]

_OPENAI_MARKS = frozenset({"tool_calls", "tool_call_id", "refusal", "audio", "function_call"})
_OPENAI_KEYS = _OPENAI_MARKS | {"role", "content", "name"}
_OPENAI_ROLES = frozenset({"system", "developer", "user", "assistant", "tool"})
_OPENAI_TYPES = frozenset({"text", "image_url", "input_audio", "file", "refusal"})
_ANTHROPIC_KEYS = frozenset({"role", "content"})
_ANTHROPIC_ROLES = frozenset({"user", "assistant", "system"})
_ANTHROPIC_TYPES = frozenset(
    {
        "text",
        "image",
        "document",
        "tool_use",
        "tool_result",
        "thinking",
        "redacted_thinking",
        # Known, not carried: read to say so (payload.unsupported).
        "server_tool_use",
        "web_search_tool_result",
        "search_result",
        "container_upload",
        "mcp_tool_use",
        "mcp_tool_result",
    }
)
_PLAIN_TEXT = frozenset({"type", "text"})
_GOOGLE_KEYS = frozenset({"role", "parts"})
_GOOGLE_ROLES = frozenset({"user", "model"})
_GOOGLE_FIELDS = frozenset(
    {
        *_google.DATA_FIELDS,
        "thought",
        "thought_signature",
        "executable_code",
        "code_execution_result",
        "video_metadata",
        "part_metadata",
    }
)

_TURNS = {
    ProviderType.OPENAI: _openai.turns,
    ProviderType.ANTHROPIC: _anthropic.turns,
    ProviderType.GOOGLE: _google.turns,
}
_LIST = {
    ProviderType.OPENAI: "messages",
    ProviderType.ANTHROPIC: "messages",
    ProviderType.GOOGLE: "contents",
}

ACCEPTED_FORMS = (
    'the neutral shorthand {"role", "content": "text"}; neutral parts {"role", "parts": '
    '[{"kind": "text" | "image" | "document" | "tool_call" | "tool_result" | "thinking", '
    '...}]}; an OpenAI chat message (role "tool" with tool_call_id, assistant tool_calls, '
    "content parts of type text, image_url or file); an Anthropic message (content blocks "
    "of type text, image, document, tool_use, tool_result or thinking); a Gemini content "
    '(role "user" or "model", parts with text, inline_data, file_data, function_call or '
    "function_response). Name the format with source= (loremaster append --from) when it "
    "is ambiguous; a whole request body reads with ContextTranslator.from_provider"
)
"""What the one error for a message in no known shape says is accepted."""


def detect(message: Mapping[str, Any]) -> ProviderType | None:
    """The provider whose message shape `message` (not a neutral one) is in; None when it
    is in none, or could be in several that would read it differently."""
    role = message.get("role")
    if "parts" in message:
        return ProviderType.GOOGLE if _gemini(message, role) else None
    if not isinstance(role, str):
        return None
    keys = message.keys()
    if role == "developer" or not _OPENAI_MARKS.isdisjoint(keys):
        openai = keys <= _OPENAI_KEYS and role in _OPENAI_ROLES
        return ProviderType.OPENAI if openai else None
    content = message.get("content")
    if not isinstance(content, list) or not all(_typed(block) for block in content):
        return None
    types = {block["type"] for block in content}
    openai = keys <= _OPENAI_KEYS and role in _OPENAI_ROLES and types <= _OPENAI_TYPES
    anthropic = keys <= _ANTHROPIC_KEYS and role in _ANTHROPIC_ROLES and types <= _ANTHROPIC_TYPES
    if openai and anthropic:  # text blocks alone
        plain = all(block.keys() <= _PLAIN_TEXT for block in content)
        return ProviderType.OPENAI if plain else ProviderType.ANTHROPIC
    if openai:
        return ProviderType.OPENAI
    return ProviderType.ANTHROPIC if anthropic else None


def _typed(block: Any) -> bool:
    return isinstance(block, Mapping) and isinstance(block.get("type"), str)


def _gemini(message: Mapping[str, Any], role: Any) -> bool:
    parts = message.get("parts")
    return (
        message.keys() <= _GOOGLE_KEYS
        and (role is None or (isinstance(role, str) and role in _GOOGLE_ROLES))
        and isinstance(parts, list)
        and all(_gemini_part(part) for part in parts)
    )


def _gemini_part(part: Any) -> bool:
    return (
        isinstance(part, Mapping)
        and "kind" not in part
        and any(isinstance(key, str) and _google.snake(key) in _GOOGLE_FIELDS for key in part)
    )


def message_source(source: Any) -> ProviderType | None:
    """The provider named by a ``source=`` argument (``gemini`` is ``google``), or None."""
    if source is None:
        return None
    try:
        return ProviderType(source)
    except (ValueError, TypeError) as exc:
        raise ValidationFailed(
            "source names the provider whose shape the messages are in",
            [Issue("/source", f"{source!r:.80} is not anthropic, openai or google", "provider")],
        ) from exc


def read_provider_messages(
    messages: Sequence[Any], source: Any, path: str | None
) -> list[list[Any]]:
    """For each message, what it is in the neutral form: itself when it is a `Message` or
    a neutral dict, else the `Message`s it holds as the provider's message (`source`, or
    the one `detect` names). Issues name the message at ``{path}/{index}`` (at the message
    itself when `path` is None)."""
    forced = message_source(source)
    readers: dict[ProviderType, TurnReader] = {}
    groups: list[list[Any]] = []
    read: list[tuple[int, ProviderType]] = []
    for index, message in enumerate(messages):
        if type(message) is not dict or is_neutral_message(message):
            groups.append([message])
            continue
        at = "" if path is None else f"{path}/{index}"
        provider = forced or detect(message)
        if provider is None:
            raise ValidationFailed(
                "not a message loremaster reads", [Issue(at, _unknown(message), "message.shape")]
            )
        if provider not in readers:
            readers[provider] = _TURNS[provider]()
        groups.append(_decode(readers[provider], provider, message, index, at))
        read.append((index, provider))
    identify([fields for index, _ in read for fields in groups[index]])
    for index, provider in read:
        try:
            groups[index] = [Message.model_validate(fields) for fields in groups[index]]
        except ValidationError as exc:
            at = "" if path is None else f"{path}/{index}"
            raise _unreadable(messages[index], provider, at, exc) from exc
    return groups


_BODY_FIELDS = frozenset({"messages", "contents", "system_instruction", "systemInstruction"})


def _unknown(message: Mapping[str, Any]) -> str:
    if not _BODY_FIELDS.isdisjoint(message):
        return (
            "this is a whole request body, not a message: pass its messages, or read it "
            "with ContextTranslator.from_provider"
        )
    keys = ", ".join(sorted(str(key) for key in message)) or "no fields"
    content = message.get("content", message.get("parts"))
    tags = ""
    if isinstance(content, list):
        found = {str(item.get("type", item.get("kind"))) for item in content if _typed(item)}
        tags = f" and content types {', '.join(sorted(found))}" if found else ""
    return f"a message with {keys}{tags} is in no format loremaster reads; accepted: " + (
        ACCEPTED_FORMS
    )


def _decode(
    read: TurnReader, provider: ProviderType, message: Mapping[str, Any], index: int, at: str
) -> list[Any]:
    native = f"/{_LIST[provider]}/{index}"  # Gemini's made-up ids come from it
    try:
        return list(read(message, native))
    except ValidationFailed as exc:  # what loremaster cannot carry
        issues = [
            Issue(at + issue.path.removeprefix(native), issue.message, issue.code)
            for issue in exc.issues
        ]
        raise ValidationFailed(f"cannot read this {provider.value} message", issues) from exc
    except (LookupError, TypeError, AttributeError, ValueError) as exc:
        raise _unreadable(message, provider, at, exc) from exc


def _unreadable(
    message: Mapping[str, Any], provider: ProviderType, at: str, exc: Exception
) -> ValidationFailed:
    """The places the message breaks its provider's shape, or what could not be read."""
    native = f"/{_LIST[provider]}/0"
    issues = [
        Issue(at + issue.path.removeprefix(native), issue.message, issue.code)
        for issue in shape_issues({_LIST[provider]: [message]}, provider)
    ]
    if not issues:
        what = (
            "; ".join(f"{'/'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
            if isinstance(exc, ValidationError)
            else f"{type(exc).__name__}: {exc}"
        )
        issues = [Issue(at, what, "payload.unreadable")]
    return ValidationFailed(f"cannot read this {provider.value} message", issues)
