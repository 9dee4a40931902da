"""Token counts, offline: exact for OpenAI's encodings, calibrated estimates otherwise.

Text is counted with OpenAI's ``o200k_base`` or ``cl100k_base`` encoding, whose data ships
inside the ``quicktok-v1`` wheel (checked byte for byte against OpenAI's published files
and token for token against ``tiktoken`` in the tests), so nothing is downloaded. For
OpenAI models that count is exact; for Claude and Gemini it is scaled by the model's
`token_factor` and rounded up, an estimate meant to err high. Message framing, images,
documents and tool definitions follow the providers' published rules, all estimates.
"""

from __future__ import annotations

import base64
import binascii
import functools
import math
import re
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, assert_never

import orjson
import quicktok

from ..models import (
    DocumentPart,
    ImagePart,
    Message,
    Part,
    ProviderType,
    TextPart,
    ThinkingPart,
    ToolCallPart,
    ToolResultPart,
)
from ._registry import ModelInfo

__all__ = [
    "TokenCount",
    "count_message",
    "count_messages",
    "count_text",
    "count_tools",
    "image_size",
]

# (per message, per request: the reply's priming, per tool definition, when tools are given)
_FRAMING: dict[ProviderType, tuple[int, int, int, int]] = {
    ProviderType.OPENAI: (3, 3, 8, 12),
    ProviderType.ANTHROPIC: (4, 3, 8, 346),
    ProviderType.GOOGLE: (3, 3, 8, 0),
}
_PER_CALL = 3
_PDF_PAGE_TOKENS = {
    ProviderType.OPENAI: 1_000,
    ProviderType.ANTHROPIC: 2_000,
    ProviderType.GOOGLE: 258,
}
_UNKNOWN_IMAGE_TOKENS = {
    ProviderType.OPENAI: 765,
    ProviderType.ANTHROPIC: 1_600,
    ProviderType.GOOGLE: 1_032,
}
_PDF_PAGE = re.compile(rb"/Type\s*/Page(?![a-zA-Z])")


@dataclass(frozen=True, slots=True)
class TokenCount:
    """Tokens of a request: each message, the tool definitions, and the total (framing
    included). `exact` is True only when every figure is exact: OpenAI, text alone."""

    total: int
    messages: tuple[int, ...]
    tools: int
    exact: bool


@functools.cache
def _encoding(name: str) -> Any:
    return quicktok.get_encoding(name)


def count_text(text: str, model: ModelInfo) -> int:
    """Tokens of a text for the model: exact with factor 1, else rounded up."""
    if not text:
        return 0
    count: int = _encoding(model.encoding).count(text)
    return count if model.token_factor == 1 else math.ceil(count * model.token_factor)


def count_message(message: Message, model: ModelInfo) -> int:
    per_message = _FRAMING[model.provider][0]
    name = count_text(message.name, model) + 1 if message.name else 0
    return per_message + name + sum(_count_part(part, model) for part in message.parts)


def count_messages(
    messages: Sequence[Message],
    model: ModelInfo,
    tools: Sequence[Mapping[str, Any]] = (),
) -> TokenCount:
    counts = tuple(count_message(message, model) for message in messages)
    tool_tokens = count_tools(tools, model)
    exact = (
        model.provider is ProviderType.OPENAI
        and not tools
        and all(isinstance(part, TextPart) for message in messages for part in message.parts)
    )
    total = sum(counts) + tool_tokens + _FRAMING[model.provider][1]
    return TokenCount(total, counts, tool_tokens, exact)


def count_tools(tools: Sequence[Mapping[str, Any]], model: ModelInfo) -> int:
    """Tool definitions, in any provider's shape: name, description and the JSON Schema
    of the parameters (``parameters``, ``input_schema`` or OpenAI's ``function``)."""
    if not tools:
        return 0
    _, _, per_tool, fixed = _FRAMING[model.provider]
    total = fixed
    for tool in tools:
        definition = tool.get("function", tool)
        schema = definition.get("parameters", definition.get("input_schema", {}))
        total += per_tool + count_text(str(definition.get("name", "")), model)
        total += count_text(str(definition.get("description", "")), model)
        total += count_text(orjson.dumps(schema).decode(), model)
    return total


def _count_part(part: Part, model: ModelInfo) -> int:
    match part:
        case TextPart() | ThinkingPart():
            return count_text(part.text, model)
        case ImagePart():
            return _image_tokens(part, model.provider)
        case DocumentPart():
            return _document_tokens(part, model)
        case ToolCallPart():
            arguments = orjson.dumps(part.arguments).decode()
            return _PER_CALL + count_text(part.name, model) + count_text(arguments, model)
        case ToolResultPart():
            return _PER_CALL + sum(_count_part(item, model) for item in part.content)
        case _:
            assert_never(part)


def _decoded(data: str | None) -> bytes:
    try:
        return base64.b64decode(data or "")
    except binascii.Error:
        return b""


def _image_tokens(part: ImagePart, provider: ProviderType) -> int:
    size = image_size(_decoded(part.data)) if part.data is not None else None
    if size is None:
        return (
            85
            if part.detail == "low" and provider is ProviderType.OPENAI
            else _UNKNOWN_IMAGE_TOKENS[provider]
        )
    width, height = size
    match provider:
        case ProviderType.OPENAI:
            return _openai_image(width, height, part.detail)
        case ProviderType.ANTHROPIC:
            return _claude_image(width, height)
        case ProviderType.GOOGLE:
            return _gemini_image(width, height)
        case _:
            assert_never(provider)


def _openai_image(width: int, height: int, detail: str | None) -> int:
    """OpenAI's published rule for GPT-4o: 85 at low detail; else scaled into 2048x2048,
    the short side to 768, and 170 per 512-pixel tile on top of 85."""
    if detail == "low":
        return 85
    fitted = min(1.0, 2048 / max(width, height))
    wide, high = width * fitted, height * fitted
    scale = min(1.0, 768 / min(wide, high))
    tiles = math.ceil(wide * scale / 512) * math.ceil(high * scale / 512)
    return 85 + 170 * tiles


def _claude_image(width: int, height: int) -> int:
    """Anthropic's rule: width x height / 750 after the image is scaled to a long side of
    at most 1568 pixels and at most 1.15 megapixels."""
    scale = min(1.0, 1568 / max(width, height), math.sqrt(1_150_000 / (width * height)))
    return math.ceil(width * scale * height * scale / 750)


def _gemini_image(width: int, height: int) -> int:
    """Google's rule: 258 for an image within 384x384, else 258 per 768x768 tile."""
    if width <= 384 and height <= 384:
        return 258
    return 258 * math.ceil(width / 768) * math.ceil(height / 768)


def _document_tokens(part: DocumentPart, model: ModelInfo) -> int:
    data = _decoded(part.data) if part.data is not None else b""
    if part.media_type and part.media_type.startswith("text/"):
        return count_text(data.decode(errors="replace"), model)
    pages = max(1, len(_PDF_PAGE.findall(data)))
    return pages * _PDF_PAGE_TOKENS[model.provider]


def image_size(data: bytes) -> tuple[int, int] | None:
    """Width and height from a PNG, GIF, JPEG or WebP header, without decoding pixels."""
    if data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) >= 24:
        width, height = struct.unpack(">II", data[16:24])
        return width, height
    if data[:6] in (b"GIF87a", b"GIF89a") and len(data) >= 10:
        width, height = struct.unpack("<HH", data[6:10])
        return width, height
    if data.startswith(b"\xff\xd8"):
        return _jpeg_size(data)
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return _webp_size(data)
    return None


def _jpeg_size(data: bytes) -> tuple[int, int] | None:
    offset = 2
    while offset + 9 <= len(data) and data[offset] == 0xFF:
        marker = data[offset + 1]
        length = struct.unpack(">H", data[offset + 2 : offset + 4])[0]
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            height, width = struct.unpack(">HH", data[offset + 5 : offset + 9])
            return width, height
        offset += 2 + length
    return None


def _webp_size(data: bytes) -> tuple[int, int] | None:
    chunk = data[12:16]
    if chunk == b"VP8X" and len(data) >= 30:
        return 1 + int.from_bytes(data[24:27], "little"), 1 + int.from_bytes(data[27:30], "little")
    if chunk == b"VP8 " and len(data) >= 30:
        width, height = struct.unpack("<HH", data[26:30])
        return width & 0x3FFF, height & 0x3FFF
    if chunk == b"VP8L" and len(data) >= 25:
        bits = int.from_bytes(data[21:25], "little")
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    return None
