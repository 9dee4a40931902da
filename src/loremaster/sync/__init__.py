"""Synchronization: merging concurrent changes, deciding stale updates, following a
context live, and presence.

    from loremaster.sync import three_way_merge

    result = three_way_merge({"hp": 10}, {"hp": 8}, {"hp": 10, "mp": 3})
    assert result.merged == {"hp": 8, "mp": 3} and result.clean

The merges, the conflict strategies and the changes (`Lock`, `Release`, `Join`, `Leave`,
`Settle`, `Resolve`) are pure: the manager's writer runs them inside its transactions.
The I/O shells: `follow`, the presence trackers, `Live` (the bus, presence and keeping
row caches coherent between processes), `RecordCache`, `SharedRows` (the Redis L2 cache)
and `StaleBase` (what a stale update is merged against).
"""

from ._cache import RecordCache
from ._conflicts import HistoryMoved, Resolve, Settle, conflict_model, parse_strategy, policy_for
from ._follow import SNAPSHOT_OP, EventStream, LoadEvents, LoadSnapshot, follow, snapshot_event
from ._live import Live
from ._locks import Lock, Release, check_lease, lock_model
from ._merge import (
    MISSING,
    Side,
    ThreeWayConflict,
    ThreeWayMerge,
    apply_choices,
    three_way_merge,
)
from ._presence import MemoryPresence, PresenceEntry, PresenceTracker
from ._redis_presence import RedisPresence
from ._rooms import Join, Leave
from ._shared_rows import SharedRows
from ._stale import StaleBase, VersionDocuments
from ._strategies import (
    ConflictPolicy,
    ConflictStrategy,
    PathChange,
    PendingConflict,
    Resolved,
    UpdateOrigin,
    resolve_update,
)

__all__ = [
    "MISSING",
    "SNAPSHOT_OP",
    "ConflictPolicy",
    "ConflictStrategy",
    "EventStream",
    "HistoryMoved",
    "Join",
    "Leave",
    "Live",
    "LoadEvents",
    "LoadSnapshot",
    "Lock",
    "MemoryPresence",
    "PathChange",
    "PendingConflict",
    "PresenceEntry",
    "PresenceTracker",
    "RecordCache",
    "RedisPresence",
    "Release",
    "Resolve",
    "Resolved",
    "Settle",
    "SharedRows",
    "Side",
    "StaleBase",
    "ThreeWayConflict",
    "ThreeWayMerge",
    "UpdateOrigin",
    "VersionDocuments",
    "apply_choices",
    "check_lease",
    "conflict_model",
    "follow",
    "lock_model",
    "parse_strategy",
    "policy_for",
    "resolve_update",
    "snapshot_event",
    "three_way_merge",
]
