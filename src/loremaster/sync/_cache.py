"""A per-process LRU of stored rows: checked against storage on every read, or, while
every committed change is heard (Redis), dropped when one is and trusted in between."""

from __future__ import annotations

import time
from collections import OrderedDict

from ..storage import ContextRecord

__all__ = ["RecordCache"]


class RecordCache:
    """Rows by context id. A reader asks storage whether the cached (revision,
    last_modified) is current, so the cache can never serve a stale row, even with other
    processes writing, or a context deleted and created again under the same id."""

    def __init__(self, size: int, ttl_seconds: float) -> None:
        self._size = size
        self._ttl = ttl_seconds
        self._entries: OrderedDict[str, tuple[float, ContextRecord]] = OrderedDict()
        self._floors: OrderedDict[str, int] = OrderedDict()
        """The latest revision heard of per context: an older row is never cached."""

    def get(self, context_id: str) -> ContextRecord | None:
        """The cached row, unless it has outlived CONTEXT_CACHE_TTL."""
        entry = self._entries.get(context_id)
        if entry is None or time.monotonic() - entry[0] > self._ttl:
            return None
        self._entries.move_to_end(context_id)
        return entry[1]

    def last_known(self, context_id: str) -> ContextRecord | None:
        """The cached row, however old: what a read falls back on while the database is
        unavailable (an expired row stays until it is dropped or pushed out)."""
        entry = self._entries.get(context_id)
        return None if entry is None else entry[1]

    def fresh(self, context_id: str, within: float) -> ContextRecord | None:
        """The cached row if it was cached in the last `within` seconds."""
        entry = self._entries.get(context_id)
        if entry is None or time.monotonic() - entry[0] > within:
            return None
        self._entries.move_to_end(context_id)
        return entry[1]

    def put(self, record: ContextRecord) -> None:
        if self._size == 0 or record.revision < self._floors.get(record.context_id, 0):
            return
        self._entries[record.context_id] = (time.monotonic(), record)
        self._entries.move_to_end(record.context_id)
        while len(self._entries) > self._size:
            self._entries.popitem(last=False)

    def discard(self, context_id: str) -> None:
        self._entries.pop(context_id, None)

    def invalidate(self, context_id: str, revision: int) -> None:
        """Someone committed `revision`: drop an older cached row, and never cache one."""
        entry = self._entries.get(context_id)
        if entry is not None and entry[1].revision < revision:
            del self._entries[context_id]
        if revision > self._floors.get(context_id, 0):
            self._floors[context_id] = revision
            self._floors.move_to_end(context_id)
            while len(self._floors) > max(self._size, 1) * 4:
                self._floors.popitem(last=False)

    def clear(self) -> None:
        """Changes may have gone unheard: forget every row."""
        self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)
