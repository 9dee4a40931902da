"""Serialization and compression: self-describing, safe, automatic, fast.

    from loremaster.codec import encode, decode

    blob = encode({"quest": "Dragon's Lair"})            # defaults from CONTEXT_* settings
    assert decode(blob) == {"quest": "Dragon's Lair"}     # no arguments: the blob says how

Every blob starts with an envelope (docs/codec.md): magic, version, format, compression,
dictionary id, flags, sizes, a CRC-32 and, for pickle, an HMAC-SHA256 signature.
"""

from __future__ import annotations

import functools
from typing import Any

from ..config import Settings
from ._codec import ASYNC_THRESHOLD, Codec, CodecStats, inspect_blob, train_dictionary
from ._compression import DEFAULT_LEVELS, LEVELS
from ._envelope import Compression, Format, Header
from ._formats import register_model

__all__ = [
    "ASYNC_THRESHOLD",
    "DEFAULT_LEVELS",
    "LEVELS",
    "Codec",
    "CodecStats",
    "Compression",
    "Format",
    "Header",
    "decode",
    "decode_async",
    "decode_many",
    "default_codec",
    "encode",
    "encode_async",
    "encode_many",
    "inspect_blob",
    "register_model",
    "train_dictionary",
]


@functools.cache
def default_codec() -> Codec:
    """The codec configured by the environment (CONTEXT_SERIALIZATION_FORMAT, ...)."""
    return Codec.from_settings(Settings())


def encode(
    value: Any,
    format: Format | str | None = None,
    compression: Compression | str | None = None,
    level: int | None = None,
) -> bytes:
    return default_codec().encode(value, format, compression, level)


def decode(blob: bytes) -> Any:
    return default_codec().decode(blob)


async def encode_async(value: Any, **options: Any) -> bytes:
    return await default_codec().encode_async(value, **options)


async def decode_async(blob: bytes) -> Any:
    return await default_codec().decode_async(blob)


def encode_many(values: list[Any], **options: Any) -> list[bytes]:
    return default_codec().encode_many(values, **options)


def decode_many(blobs: list[bytes]) -> list[Any]:
    return default_codec().decode_many(blobs)


def _register_models() -> None:
    from .. import models

    for name in models.__all__:
        candidate = getattr(models, name)
        if isinstance(candidate, type) and hasattr(candidate, "model_fields"):
            register_model(candidate)


_register_models()
