"""`compression="auto"`: store small or incompressible payloads raw, compress the rest.

The rule, and the measurements behind it (benchmarks/bench_codec.py, docs/codec.md):
- below 256 bytes the envelope and frame overhead eat the gain: raw;
- otherwise zstd level 1 compresses a sample (the whole payload up to 48 KiB, else three
  16 KiB slices from its start, middle and end); if that saves less than 12.5% — already
  compressed images, random ids, encrypted data — the payload is stored raw (ZFS uses the
  same 12.5% bar);
- everything else goes to zstd level 3. On chat JSON zstd-3 gives the best size of every
  algorithm and level that keeps above 100 MB/s, and lz4 saves only about half as much;
- with a trained dictionary for the payload's kind, payloads from 32 bytes to 64 KiB are
  tried with it (a dictionary is what makes small payloads compress) and use it when that
  saves 12.5%.
"""

from __future__ import annotations

import zstandard

from ._compression import zstd_compressor
from ._envelope import Compression

__all__ = ["RAW_BELOW", "choose", "worth_compressing"]

RAW_BELOW = 256
DICTIONARY_FROM = 32
DICTIONARY_UP_TO = 64 * 1024
_SLICE = 16 * 1024
_MIN_SAVING = 0.125


def _sample(data: bytes) -> bytes:
    if len(data) <= 3 * _SLICE:
        return data
    middle = len(data) // 2
    return data[:_SLICE] + data[middle : middle + _SLICE] + data[-_SLICE:]


def worth_compressing(data: bytes) -> bool:
    if len(data) < RAW_BELOW:
        return False
    sample = _sample(data)
    return _saves_enough(len(sample), len(zstd_compressor(1, None).compress(sample)))


def _saves_enough(original: int, compressed: int) -> bool:
    return compressed <= (1 - _MIN_SAVING) * original


def choose(
    data: bytes, dictionary: zstandard.ZstdCompressionDict | None = None
) -> tuple[Compression, int, bool]:
    """(algorithm, level, use the dictionary) for `data`."""
    if dictionary is not None and DICTIONARY_FROM <= len(data) <= DICTIONARY_UP_TO:
        trial = zstd_compressor(3, dictionary).compress(data)
        if _saves_enough(len(data), len(trial)):
            return Compression.ZSTD, 3, True
    if not worth_compressing(data):
        return Compression.NONE, 0, False
    return Compression.ZSTD, 3, False
