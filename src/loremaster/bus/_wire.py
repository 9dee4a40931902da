"""How an event travels between processes: a MessagePack array, versioned.

Version 1, on the context's channel (which names the context)::

    [1, 0, revision, op, changes, user_id, created_at_us]     the event
    [1, 1, revision]                                          a notice: read it from the table
    [1, 2, revision or nil]                                   quiet: drop cached rows only

An event whose packed form is over the size limit, or that MessagePack cannot hold (an
integer beyond 64 bits), travels as a notice. A message this version cannot read becomes
a gap: the events table has the truth.
"""

from __future__ import annotations

from typing import Any

import msgpack

from ..models import ContextEvent, from_micros, to_micros
from ._subscription import Gap, GapReason

__all__ = ["pack_event", "pack_quiet", "unpack_message"]

_VERSION = 1
_EVENT = 0
_NOTICE = 1
_QUIET = 2


def pack_event(event: ContextEvent, max_bytes: int) -> bytes:
    fields = [
        _VERSION,
        _EVENT,
        event.revision,
        event.op,
        event.changes,
        event.user_id,
        to_micros(event.created_at),
    ]
    try:
        packed: bytes = msgpack.packb(fields, use_bin_type=True)
    except (TypeError, ValueError, OverflowError):
        packed = b""
    if not packed or len(packed) > max_bytes:
        packed = msgpack.packb([_VERSION, _NOTICE, event.revision], use_bin_type=True)
    return packed


def pack_quiet(revision: int | None) -> bytes:
    packed: bytes = msgpack.packb([_VERSION, _QUIET, revision], use_bin_type=True)
    return packed


def unpack_message(context_id: str, data: bytes) -> ContextEvent | Gap:
    try:
        fields: Any = msgpack.unpackb(data, raw=False)
        if not isinstance(fields, list) or fields[:1] != [_VERSION]:
            raise ValueError("not a version 1 message")
        if fields[1] == _NOTICE:
            return Gap(context_id, GapReason.NOT_SHIPPED, int(fields[2]))
        if fields[1] == _QUIET:
            revision = None if fields[2] is None else int(fields[2])
            return Gap(context_id, GapReason.QUIET, revision)
        _, _, revision, op, changes, user_id, created_us = fields
        return ContextEvent(
            context_id=context_id,
            revision=revision,
            op=op,
            changes=changes,
            user_id=user_id,
            created_at=from_micros(created_us),
        )
    except (ValueError, TypeError, IndexError):
        return Gap(context_id, GapReason.NOT_SHIPPED)
