"""The envelope every encoded blob carries, so `decode` needs no arguments.

Byte layout (big-endian)::

    offset  size  field
    0       4     magic b"\\x89LMC"
    4       1     envelope version (1)
    5       1     format id        (0 json, 1 msgpack, 2 pickle, 3 raw bytes)
    6       1     compression id   (0 none, 1 gzip, 2 lz4, 3 zstd, 4 brotli)
    7       1     flags            (bit 0: signed, bit 1: checksum)
    8       4     dictionary id    (0: none)
    12      4     serialized length (bytes before compression)
    16      4     CRC-32 of the body                      (if the checksum flag is set)
    ..      32    HMAC-SHA256 of all bytes before it and of the body   (if signed)
    ..            body: the serialized payload, compressed
"""

from __future__ import annotations

import hashlib
import hmac
import struct
import zlib
from dataclasses import dataclass
from enum import IntEnum

from ..errors import DataCorrupted, UnsupportedFormat, UntrustedPayload

__all__ = [
    "ENVELOPE_VERSION",
    "MAGIC",
    "Compression",
    "Format",
    "Header",
    "open_envelope",
    "seal",
]

MAGIC = b"\x89LMC"
ENVELOPE_VERSION = 1
_FIXED = struct.Struct(">4sBBBBII")
_SIGNED = 0x01
_CHECKSUM = 0x02
_SIGNATURE_SIZE = 32


class Format(IntEnum):
    JSON = 0
    MSGPACK = 1
    PICKLE = 2
    RAW = 3  # bytes that are already serialized (a stored message's JSON, say)


class Compression(IntEnum):
    NONE = 0
    GZIP = 1
    LZ4 = 2
    ZSTD = 3
    BROTLI = 4


@dataclass(frozen=True, slots=True)
class Header:
    version: int
    format: Format
    compression: Compression
    signed: bool
    checksum: int | None
    dictionary_id: int
    serialized_size: int
    header_size: int
    stored_size: int

    def describe(self) -> dict[str, object]:
        return {
            "envelope_version": self.version,
            "format": self.format.name.lower(),
            "compression": self.compression.name.lower(),
            "dictionary_id": self.dictionary_id or None,
            "signed": self.signed,
            "checksum": None if self.checksum is None else f"{self.checksum:08x}",
            "serialized_bytes": self.serialized_size,
            "stored_bytes": self.stored_size,
            "header_bytes": self.header_size,
        }


def _signature(secret: bytes, signed_part: bytes, body: bytes) -> bytes:
    mac = hmac.new(secret, signed_part, hashlib.sha256)
    mac.update(body)
    return mac.digest()


def seal(
    body: bytes,
    *,
    fmt: Format,
    compression: Compression,
    serialized_size: int,
    dictionary_id: int = 0,
    checksum: bool = True,
    secret: bytes | None = None,
) -> bytes:
    """The envelope around `body`, signed when a `secret` is given."""
    flags = (_CHECKSUM if checksum else 0) | (_SIGNED if secret is not None else 0)
    head = _FIXED.pack(
        MAGIC, ENVELOPE_VERSION, fmt, compression, flags, dictionary_id, serialized_size
    )
    if checksum:
        head += struct.pack(">I", zlib.crc32(body))
    if secret is not None:
        head += _signature(secret, head, body)
    return head + body


def open_envelope(
    blob: bytes, *, secret: bytes | None, verify_signature: bool = True
) -> tuple[Header, memoryview]:
    """The header and body of `blob`, after checking magic, version, checksum and (when the
    blob is signed, unless told not to) signature. Raises a typed error for anything else."""
    if len(blob) < _FIXED.size:
        raise DataCorrupted(f"blob too short for an envelope ({len(blob)} bytes)")
    magic, version, fmt, compression, flags, dictionary_id, size = _FIXED.unpack_from(blob)
    if magic != MAGIC:
        raise UnsupportedFormat("not a loremaster blob (wrong magic bytes)")
    if version != ENVELOPE_VERSION:
        raise UnsupportedFormat(f"envelope version {version} is not supported")
    try:
        parsed_format, parsed_compression = Format(fmt), Compression(compression)
    except ValueError as exc:
        raise UnsupportedFormat(f"unknown format {fmt} or compression {compression}") from exc
    if flags & ~(_SIGNED | _CHECKSUM):
        raise UnsupportedFormat(f"unknown envelope flags {flags:#04x}")
    offset = _FIXED.size
    checksum = None
    if flags & _CHECKSUM:
        if len(blob) < offset + 4:
            raise DataCorrupted("blob truncated inside its header")
        (checksum,) = struct.unpack_from(">I", blob, offset)
        offset += 4
    signature = b""
    if flags & _SIGNED:
        signature = bytes(blob[offset : offset + _SIGNATURE_SIZE])
        if len(signature) != _SIGNATURE_SIZE:
            raise DataCorrupted("blob truncated inside its signature")
        offset += _SIGNATURE_SIZE
    body = memoryview(blob)[offset:]
    if checksum is not None and zlib.crc32(body) != checksum:
        raise DataCorrupted("blob checksum mismatch: the stored bytes are damaged")
    if flags & _SIGNED and verify_signature:
        signed_part = bytes(blob[: offset - _SIGNATURE_SIZE])
        if secret is None or not hmac.compare_digest(
            signature, _signature(secret, signed_part, bytes(body))
        ):
            raise UntrustedPayload("blob signature is invalid for the configured secret")
    header = Header(
        version=version,
        format=parsed_format,
        compression=parsed_compression,
        signed=bool(flags & _SIGNED),
        checksum=checksum,
        dictionary_id=dictionary_id,
        serialized_size=size,
        header_size=offset,
        stored_size=len(blob),
    )
    return header, body
