"""`Codec`: serialize, compress, seal; and the reverse, checking everything on the way."""

from __future__ import annotations

import asyncio
import threading
import time
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import zstandard

from ..config import Settings
from ..errors import ConfigurationError, PayloadTooLarge, UnsupportedFormat, UntrustedPayload
from ._auto import choose
from ._compression import DEFAULT_LEVELS, compress, decompress
from ._envelope import Compression, Format, Header, open_envelope, seal
from ._formats import deserialize, serialize

__all__ = ["Codec", "CodecStats", "inspect_blob", "train_dictionary"]

ASYNC_THRESHOLD = 64 * 1024
_POOL = ThreadPoolExecutor(max_workers=4, thread_name_prefix="loremaster-codec")


def _format(value: Format | str) -> Format:
    try:
        return value if isinstance(value, Format) else Format[value.upper()]
    except KeyError as exc:
        raise UnsupportedFormat(f"unknown serialization format {value!r}") from exc


def _compression(value: Compression | str) -> Compression | None:
    """None stands for "auto"."""
    if isinstance(value, Compression):
        return value
    if value == "auto":
        return None
    try:
        return Compression[value.upper()]
    except KeyError as exc:
        raise UnsupportedFormat(f"unknown compression {value!r}") from exc


@dataclass
class CodecStats:
    """Bytes in and out per algorithm, for `get_performance_stats`."""

    encoded: int = 0
    decoded: int = 0
    bytes_in: int = 0
    bytes_out: int = 0
    seconds: float = 0.0

    def summary(self) -> dict[str, Any]:
        return {
            "encoded": self.encoded,
            "decoded": self.decoded,
            "serialized_bytes": self.bytes_in,
            "stored_bytes": self.bytes_out,
            "ratio": round(self.bytes_out / self.bytes_in, 4) if self.bytes_in else None,
            "seconds": round(self.seconds, 4),
        }


class Codec:
    """Encodes values into self-describing blobs and decodes them back.

    >>> codec = Codec(format="msgpack", compression="auto")
    >>> codec.decode(codec.encode({"quest": "Dragon's Lair"}))
    {'quest': "Dragon's Lair"}

    Pickle needs a `secret`: pickled blobs are HMAC-SHA256 signed with it, and a pickle blob
    without a valid signature is refused before anything is unpickled.
    """

    def __init__(
        self,
        *,
        format: Format | str = Format.MSGPACK,
        compression: Compression | str = "auto",
        level: int | None = None,
        secret: bytes | str | None = None,
        max_size: int = 10 * 1024 * 1024,
        checksum: bool = True,
        dictionaries: Mapping[int, bytes] | None = None,
        dictionary_for: Mapping[str, int] | None = None,
    ) -> None:
        self.secret = secret.encode() if isinstance(secret, str) else secret
        self.format = _format(format)
        self.compression = _compression(compression)
        self.level = level
        self.max_size = max_size
        self.checksum = checksum
        self._dictionaries: dict[int, zstandard.ZstdCompressionDict] = {}
        self.dictionary_for: dict[str, int] = dict(dictionary_for or {})
        for dictionary_id, data in (dictionaries or {}).items():
            self.add_dictionary(dictionary_id, data)
        self._stats: dict[str, CodecStats] = defaultdict(CodecStats)
        self._lock = threading.Lock()
        if self.format is Format.PICKLE and self.secret is None:
            raise ConfigurationError("pickle needs a secret (CONTEXT_CODEC_SECRET) to sign with")

    @classmethod
    def from_settings(cls, settings: Settings) -> Codec:
        secret = settings.codec_secret.get_secret_value() if settings.codec_secret else None
        return cls(
            format=settings.serialization_format,
            compression=settings.compression_algorithm if settings.enable_compression else "none",
            secret=secret,
            max_size=settings.max_size_bytes,
        )

    # -- dictionaries --------------------------------------------------------------------

    def add_dictionary(self, dictionary_id: int, data: bytes) -> None:
        if not 0 < dictionary_id < 2**32:
            raise UnsupportedFormat(f"dictionary ids are 1 to 2**32-1, not {dictionary_id}")
        self._dictionaries[dictionary_id] = zstandard.ZstdCompressionDict(data)

    def _dictionary(self, dictionary_id: int) -> zstandard.ZstdCompressionDict:
        try:
            return self._dictionaries[dictionary_id]
        except KeyError as exc:
            raise UnsupportedFormat(f"zstd dictionary {dictionary_id} is not loaded") from exc

    # -- encoding ------------------------------------------------------------------------

    def encode(
        self,
        value: Any,
        format: Format | str | None = None,
        compression: Compression | str | None = None,
        level: int | None = None,
        *,
        dictionary_id: int | None = None,
        kind: str | None = None,
    ) -> bytes:
        """A blob holding `value`. `kind` (a context type) picks that type's dictionary."""
        started = time.perf_counter()
        fmt = self.format if format is None else _format(format)
        if fmt is Format.PICKLE and self.secret is None:
            raise ConfigurationError("pickle needs a secret (CONTEXT_CODEC_SECRET) to sign with")
        payload = serialize(value, fmt)
        if len(payload) > self.max_size:
            raise PayloadTooLarge(len(payload), self.max_size)
        if compression is None:
            algorithm = self.compression
            level = self.level if level is None else level
        else:
            algorithm = _compression(compression)
        if dictionary_id is None and kind is not None:
            dictionary_id = self.dictionary_for.get(kind)
        dictionary = None if dictionary_id is None else self._dictionary(dictionary_id)
        if algorithm is None:
            algorithm, auto_level, use_dictionary = choose(payload, dictionary)
            level = auto_level if level is None else level
            if not use_dictionary:
                dictionary = None
        if level is None:
            level = DEFAULT_LEVELS[algorithm]
        if algorithm is not Compression.ZSTD:
            dictionary = None
        body = compress(payload, algorithm, level, dictionary)
        blob = seal(
            body,
            fmt=fmt,
            compression=algorithm,
            serialized_size=len(payload),
            dictionary_id=dictionary_id if dictionary is not None and dictionary_id else 0,
            checksum=self.checksum,
            secret=self.secret if fmt is Format.PICKLE else None,
        )
        self._count(algorithm, len(payload), len(blob), time.perf_counter() - started, True)
        return blob

    def decode(self, blob: bytes | bytearray | memoryview) -> Any:
        """The value in `blob`. Raises `DataCorrupted`, `UnsupportedFormat`,
        `UntrustedPayload` or `PayloadTooLarge` for anything but an intact blob."""
        started = time.perf_counter()
        data = bytes(blob)
        header, body = open_envelope(data, secret=self.secret)
        if header.format is Format.PICKLE and not header.signed:
            raise UntrustedPayload("unsigned pickle refused: it could run arbitrary code")
        dictionary = self._dictionary(header.dictionary_id) if header.dictionary_id else None
        payload = decompress(
            bytes(body),
            header.compression,
            expected_size=header.serialized_size,
            limit=self.max_size,
            dictionary=dictionary,
        )
        value = deserialize(payload, header.format)
        self._count(
            header.compression, len(payload), len(data), time.perf_counter() - started, False
        )
        return value

    # -- async and batches ---------------------------------------------------------------

    async def encode_async(self, value: Any, **options: Any) -> bytes:
        """`encode`, in a worker thread when the value is large, so the event loop never
        blocks on it. Size is judged by a cheap serialization-free estimate."""
        if _rough_size(value) < ASYNC_THRESHOLD:
            return self.encode(value, **options)
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(_POOL, lambda: self.encode(value, **options))

    async def decode_async(self, blob: bytes) -> Any:
        if len(blob) < ASYNC_THRESHOLD:
            return self.decode(blob)
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(_POOL, self.decode, blob)

    def encode_many(self, values: Iterable[Any], **options: Any) -> list[bytes]:
        return [self.encode(value, **options) for value in values]

    def decode_many(self, blobs: Iterable[bytes]) -> list[Any]:
        return [self.decode(blob) for blob in blobs]

    # -- figures -------------------------------------------------------------------------

    def _count(
        self, algorithm: Compression, serialized: int, stored: int, seconds: float, encoding: bool
    ) -> None:
        with self._lock:
            entry = self._stats[algorithm.name.lower()]
            if encoding:
                entry.encoded += 1
                entry.bytes_in += serialized
                entry.bytes_out += stored
            else:
                entry.decoded += 1
            entry.seconds += seconds

    def stats(self) -> dict[str, dict[str, Any]]:
        with self._lock:
            return {name: entry.summary() for name, entry in sorted(self._stats.items())}


def _rough_size(value: Any) -> int:
    if isinstance(value, (bytes, bytearray, memoryview, str)):
        return len(value)
    if isinstance(value, Mapping):
        return sum(_rough_size(k) + _rough_size(v) for k, v in list(value.items())[:1000]) + 8
    if isinstance(value, Sequence):
        return sum(_rough_size(item) for item in list(value)[:1000]) + 8
    return 16


def inspect_blob(blob: bytes) -> Header:
    """The header of `blob` (magic, version and checksum checked; the signature is not)."""
    header, _ = open_envelope(blob, secret=None, verify_signature=False)
    return header


def train_dictionary(samples: Sequence[bytes], size: int = 16 * 1024) -> bytes:
    """A zstd dictionary trained on `samples` (serialized payloads of one kind)."""
    if len(samples) < 8:
        raise UnsupportedFormat("training a dictionary needs at least 8 samples")
    try:
        return bytes(zstandard.train_dictionary(size, list(samples)).as_bytes())
    except zstandard.ZstdError as exc:
        raise UnsupportedFormat(f"could not train a dictionary: {exc}") from exc
