"""Cleanup of old versions: which go, and how the versions after them are re-based.

Automatic versions (one per change) and checkpoints (versions asked for) are kept up to
limits of their own, the oldest going first; tagged versions, branch heads, fork points
and the versions merges took in never go. A
version that rested on a removed one is re-based so that it still reconstructs: on a
removed patch, its own patch is prefixed with that patch (together they lead from the
removed version's parent to it); on a removed snapshot, it becomes a snapshot itself.
Pure functions.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from ..patch import apply_stored_patch
from ..storage import VersionRecord

__all__ = ["VersionLimits", "choose_victims", "prune_plan"]


@dataclasses.dataclass(frozen=True, slots=True)
class VersionLimits:
    """How many untagged versions of each kind a context keeps."""

    automatic: int
    checkpoints: int


def choose_victims(
    versions: Sequence[VersionRecord], *, keep: Iterable[str], limits: VersionLimits
) -> list[VersionRecord]:
    """The versions to remove so that at most `limits` of each kind remain (untagged
    versions counted; those in `keep` never chosen), oldest first."""
    protected = set(keep)
    oldest_first = sorted(versions, key=lambda v: v.number)
    victims: list[VersionRecord] = []
    for automatic, limit in ((True, limits.automatic), (False, limits.checkpoints)):
        kind = [v for v in oldest_first if v.automatic is automatic and not v.tags]
        excess = len(kind) - limit
        if excess > 0:
            victims += [v for v in kind if v.version_id not in protected][:excess]
    return sorted(victims, key=lambda v: v.number)


def prune_plan(
    victims: Sequence[VersionRecord],
    children: Mapping[str, Sequence[VersionRecord]],
    *,
    decode: Callable[[VersionRecord], Any],
    encode: Callable[[Any], bytes],
) -> list[VersionRecord]:
    """The rewritten versions once `victims` (with payloads, oldest first) are removed;
    `children` maps a version id to the versions whose parent it is (with payloads)."""
    rewritten: dict[str, VersionRecord] = {}
    gone = {v.version_id for v in victims}
    current: dict[str, VersionRecord] = {}
    for listed in victims:
        removed = current.get(listed.version_id, listed)
        for original in children.get(removed.version_id, ()):
            child = current.get(original.version_id, original)
            rebased = _rebase(child, removed, decode=decode, encode=encode)
            current[child.version_id] = rebased
            if child.version_id not in gone:
                rewritten[child.version_id] = rebased
    return list(rewritten.values())


def _rebase(
    child: VersionRecord,
    removed: VersionRecord,
    *,
    decode: Callable[[VersionRecord], Any],
    encode: Callable[[Any], bytes],
) -> VersionRecord:
    # A removed merge's record of what it took in passes to the version after it.
    merged = child.merge_parent_id or removed.merge_parent_id
    if child.kind == "snapshot":
        return dataclasses.replace(child, parent_id=removed.parent_id, merge_parent_id=merged)
    if removed.kind == "snapshot":
        payload = encode(apply_stored_patch(decode(removed), decode(child)))
        kind = "snapshot"
    else:
        payload = encode([*decode(removed), *decode(child)])
        kind = "delta"
    return dataclasses.replace(
        child,
        parent_id=removed.parent_id,
        merge_parent_id=merged,
        kind=kind,
        payload=payload,
        size_bytes=len(payload),
    )
