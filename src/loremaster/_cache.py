"""A per-process LRU of stored rows, validated by revision on every read."""

from __future__ import annotations

import time
from collections import OrderedDict

from .storage import ContextRecord

__all__ = ["RecordCache"]


class RecordCache:
    """Rows by context id. A reader asks storage whether the cached (revision,
    last_modified) is current, so the cache can never serve a stale row, even with other
    processes writing, or a context deleted and created again under the same id."""

    def __init__(self, size: int, ttl_seconds: float) -> None:
        self._size = size
        self._ttl = ttl_seconds
        self._entries: OrderedDict[str, tuple[float, ContextRecord]] = OrderedDict()

    def get(self, context_id: str) -> ContextRecord | None:
        entry = self._entries.get(context_id)
        if entry is None:
            return None
        stored_at, record = entry
        if time.monotonic() - stored_at > self._ttl:
            del self._entries[context_id]
            return None
        self._entries.move_to_end(context_id)
        return record

    def put(self, record: ContextRecord) -> None:
        if self._size == 0:
            return
        self._entries[record.context_id] = (time.monotonic(), record)
        self._entries.move_to_end(record.context_id)
        while len(self._entries) > self._size:
            self._entries.popitem(last=False)

    def discard(self, context_id: str) -> None:
        self._entries.pop(context_id, None)

    def __len__(self) -> int:
        return len(self._entries)
