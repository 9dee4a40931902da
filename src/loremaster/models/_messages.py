"""The neutral message model every provider format translates to and from.

A message is a role plus a list of typed parts. Each part carries a literal ``kind`` tag;
the tags are a wire format and never change once released.

A provider's own message shape (OpenAI, Anthropic, Gemini) is accepted wherever messages
are: a cheap look at a message's keys (`is_neutral_message`) tells the neutral forms
apart, and the rest go to the reader `loremaster.translation` registers on import
(`register_message_reader`), so this bottom layer never imports translation.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from contextvars import ContextVar
from enum import StrEnum
from typing import Annotated, Any, Literal
from uuid import uuid4

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ModelWrapValidatorHandler,
    ValidationError,
    ValidationInfo,
    model_validator,
)

from ..errors import Issue, ValidationFailed
from ._time import UtcDatetime, utc_now

__all__ = [
    "SOURCE_KEY",
    "DocumentPart",
    "ImagePart",
    "Message",
    "MessageList",
    "MessageReader",
    "MessageRole",
    "Part",
    "TextPart",
    "ThinkingPart",
    "ToolCallPart",
    "ToolResultPart",
    "is_neutral_message",
    "read_message_groups",
    "read_messages",
    "register_message_reader",
    "source_of",
    "validate_message_list",
]


class MessageRole(StrEnum):
    SYSTEM = "system"
    USER = "user"
    ASSISTANT = "assistant"
    TOOL = "tool"


class _Part(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    provider_data: dict[str, dict[str, Any]] = Field(
        default_factory=dict,
        description="provider-only details, namespaced by provider (signatures, cache_control)",
    )


class TextPart(_Part):
    kind: Literal["text"] = "text"
    text: str


class _MediaSource(_Part):
    """Either a URL or inline base64 data with its media type."""

    url: str | None = None
    data: str | None = Field(None, description="base64 payload")
    media_type: str | None = None

    @model_validator(mode="after")
    def _one_source(self) -> _MediaSource:
        if (self.url is None) == (self.data is None):
            raise ValueError("give exactly one of url or data")
        if self.data is not None and not self.media_type:
            raise ValueError("inline data needs a media_type")
        return self


class ImagePart(_MediaSource):
    kind: Literal["image"] = "image"
    detail: str | None = None


class DocumentPart(_MediaSource):
    kind: Literal["document"] = "document"
    title: str | None = None


class ToolCallPart(_Part):
    kind: Literal["tool_call"] = "tool_call"
    id: str = Field(min_length=1)
    name: str = Field(min_length=1)
    arguments: dict[str, Any] = Field(default_factory=dict)


ResultContent = Annotated[TextPart | ImagePart, Field(discriminator="kind")]


class ToolResultPart(_Part):
    kind: Literal["tool_result"] = "tool_result"
    call_id: str = Field(min_length=1)
    content: list[ResultContent] = Field(default_factory=list)
    is_error: bool = False

    @model_validator(mode="before")
    @classmethod
    def _content_shorthand(cls, value: Any) -> Any:
        if isinstance(value, dict) and isinstance(value.get("content"), str):
            return {**value, "content": [{"kind": "text", "text": value["content"]}]}
        return value


class ThinkingPart(_Part):
    kind: Literal["thinking"] = "thinking"
    text: str = ""
    signature: str | None = None
    redacted: bool = False


Part = Annotated[
    TextPart | ImagePart | DocumentPart | ToolCallPart | ToolResultPart | ThinkingPart,
    Field(discriminator="kind"),
]


def _new_message_id() -> str:
    return uuid4().hex


def _content_shorthand(value: Any) -> Any:
    if not isinstance(value, dict) or "content" not in value:
        return value
    if "parts" in value:
        raise ValueError("give either content or parts, not both")
    fields = dict(value)
    content = fields.pop("content")
    if isinstance(content, str):
        fields["parts"] = [{"kind": "text", "text": content}]
    elif content is None:
        fields["parts"] = []
    else:
        fields["parts"] = content
    return fields


class Message(BaseModel):
    """One message of a conversation.

    ``{"role": "user", "content": "text"}`` is accepted as shorthand for a single text
    part; ``content`` may also be a list of part dicts. A provider's own message that is
    one neutral message is read too (``context={"source": ...}`` names the provider).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(default_factory=_new_message_id, min_length=1, max_length=200)
    role: MessageRole
    parts: list[Part] = Field(default_factory=list)
    name: str | None = None
    created_at: UtcDatetime = Field(default_factory=utc_now)
    metadata: dict[str, Any] = Field(default_factory=dict)
    seq: int | None = Field(None, description="position in the conversation, set by storage")

    @model_validator(mode="wrap")
    @classmethod
    def _accept_other_forms(
        cls, value: Any, handler: ModelWrapValidatorHandler[Message], info: ValidationInfo
    ) -> Message:
        """The content shorthand; and a provider's message, tried only once the value has
        failed as a neutral one, so a neutral message pays nothing for it (in a list, the
        list reads it: see `validate_message_list`)."""
        try:
            return handler(_content_shorthand(value))
        except ValidationError:
            if _IN_LIST.get() or type(value) is not dict or is_neutral_message(value):
                raise
        return handler(_read_one(value, source_of(info.context)))

    @property
    def text(self) -> str:
        """The message's text parts joined by blank lines."""
        return "\n\n".join(part.text for part in self.parts if isinstance(part, TextPart))


# Provider shapes.

SOURCE_KEY = "source"
"""The key of pydantic's validation context that names the provider whose shape the
messages are in: ``Message.model_validate(fields, context={"source": "openai"})``."""

MessageReader = Callable[[Sequence[Any], Any, str | None], list[list[Any]]]
"""Reads `messages` (with `source`, the provider forced, or None to detect it): for each
message, what it is in the neutral form (itself when neutral; one or several `Message`s
for a provider's message). Issues name each message at ``{path}/{index}``, or at the
message itself when `path` is None. Raises `ValidationFailed`."""

_NEUTRAL_KEYS = frozenset(
    {"id", "role", "parts", "content", "name", "created_at", "metadata", "seq"}
)
_FOREIGN_ROLES = frozenset({"model", "developer"})
_readers: list[MessageReader] = []
_IN_LIST: ContextVar[bool] = ContextVar("loremaster_message_list", default=False)
"""Set while a list of messages validates: its items leave provider shapes to the list,
which reads them together (Gemini pairs responses with earlier calls of the list)."""


def is_neutral_message(value: dict[str, Any]) -> bool:
    """Whether a message dict is in a neutral form (shorthand ``{"role", "content": str}``
    or typed parts ``{"role", "parts": [{"kind": ...}]}``), by a look at its keys, its role
    and whether its parts carry ``kind``; what is not goes to the registered reader.
    Every neutral message validated pays for it: keep it a few dict lookups."""
    if not _NEUTRAL_KEYS.issuperset(value):
        return False
    role = value.get("role")
    if type(role) is str and role in _FOREIGN_ROLES:
        return False
    items = value.get("parts")
    if items is None:
        items = value.get("content")
    if type(items) is list:
        for item in items:
            if type(item) is dict and "kind" not in item:
                return False
    return True


def register_message_reader(reader: MessageReader) -> None:
    """Make `reader` the one that reads provider-shaped messages (translation does, on
    import)."""
    _readers[:] = [reader]


def _reader() -> MessageReader:
    if not _readers:
        raise ValidationFailed(
            "provider-shaped messages are read by loremaster.translation: import loremaster"
        )
    return _readers[0]


def _needs_reading(messages: Sequence[Any], source: Any) -> bool:
    return source is not None or any(
        type(message) is dict and not is_neutral_message(message) for message in messages
    )


def read_message_groups(
    messages: Sequence[Any], source: Any = None, path: str | None = ""
) -> list[list[Any]]:
    """For each message, what it is in the neutral form (see `MessageReader`)."""
    if not _needs_reading(messages, source):
        return [[message] for message in messages]
    return _reader()(messages, source, path)


def read_messages(messages: list[Any], source: Any = None, path: str | None = "") -> list[Any]:
    """`messages` with each provider-shaped one read into the neutral messages it holds;
    the same list when every one is neutral already."""
    if not _needs_reading(messages, source):
        return messages
    return [message for group in _reader()(messages, source, path) for message in group]


def validate_message_list(
    value: Any, handler: Callable[[Any], list[Message]], source: Any, path: str
) -> list[Message]:
    """A list of messages as a pydantic wrap validator validates it: as neutral messages
    first, so they pay nothing more; only when that fails are the provider-shaped ones
    read (`source`: the provider forced) and the list validated again."""
    token = _IN_LIST.set(True)
    try:
        return handler(value)
    except ValidationError:
        if not isinstance(value, list) or not _needs_reading(value, source):
            raise
    finally:
        _IN_LIST.reset(token)
    return handler(read_messages(value, source, path))


def source_of(context: Any) -> Any:
    """The source named in a pydantic validation context (`SOURCE_KEY`), if any."""
    return context.get(SOURCE_KEY) if isinstance(context, dict) else None


def _read_one(value: dict[str, Any], source: Any) -> dict[str, Any]:
    """The fields of the one neutral message a provider's message is."""
    (group,) = _reader()([value], source, None)
    if len(group) != 1:
        raise ValidationFailed(
            "one message was asked for, and this provider message is several",
            [
                Issue(
                    "",
                    f"it holds {len(group)} neutral messages (a tool message per tool "
                    "result): pass it where a list of messages goes",
                    "message.several",
                )
            ],
        )
    return dict(group[0])


class MessageList(list[Message]):
    """Messages as `get_messages` returns them: a list, which also says whether it was
    served from a cache while the database was unavailable (`stale`)."""

    def __init__(self, messages: Iterable[Message] = (), *, stale: bool = False) -> None:
        super().__init__(messages)
        self.stale = stale
