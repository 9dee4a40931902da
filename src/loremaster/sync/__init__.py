"""Synchronization: merging concurrent changes, deciding stale updates, following a
context live, and presence.

    from loremaster.sync import three_way_merge

    result = three_way_merge({"hp": 10}, {"hp": 8}, {"hp": 10, "mp": 3})
    assert result.merged == {"hp": 8, "mp": 3} and result.clean

Everything here but `follow` and the presence trackers is pure: the manager runs it
inside its storage transaction.
"""

from ._follow import SNAPSHOT_OP, EventStream, LoadEvents, LoadSnapshot, follow, snapshot_event
from ._merge import (
    MISSING,
    MergeConflict,
    MergeResult,
    Side,
    apply_choices,
    three_way_merge,
)
from ._presence import MemoryPresence, PresenceEntry, PresenceTracker
from ._redis_presence import RedisPresence
from ._strategies import (
    Change,
    ConflictPolicy,
    ConflictStrategy,
    PendingConflict,
    Resolved,
    UpdateOrigin,
    resolve_update,
)

__all__ = [
    "MISSING",
    "SNAPSHOT_OP",
    "Change",
    "ConflictPolicy",
    "ConflictStrategy",
    "EventStream",
    "LoadEvents",
    "LoadSnapshot",
    "MemoryPresence",
    "MergeConflict",
    "MergeResult",
    "PendingConflict",
    "PresenceEntry",
    "PresenceTracker",
    "RedisPresence",
    "Resolved",
    "Side",
    "UpdateOrigin",
    "apply_choices",
    "follow",
    "resolve_update",
    "snapshot_event",
    "three_way_merge",
]
