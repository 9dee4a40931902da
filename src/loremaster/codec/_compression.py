"""The compression algorithms, with levels, and decompression that cannot explode.

Every decompressor is told the most it may produce: a blob that claims, or turns out, to be
larger than that is refused before the memory is spent.
"""

from __future__ import annotations

import io
import threading
import zlib
from collections.abc import Callable
from typing import TypeVar

import brotli
import lz4.frame
import zstandard

from ..errors import DataCorrupted, PayloadTooLarge, UnsupportedFormat
from ._envelope import Compression

__all__ = ["DEFAULT_LEVELS", "LEVELS", "compress", "decompress", "zstd_compressor"]

LEVELS: dict[Compression, range] = {
    Compression.NONE: range(0, 1),
    Compression.GZIP: range(1, 10),
    Compression.LZ4: range(0, 17),
    Compression.ZSTD: range(-5, 23),
    Compression.BROTLI: range(0, 12),
}
DEFAULT_LEVELS: dict[Compression, int] = {
    Compression.NONE: 0,
    Compression.GZIP: 6,
    Compression.LZ4: 0,
    Compression.ZSTD: 3,
    Compression.BROTLI: 4,
}


T = TypeVar("T")
_local = threading.local()


def _cached(kind: str, key: tuple[int, ...], dictionary: object, make: Callable[[], T]) -> T:
    """One zstd (de)compressor per thread and settings: making one costs more than
    compressing a small payload, and they must not be shared between threads. The cache
    holds the dictionary too, so its id cannot be reused by another while cached."""
    cache: dict[tuple[int, ...], tuple[object, T]] = _local.__dict__.setdefault(kind, {})
    entry = cache.get(key)
    if entry is None or entry[0] is not dictionary:
        entry = cache[key] = (dictionary, make())
    return entry[1]


def zstd_compressor(
    level: int, dictionary: zstandard.ZstdCompressionDict | None
) -> zstandard.ZstdCompressor:
    return _cached(
        "compressors",
        (level, id(dictionary)),
        dictionary,
        lambda: zstandard.ZstdCompressor(level=level, dict_data=dictionary),
    )


def _zstd_decompressor(
    dictionary: zstandard.ZstdCompressionDict | None,
) -> zstandard.ZstdDecompressor:
    return _cached(
        "decompressors",
        (id(dictionary),),
        dictionary,
        lambda: zstandard.ZstdDecompressor(dict_data=dictionary),
    )


def compress(
    data: bytes,
    algorithm: Compression,
    level: int,
    dictionary: zstandard.ZstdCompressionDict | None = None,
) -> bytes:
    if level not in LEVELS[algorithm]:
        raise UnsupportedFormat(
            f"{algorithm.name.lower()} takes levels {LEVELS[algorithm].start} to "
            f"{LEVELS[algorithm].stop - 1}, not {level}"
        )
    if dictionary is not None and algorithm is not Compression.ZSTD:
        raise UnsupportedFormat("dictionaries work with zstd only")
    if algorithm is Compression.NONE:
        return data
    if algorithm is Compression.GZIP:
        packer = zlib.compressobj(level, zlib.DEFLATED, 31)
        return packer.compress(data) + packer.flush()
    if algorithm is Compression.LZ4:
        packed: bytes = lz4.frame.compress(data, compression_level=level)
        return packed
    if algorithm is Compression.ZSTD:
        return zstd_compressor(level, dictionary).compress(data)
    if algorithm is Compression.BROTLI:
        packed = brotli.compress(data, quality=level)
        return packed
    raise UnsupportedFormat(f"unknown compression {algorithm!r}")  # pragma: no cover


def _gunzip(body: bytes, limit: int) -> tuple[bytes, bool]:
    unpacker = zlib.decompressobj(31)
    out = unpacker.decompress(body, limit + 1)
    return out, unpacker.eof and not unpacker.unconsumed_tail


def _unlz4(body: bytes, limit: int) -> tuple[bytes, bool]:
    unpacker = lz4.frame.LZ4FrameDecompressor()
    out: bytes = unpacker.decompress(body, max_length=limit + 1)
    return out, bool(unpacker.eof)


def _unbrotli(body: bytes, limit: int) -> tuple[bytes, bool]:
    unpacker = brotli.Decompressor()
    out: bytes = unpacker.process(body, output_buffer_limit=limit + 1)
    return out, bool(unpacker.is_finished())


def decompress(
    body: bytes,
    algorithm: Compression,
    *,
    expected_size: int,
    limit: int,
    dictionary: zstandard.ZstdCompressionDict | None = None,
) -> bytes:
    """Decompress `body` to exactly `expected_size` bytes, never more than `limit`."""
    if expected_size > limit:
        raise PayloadTooLarge(expected_size, limit)
    if algorithm is Compression.NONE:
        out, complete = body, True
    else:
        cap = expected_size
        try:
            if algorithm is Compression.ZSTD:
                reader = _zstd_decompressor(dictionary).stream_reader(
                    io.BytesIO(body), read_across_frames=False
                )
                out = reader.read(cap + 1)
                complete = True
            else:
                unpack: dict[Compression, Callable[[bytes, int], tuple[bytes, bool]]] = {
                    Compression.GZIP: _gunzip,
                    Compression.LZ4: _unlz4,
                    Compression.BROTLI: _unbrotli,
                }
                out, complete = unpack[algorithm](body, cap)
        except (zlib.error, zstandard.ZstdError, RuntimeError, brotli.error, ValueError) as exc:
            raise DataCorrupted(
                f"{algorithm.name.lower()} data does not decompress: {exc}"
            ) from exc
    if len(out) != expected_size or not complete:
        raise DataCorrupted(
            f"decompressed to {len(out)} bytes where the header says {expected_size}"
        )
    return out
