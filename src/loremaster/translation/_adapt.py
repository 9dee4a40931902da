"""What a provider can take: neutral messages adapted to it, every change reported.

`adapt` is the policy of translation and the only place that changes anything: the
provider formats render its output one to one, so reading a payload back gives exactly
the adapted messages, and the adapted messages differ from the input exactly where a
`Change` says so.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import mimetypes
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TypeVar, assert_never, cast
from urllib.parse import urlsplit
from uuid import uuid4

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
from ._common import ORIGIN_KEY, arguments_json, extras, parse_arguments, split_data_url
from ._registry import ModelInfo
from ._report import Change

__all__ = ["PLACEHOLDER_TEXT", "SKIP_SIGNATURE", "adapt", "safe_id"]

PLACEHOLDER_TEXT = "(The conversation so far continues below.)"
SKIP_SIGNATURE = "skip_thought_signature_validator"
"""Gemini's documented stand-in for a thought signature on a call another model made."""

_SIGNATURE_KEYS = frozenset({"signature", "data", "thought_signature", ORIGIN_KEY})
_ANTHROPIC_IMAGES = frozenset({"image/jpeg", "image/png", "image/gif", "image/webp"})
_OPENAI_DETAILS = frozenset({"auto", "low", "high"})
_ID_CHARACTERS = re.compile(r"[^A-Za-z0-9_-]")
_OPENAI_ID_LENGTH = 40

P = TypeVar(
    "P", bound=TextPart | ImagePart | DocumentPart | ToolCallPart | ToolResultPart | ThinkingPart
)
M = TypeVar("M", ImagePart, DocumentPart)
C = TypeVar("C", ToolCallPart, ToolResultPart)

ANTHROPIC, OPENAI, GOOGLE = ProviderType.ANTHROPIC, ProviderType.OPENAI, ProviderType.GOOGLE
SYSTEM, USER, ASSISTANT, TOOL = (
    MessageRole.SYSTEM,
    MessageRole.USER,
    MessageRole.ASSISTANT,
    MessageRole.TOOL,
)


@dataclass
class _Item:
    message: Message
    origin: int | None
    """The message's index in the input; None for one the adaptation added."""

    @property
    def path(self) -> str:
        return "" if self.origin is None else f"/{self.origin}"

    def changed(self, **update: object) -> _Item:
        return _Item(self.message.model_copy(update=update), self.origin)


@dataclass
class _Target:
    provider: ProviderType
    model: ModelInfo
    may_sign: Callable[[str], bool]
    """Whether a signature made by the named model may go to the target model."""
    changes: list[Change] = field(default_factory=list)

    def note(self, code: str, path: str, detail: str) -> None:
        self.changes.append(Change(code, path, detail))


def adapt(
    messages: Sequence[Message],
    provider: ProviderType,
    model: ModelInfo,
    may_sign: Callable[[str], bool],
) -> tuple[list[Message], list[Change]]:
    """The messages as `provider` will receive them, and what changed on the way."""
    target = _Target(provider, model, may_sign)
    items = [_Item(_adapt_message(m, i, target), i) for i, m in enumerate(messages)]
    for step in _STEPS[provider]:
        items = step(items, target)
    changes = sorted(target.changes, key=lambda change: _position(change.path))
    return [item.message for item in items], changes


def _position(path: str) -> int:
    head = path.split("/")[1] if path.count("/") else ""
    return int(head) if head.isdigit() else -1


def safe_id(call_id: str, provider: ProviderType | str) -> str:
    """The id the provider accepts: Anthropic takes letters, digits, _ and -; OpenAI at
    most 40 characters. Others keep theirs. A changed id keeps a readable stem and gains a
    hash of the original, so distinct ids stay distinct and a call and its result agree."""
    provider = ProviderType(provider)
    valid = (provider is not ANTHROPIC or not _ID_CHARACTERS.search(call_id)) and (
        provider is not OPENAI or len(call_id) <= _OPENAI_ID_LENGTH
    )
    if valid:
        return call_id
    digest = hashlib.sha256(call_id.encode()).hexdigest()[:8]
    return f"{_ID_CHARACTERS.sub('_', call_id)[:31]}_{digest}"


# Parts, one by one.


def _adapt_message(message: Message, index: int, target: _Target) -> Message:
    parts: list[Part] = []
    changed = False
    for number, part in enumerate(message.parts):
        adapted = _adapt_part(part, message.role, f"/{index}/parts/{number}", target)
        changed = changed or len(adapted) != 1 or adapted[0] is not part
        parts.extend(adapted)
    update: dict[str, object] = {"parts": parts} if changed else {}
    if message.name is not None and not (target.provider is OPENAI and message.role is not TOOL):
        target.note("name_dropped", f"/{index}/name", f"participant name {message.name!r}")
        update["name"] = None
    return message.model_copy(update=update) if update else message


def _allowed(part: Part, role: MessageRole, provider: ProviderType) -> bool:
    match part:
        case TextPart():
            return role is not TOOL
        case ImagePart() | DocumentPart():
            return role is USER or (role is ASSISTANT and provider is GOOGLE)
        case ToolCallPart() | ThinkingPart():
            return role is ASSISTANT
        case ToolResultPart():
            return True
        case _:
            assert_never(part)


def _adapt_part(part: Part, role: MessageRole, path: str, target: _Target) -> Sequence[Part]:
    if not _allowed(part, role, target.provider):
        target.note(
            "unsupported_part",
            path,
            f"{target.provider.value} takes no {part.kind} part in a {role.value} message",
        )
        return []
    mark = len(target.changes)
    adapted = _adapt_allowed(_own_data(part, path, target), path, target)
    if not adapted:  # a part dropped is reported once, by why it was dropped
        del target.changes[mark:-1]
    return adapted


def _adapt_allowed(part: Part, path: str, target: _Target) -> Sequence[Part]:
    match part:
        case TextPart():
            return _text(part, path, target)
        case ImagePart():
            return _image(part, path, target)
        case DocumentPart():
            return _document(part, path, target)
        case ToolCallPart():
            return [_with_safe_id(_raw_arguments(part, path, target), "id", path, target)]
        case ToolResultPart():
            return [_tool_result(part, path, target)]
        case ThinkingPart():
            return _thinking(part, path, target)
        case _:
            assert_never(part)


def _own_data(part: P, path: str, target: _Target) -> P:
    """The part with only the target's own data, and signatures only for their model."""
    if not part.provider_data:
        return part
    kept = {}
    foreign = {
        ns: sorted(data) for ns, data in part.provider_data.items() if ns != target.provider.value
    }
    if isinstance(part, ToolCallPart) and "arguments" in foreign.get(OPENAI.value, ()):
        target.note("arguments_reserialized", path, "openai: arguments sent as an object")
        foreign[OPENAI.value].remove("arguments")
        foreign = {ns: keys for ns, keys in foreign.items() if keys}
    if foreign:
        listed = "; ".join(f"{ns}: {', '.join(keys)}" for ns, keys in foreign.items())
        target.note("provider_data_dropped", path, listed)
    own = part.provider_data.get(target.provider.value)
    origin = own.get(ORIGIN_KEY) if own else None
    if own and isinstance(origin, str) and not target.may_sign(origin):
        target.note("signature_dropped", path, f"made by {origin}, not {target.model.name}")
        own = {key: value for key, value in own.items() if key not in _SIGNATURE_KEYS}
    elif own and ORIGIN_KEY in own:
        own = {key: value for key, value in own.items() if key != ORIGIN_KEY}
    if own:
        kept[target.provider.value] = own
    if kept == part.provider_data:
        return part
    return cast(P, part.model_copy(update={"provider_data": kept}))  # model_copy keeps the type


def _text(part: TextPart, path: str, target: _Target) -> list[TextPart]:
    """Claude rejects blank text, Gemini empty text but for a signature's carrier."""
    blank = not part.text.strip() if target.provider is ANTHROPIC else not part.text
    if blank and (
        target.provider is ANTHROPIC or (target.provider is GOOGLE and not part.provider_data)
    ):
        target.note("empty_text", path, f"{target.provider.value} rejects empty text")
        return []
    return [part]


def _inline(part: M, path: str, target: _Target) -> M:
    inline = split_data_url(part.url) if part.url is not None else None
    if inline is None:
        return part
    target.note("data_url", path, f"a {inline[0]} data: URL")
    return part.model_copy(update={"url": None, "media_type": inline[0], "data": inline[1]})


def _media_type(part: M, path: str, target: _Target) -> M:
    """Only Gemini carries the media type of a URL, and it needs one."""
    if part.url is None or (part.media_type is None) is (target.provider is not GOOGLE):
        return part
    if target.provider is not GOOGLE:
        target.note("media_type_dropped", path, f"{part.media_type} of a URL")
        return part.model_copy(update={"media_type": None})
    default = "image/jpeg" if isinstance(part, ImagePart) else "application/pdf"
    guessed = mimetypes.guess_type(urlsplit(part.url).path)[0] or default
    target.note("media_type_guessed", path, f"Gemini needs one: {guessed}")
    return part.model_copy(update={"media_type": guessed})


def _image(part: ImagePart, path: str, target: _Target) -> list[ImagePart]:
    part = _media_type(_inline(part, path, target), path, target)
    if part.detail is not None and (
        target.provider is not OPENAI or part.detail not in _OPENAI_DETAILS
    ):
        target.note("image_detail_dropped", path, f"detail {part.detail!r}")
        part = part.model_copy(update={"detail": None})
    if (
        target.provider is ANTHROPIC
        and part.data is not None
        and part.media_type not in _ANTHROPIC_IMAGES
    ):
        target.note("unsupported_part", path, f"Anthropic takes no {part.media_type} images")
        return []
    return [part]


def _document(part: DocumentPart, path: str, target: _Target) -> list[Part]:
    part = _media_type(_inline(part, path, target), path, target)
    match target.provider:
        case ProviderType.OPENAI if part.url is not None:
            target.note("unsupported_part", path, "OpenAI takes documents inline only")
            return []
        case ProviderType.ANTHROPIC if part.data is not None and not _anthropic_document(part):
            target.note("unsupported_part", path, f"Anthropic takes no {part.media_type} documents")
            return []
        case ProviderType.GOOGLE if part.title is not None:
            target.note("document_title_dropped", path, f"title {part.title!r}")
            part = part.model_copy(update={"title": None})
    if target.provider is GOOGLE and (part.media_type or "").startswith("image/"):
        target.note("document_as_image", path, f"a {part.media_type} document")
        fields = part.model_dump(include={"url", "data", "media_type", "provider_data"})
        return [ImagePart(**fields)]
    return [part]


def _anthropic_document(part: DocumentPart) -> bool:
    if part.media_type == "application/pdf":
        return True
    if part.media_type != "text/plain":
        return False
    try:
        text = base64.b64decode(part.data or "", validate=True)
        return base64.b64encode(text).decode() == part.data and bool(text.decode())
    except (binascii.Error, UnicodeDecodeError):
        return False


def _with_safe_id(part: C, attribute: str, path: str, target: _Target) -> C:
    current: str = getattr(part, attribute)
    safe = safe_id(current, target.provider)
    if safe == current:
        return part
    target.note("id_sanitized", path, f"{current!r} sent as {safe!r}")
    return part.model_copy(update={attribute: safe})


def _raw_arguments(part: ToolCallPart, path: str, target: _Target) -> ToolCallPart:
    """OpenAI's argument text, kept only while it is another spelling of the arguments."""
    own = extras(part, OPENAI) if target.provider is OPENAI else {}
    raw = own.get("arguments")
    if raw is None or (isinstance(raw, str) and _spells(raw, part.arguments)):
        return part
    target.note("arguments_reserialized", path, "openai: these arguments, not their old text")
    rest = {key: value for key, value in own.items() if key != "arguments"}
    data = {OPENAI.value: rest} if rest else {}
    return part.model_copy(update={"provider_data": data})


def _spells(raw: str, arguments: dict[str, object]) -> bool:
    return parse_arguments(raw) == arguments and raw != arguments_json(arguments)


def _tool_result(part: ToolResultPart, path: str, target: _Target) -> ToolResultPart:
    part = _with_safe_id(part, "call_id", path, target)
    content: list[TextPart | ImagePart] = []
    for number, item in enumerate(part.content):
        content.extend(_adapt_content(item, f"{path}/content/{number}", target))
    if target.provider is GOOGLE and _media_before_text(content):
        target.note("parts_reordered", path, "Gemini sends a result's texts before its images")
        content.sort(key=lambda item: isinstance(item, ImagePart))
    update: dict[str, object] = {}
    if content != part.content:
        update["content"] = content
    if part.is_error and target.provider is OPENAI:
        target.note("error_flag_dropped", path, "an error result sent as a plain result")
        update["is_error"] = False
    return part.model_copy(update=update) if update else part


def _adapt_content(
    item: TextPart | ImagePart, path: str, target: _Target
) -> Sequence[TextPart | ImagePart]:
    item = _own_data(item, path, target)
    if target.provider is GOOGLE and item.provider_data:
        target.note(
            "provider_data_dropped",
            path,
            "google: a function response's texts and images carry none",
        )
        item = item.model_copy(update={"provider_data": {}})
    return _text(item, path, target) if isinstance(item, TextPart) else _image(item, path, target)


def _media_before_text(content: Sequence[TextPart | ImagePart]) -> bool:
    kinds = [isinstance(item, ImagePart) for item in content]
    return kinds != sorted(kinds)


def _thinking(part: ThinkingPart, path: str, target: _Target) -> list[Part]:
    own = extras(part, target.provider)
    match target.provider:
        case ProviderType.OPENAI:
            reason = "Chat Completions takes no reasoning back"
        case ProviderType.ANTHROPIC if not own.get("data" if part.redacted else "signature"):
            reason = "Claude takes back only the thinking it signed"
        case ProviderType.GOOGLE if part.redacted:
            reason = "redacted thinking is Anthropic's alone"
        case ProviderType.GOOGLE if not part.text and not own:
            reason = "empty"
        case _:
            return [part]
    target.note("thinking_dropped", path, reason)
    return []


# The conversation, as a whole.

_Step = Callable[[list[_Item], _Target], list[_Item]]


@dataclass
class _Result:
    part: ToolResultPart
    source: int
    """Position of the item it came from."""
    number: int
    """Its index among that item's parts."""


def _pair_tool_results(items: list[_Item], target: _Target) -> list[_Item]:
    """Every tool result right after the message of its call, one per tool message, in
    the order they came; results without a call and calls without a result dropped."""
    found = _find_results(items, target)
    out: list[_Item] = []
    called: set[str] = set()
    for position, original in enumerate(items):
        item = _without_results(original, target)
        if item is None:
            continue
        item = _first_calls(item, called, target)
        calls = [part for part in item.message.parts if isinstance(part, ToolCallPart)]
        answered = [call for call in calls if call.id in found]
        if len(answered) != len(calls):
            item = _answered_only(item, found, target)
        out.append(item)
        if answered:
            out.extend(_results_after(items, position, answered, found, target))
    return out


def _without_results(item: _Item, target: _Target) -> _Item | None:
    """The item less its tool results (placed after their calls); None when nothing stays."""
    parts = item.message.parts
    rest = [part for part in parts if not isinstance(part, ToolResultPart)]
    if len(rest) == len(parts):
        return item
    if item.message.role is TOOL or not rest:
        if len(parts) > 1:
            target.note("tool_results_split", item.path, "one tool message per result")
        return None
    target.note("tool_results_split", item.path, "tool results taken out of the message")
    return item.changed(parts=rest)


def _first_calls(item: _Item, called: set[str], target: _Target) -> _Item:
    """The item less calls that reuse the id of an earlier call; their ids join `called`."""
    kept: list[Part] = []
    for part in item.message.parts:
        if isinstance(part, ToolCallPart) and part.id in called:
            target.note("duplicate_tool_call", item.path, f"call {part.id} ({part.name})")
            continue
        if isinstance(part, ToolCallPart):
            called.add(part.id)
        kept.append(part)
    return item if len(kept) == len(item.message.parts) else item.changed(parts=kept)


def _answered_only(item: _Item, found: dict[str, _Result], target: _Target) -> _Item:
    kept: list[Part] = []
    for part in item.message.parts:
        if isinstance(part, ToolCallPart) and part.id not in found:
            target.note("unanswered_tool_call", item.path, f"call {part.id} ({part.name})")
        else:
            kept.append(part)
    return item.changed(parts=kept)


def _find_results(items: list[_Item], target: _Target) -> dict[str, _Result]:
    """The first result of each call made before it."""
    called: set[str] = set()
    found: dict[str, _Result] = {}
    for position, item in enumerate(items):
        for number, part in enumerate(item.message.parts):
            if isinstance(part, ToolCallPart):
                called.add(part.id)
            elif isinstance(part, ToolResultPart):
                if part.call_id not in called:
                    target.note("orphan_tool_result", item.path, f"no earlier call {part.call_id}")
                elif part.call_id in found:
                    target.note("duplicate_tool_result", item.path, f"call {part.call_id}")
                else:
                    found[part.call_id] = _Result(part, position, number)
    return found


def _results_after(
    items: list[_Item],
    position: int,
    calls: list[ToolCallPart],
    found: dict[str, _Result],
    target: _Target,
) -> list[_Item]:
    """The results of the calls at `position`: those already right after it in the order
    they came, then those from further away in the order of the calls."""
    adjacent = position + 1
    while adjacent < len(items) and items[adjacent].message.role is TOOL:
        adjacent += 1
    results = [found[call.id] for call in calls]
    near = sorted((r for r in results if r.source < adjacent), key=lambda r: (r.source, r.number))
    far = [r for r in results if r.source >= adjacent]
    for result in far:
        target.note(
            "tool_result_moved", items[result.source].path, f"result of {result.part.call_id}"
        )
    return [_result_item(items[result.source], result) for result in near + far]


def _result_item(source: _Item, result: _Result) -> _Item:
    """A tool message holding just this result; the first result of a tool message keeps
    that message's id."""
    message = source.message
    if message.role is TOOL and len(message.parts) == 1:
        return source
    earlier = message.parts[: result.number]
    first = message.role is TOOL and not any(isinstance(p, ToolResultPart) for p in earlier)
    new_id = {} if first else {"id": uuid4().hex}
    return source.changed(role=TOOL, parts=[result.part], name=None, **new_id)


def _calls_last(items: list[_Item], target: _Target) -> list[_Item]:
    """Text and thinking before the tool calls of an assistant message."""
    return [_ordered(item, target) if item.message.role is ASSISTANT else item for item in items]


def _ordered(item: _Item, target: _Target) -> _Item:
    parts = item.message.parts
    ordered = sorted(parts, key=lambda part: isinstance(part, ToolCallPart))
    if ordered == parts:
        return item
    target.note("parts_reordered", item.path, "text moved before the tool calls")
    return item.changed(parts=ordered)


def _images_after_results(items: list[_Item], target: _Target) -> list[_Item]:
    """OpenAI tool messages hold text only: their images follow in a user message."""
    out: list[_Item] = []
    images: list[ImagePart] = []
    for index, item in enumerate(items):
        out.append(_text_only(item, images, target) if item.message.role is TOOL else item)
        run_ends = index + 1 == len(items) or items[index + 1].message.role is not TOOL
        if images and run_ends:
            out.append(_Item(Message(role=USER, parts=images), None))
            images = []
    return out


def _text_only(item: _Item, images: list[ImagePart], target: _Target) -> _Item:
    """The tool message with its images moved to `images`."""
    match item.message.parts:
        case [ToolResultPart() as result] if any(isinstance(c, ImagePart) for c in result.content):
            pictures = [content for content in result.content if isinstance(content, ImagePart)]
            target.note("tool_result_image_moved", item.path, f"{len(pictures)} image(s)")
            images.extend(pictures)
            texts = [content for content in result.content if isinstance(content, TextPart)]
            return item.changed(parts=[result.model_copy(update={"content": texts})])
    return item


def _drop_empty(items: list[_Item], target: _Target) -> list[_Item]:
    for item in items:
        if not item.message.parts:
            target.note("empty_message", item.path, f"a {item.message.role.value} message")
    return [item for item in items if item.message.parts]


def _place_system(items: list[_Item], target: _Target) -> list[_Item]:
    """One leading system prompt (Anthropic, Gemini); later system messages kept where
    the provider takes them, else sent as user messages."""
    leading = 0
    while leading < len(items) and items[leading].message.role is SYSTEM:
        leading += 1
    head = items[:leading]
    if target.provider is not OPENAI and head:
        field_name = "system" if target.provider is ANTHROPIC else "system_instruction"
        target.note("system_prompt", head[0].path, f"sent as the {field_name} field")
        if len(head) > 1:
            for item in head:
                target.note("system_merged", item.path, "one system prompt, parts kept apart")
            head = [head[0].changed(parts=[part for item in head for part in item.message.parts])]
    keeps = target.provider is OPENAI or (
        target.provider is ANTHROPIC and target.model.mid_conversation_system
    )
    return head + [
        item if item.message.role is not SYSTEM or keeps else _as_user(item, target)
        for item in items[leading:]
    ]


def _as_user(item: _Item, target: _Target) -> _Item:
    target.note("system_as_user", item.path, f"{target.model.name} takes no system message here")
    return item.changed(role=USER)


def _merge_same_role_turns(items: list[_Item], target: _Target) -> list[_Item]:
    """Gemini wants user and model turns to alternate (and a function call right after a
    user turn): consecutive assistant messages are one model turn, consecutive user
    messages one user turn. (A user message after tool results joins their turn as it is
    encoded, and is read back apart: `_note_grouped_results`.)"""
    out: list[_Item] = []
    for item in items:
        previous = out[-1].message if out else None
        role = item.message.role
        if previous is not None and previous.role is role and role in (ASSISTANT, USER):
            for merged in (out[-1], item):
                target.note("same_role_merged", merged.path, f"{role.value} messages sent as one")
            out[-1] = out[-1].changed(parts=[*previous.parts, *item.message.parts])
        else:
            out.append(item)
    return out


def _start_with_user(items: list[_Item], target: _Target) -> list[_Item]:
    """Claude and Gemini want a user turn first."""
    if not items:
        return items
    first = next((i for i, item in enumerate(items) if item.message.role is not SYSTEM), None)
    if first is not None and items[first].message.role is not ASSISTANT:
        return items
    where = len(items) if first is None else first
    path = items[where].path if where < len(items) else f"/{where}"
    target.note("placeholder_user", path, f"{PLACEHOLDER_TEXT!r} added before it")
    placeholder = _Item(Message(role=USER, parts=[TextPart(text=PLACEHOLDER_TEXT)]), None)
    return [*items[:where], placeholder, *items[where:]]


def _sign_current_turn(items: list[_Item], target: _Target) -> list[_Item]:
    """Gemini 3 checks the signature of the first call of each step of the current turn."""
    if not target.model.thought_signatures_required:
        return items
    last_user = max((i for i, item in enumerate(items) if item.message.role is USER), default=-1)
    current = [_signed(item, target) for item in items[last_user + 1 :]]
    return items[: last_user + 1] + current


def _signed(item: _Item, target: _Target) -> _Item:
    parts = list(item.message.parts)
    call = next((i for i, part in enumerate(parts) if isinstance(part, ToolCallPart)), None)
    if call is None or "thought_signature" in extras(parts[call], GOOGLE):
        return item
    target.note("thought_signature_added", f"{item.path}/parts/{call}", SKIP_SIGNATURE)
    own = {**parts[call].provider_data.get(GOOGLE.value, {}), "thought_signature": SKIP_SIGNATURE}
    data = {**parts[call].provider_data, GOOGLE.value: own}
    parts[call] = parts[call].model_copy(update={"provider_data": data})
    return item.changed(parts=parts)


def _note_grouped_results(items: list[_Item], target: _Target) -> list[_Item]:
    for index, item in enumerate(items[:-1]):
        opens = item.message.role is TOOL and (
            index == 0 or items[index - 1].message.role is not TOOL
        )
        following = items[index + 1].message.role
        if opens and following is TOOL:
            target.note("tool_results_grouped", item.path, "sent in one user turn")
        if target.provider is GOOGLE and item.message.role is TOOL and following is USER:
            target.note("user_after_results", items[index + 1].path, "sent in their user turn")
    return items


_STEPS: dict[ProviderType, tuple[_Step, ...]] = {
    ANTHROPIC: (
        _pair_tool_results,
        _calls_last,
        _drop_empty,
        _place_system,
        _start_with_user,
        _note_grouped_results,
    ),
    OPENAI: (_pair_tool_results, _calls_last, _images_after_results, _drop_empty, _place_system),
    GOOGLE: (
        _pair_tool_results,
        _drop_empty,
        _place_system,
        _merge_same_role_turns,
        _start_with_user,
        _sign_current_turn,
        _note_grouped_results,
    ),
}
