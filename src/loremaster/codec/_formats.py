"""Serialization formats: JSON (orjson), MessagePack with typed extensions, Pickle.

MessagePack brings values back with their types: datetimes (with their offset), UUIDs,
bytes and loremaster's pydantic models travel as extension types. JSON carries plain JSON
(models become objects, datetimes and UUIDs strings, bytes base64). Pickle is only ever
loaded from a blob whose signature checked out (see `_codec`).
"""

from __future__ import annotations

import base64
import pickle
import struct
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import msgpack
import orjson
from pydantic import BaseModel

from ..errors import DataCorrupted, UnsupportedFormat
from ._envelope import Format

__all__ = ["MODELS", "deserialize", "register_model", "serialize"]

_EXT_DATETIME = 1
_EXT_UUID = 2
_EXT_MODEL = 3
_DATETIME = struct.Struct(">qIi?")  # seconds, microseconds, utc offset seconds, aware

MODELS: dict[str, type[BaseModel]] = {}
"""Models MessagePack may rebuild, by name. Anything else is refused, never imported."""


def register_model(cls: type[BaseModel]) -> type[BaseModel]:
    """Let MessagePack blobs carry `cls` (usable as a decorator)."""
    MODELS[cls.__name__] = cls
    return cls


def _pack_datetime(value: datetime) -> bytes:
    """Wall-clock seconds and microseconds since 1970, the UTC offset, and awareness."""
    offset = value.utcoffset()
    moment = value.replace(tzinfo=None)
    whole = (moment - datetime(1970, 1, 1)) // timedelta(seconds=1)
    seconds = 0 if offset is None else int(offset.total_seconds())
    return _DATETIME.pack(whole, moment.microsecond, seconds, offset is not None)


def _unpack_datetime(data: bytes) -> datetime:
    whole, micros, offset, aware = _DATETIME.unpack(data)
    moment = datetime(1970, 1, 1) + timedelta(seconds=whole, microseconds=micros)
    if not aware:
        return moment
    zone = UTC if offset == 0 else timezone(timedelta(seconds=offset))
    return moment.replace(tzinfo=zone)


def _msgpack_default(value: Any) -> msgpack.ExtType:
    if isinstance(value, datetime):
        return msgpack.ExtType(_EXT_DATETIME, _pack_datetime(value))
    if isinstance(value, uuid.UUID):
        return msgpack.ExtType(_EXT_UUID, value.bytes)
    if isinstance(value, BaseModel):
        name = type(value).__name__
        if MODELS.get(name) is not type(value):
            raise UnsupportedFormat(f"model {name} is not registered for MessagePack")
        return msgpack.ExtType(_EXT_MODEL, _msgpack_dumps([name, value.model_dump()]))
    raise UnsupportedFormat(f"cannot encode a {type(value).__name__} with MessagePack")


def _msgpack_ext(code: int, data: bytes) -> Any:
    if code == _EXT_DATETIME:
        return _unpack_datetime(data)
    if code == _EXT_UUID:
        return uuid.UUID(bytes=data)
    if code == _EXT_MODEL:
        name, fields = _msgpack_loads(data)
        cls = MODELS.get(name)
        if cls is None:
            raise UnsupportedFormat(f"unknown model {name!r} in blob")
        return cls.model_validate(fields)
    raise UnsupportedFormat(f"unknown MessagePack extension {code}")


def _msgpack_dumps(value: Any) -> bytes:
    packed: bytes = msgpack.packb(
        value, default=_msgpack_default, use_bin_type=True, datetime=False
    )
    return packed


def _msgpack_loads(data: bytes) -> Any:
    return msgpack.unpackb(data, ext_hook=_msgpack_ext, raw=False, strict_map_key=False)


def _json_default(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, (bytes, bytearray, memoryview)):
        return base64.b64encode(bytes(value)).decode()
    if isinstance(value, (set, frozenset)):
        return list(value)
    raise TypeError(f"cannot encode a {type(value).__name__} as JSON")


def _json_dumps(value: Any) -> bytes:
    return orjson.dumps(value, default=_json_default, option=orjson.OPT_NON_STR_KEYS)


def _raw(value: Any) -> bytes:
    if not isinstance(value, (bytes, bytearray, memoryview)):
        raise TypeError(f"the raw format takes bytes, not {type(value).__name__}")
    return bytes(value)


def _pickle_dumps(value: Any) -> bytes:
    return pickle.dumps(value, protocol=5)


def _pickle_loads(data: bytes) -> Any:
    return pickle.loads(data)


_SERIALIZERS: dict[Format, Callable[[Any], bytes]] = {
    Format.JSON: _json_dumps,
    Format.MSGPACK: _msgpack_dumps,
    Format.PICKLE: _pickle_dumps,
    Format.RAW: _raw,
}
_DESERIALIZERS: dict[Format, Callable[[bytes], Any]] = {
    Format.JSON: orjson.loads,
    Format.MSGPACK: _msgpack_loads,
    Format.PICKLE: _pickle_loads,
    Format.RAW: bytes,
}


def serialize(value: Any, fmt: Format) -> bytes:
    try:
        return _SERIALIZERS[fmt](value)
    except (TypeError, OverflowError, ValueError, pickle.PicklingError) as exc:
        raise UnsupportedFormat(f"cannot encode this value as {fmt.name.lower()}: {exc}") from exc


def deserialize(data: bytes, fmt: Format) -> Any:
    try:
        return _DESERIALIZERS[fmt](data)
    except UnsupportedFormat:
        raise
    except Exception as exc:  # every decoder error is corruption of the stored bytes
        raise DataCorrupted(f"{fmt.name.lower()} payload does not decode: {exc}") from exc
