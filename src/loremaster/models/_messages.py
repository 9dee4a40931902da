"""The neutral message model every provider format translates to and from.

A message is a role plus a list of typed parts. Each part carries a literal ``kind`` tag;
the tags are a wire format and never change once released.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any, Literal
from uuid import uuid4

from pydantic import BaseModel, ConfigDict, Field, model_validator

from ._time import UtcDatetime, utc_now

__all__ = [
    "DocumentPart",
    "ImagePart",
    "Message",
    "MessageRole",
    "Part",
    "TextPart",
    "ThinkingPart",
    "ToolCallPart",
    "ToolResultPart",
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


class Message(BaseModel):
    """One message of a conversation.

    ``{"role": "user", "content": "text"}`` is accepted as shorthand for a single text
    part; ``content`` may also be a list of part dicts.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(default_factory=_new_message_id, min_length=1, max_length=200)
    role: MessageRole
    parts: list[Part] = Field(default_factory=list)
    name: str | None = None
    created_at: UtcDatetime = Field(default_factory=utc_now)
    metadata: dict[str, Any] = Field(default_factory=dict)
    seq: int | None = Field(None, description="position in the conversation, set by storage")

    @model_validator(mode="before")
    @classmethod
    def _accept_content_shorthand(cls, value: Any) -> Any:
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

    @property
    def text(self) -> str:
        """The message's text parts joined by blank lines."""
        return "\n\n".join(part.text for part in self.parts if isinstance(part, TextPart))
