"""What to do with an update written against a stale revision: the five conflict
strategies of the specification, as pure functions of the three documents.

The manager calls `resolve_update` inside its write transaction: `base` is the document
at the revision the writer read, `current` the stored one, `incoming` the writer's.
In the merge's terms, ours is current and theirs is incoming.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from ..errors import DataCorrupted, RevisionConflict
from ..models import ConflictPolicy, ConflictStrategy, UpdateOrigin
from ._merge import MISSING, Side, ThreeWayConflict, apply_choices, parse_pointer, three_way_merge

__all__ = [
    "ConflictPolicy",
    "ConflictStrategy",
    "PathChange",
    "PendingConflict",
    "Resolved",
    "UpdateOrigin",
    "resolve_update",
]

Decision = Literal["ours", "theirs"]
_SIDES: tuple[Side, ...] = ("base", "ours", "theirs")


@dataclass(frozen=True)
class PathChange:
    """A change committed after the base revision: who wrote it, and its JSON Patch."""

    origin: UpdateOrigin
    patch: Sequence[Mapping[str, Any]]


@dataclass(frozen=True)
class Resolved:
    """Commit `document`. `conflicts` are the paths both sides changed and `decisions`
    which side each went to ("ours": the current value stayed, "theirs": the incoming)."""

    document: Any
    strategy: ConflictStrategy
    conflicts: tuple[ThreeWayConflict, ...] = ()
    decisions: Mapping[str, Decision] = field(default_factory=dict)


@dataclass(frozen=True)
class PendingConflict:
    """Conflicts left for a person. `document` is what to commit now: every change that
    does not conflict merged, decided paths as `decisions` says, and each path in
    `conflicts` at its current value until someone picks a side for it (`apply_choices`).
    ``resolver`` is the user offered the choice (USER_CHOICE), or None for anyone allowed
    to write (MANUAL_MERGE)."""

    document: Any
    strategy: ConflictStrategy
    conflicts: tuple[ThreeWayConflict, ...]
    origin: UpdateOrigin
    base_revision: int
    current_revision: int
    resolver: str | None = None
    decisions: Mapping[str, Decision] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The record as JSON (version 1), without `document`: store it beside the context.
        A side with no value at a path is left out of that conflict's object."""
        return {
            "v": 1,
            "strategy": self.strategy.value,
            "origin": self.origin.model_dump(exclude_none=True),
            "base_revision": self.base_revision,
            "current_revision": self.current_revision,
            "resolver": self.resolver,
            "decisions": dict(self.decisions),
            "conflicts": [
                {"path": c.path}
                | {side: c.value(side) for side in _SIDES if c.value(side) is not MISSING}
                for c in self.conflicts
            ],
        }

    @classmethod
    def from_dict(cls, record: Mapping[str, Any], document: Any) -> PendingConflict:
        if record.get("v") != 1:
            raise DataCorrupted(f"unknown pending conflict record version {record.get('v')!r}")
        return cls(
            document=document,
            strategy=ConflictStrategy(record["strategy"]),
            conflicts=tuple(
                ThreeWayConflict(c["path"], *(c.get(side, MISSING) for side in _SIDES))
                for c in record["conflicts"]
            ),
            origin=UpdateOrigin.model_validate(record["origin"]),
            base_revision=record["base_revision"],
            current_revision=record["current_revision"],
            resolver=record["resolver"],
            decisions=dict(record["decisions"]),
        )


def resolve_update(
    base: Any,
    current: Any,
    incoming: Any,
    *,
    policy: ConflictPolicy,
    origin: UpdateOrigin,
    context_id: str,
    base_revision: int,
    current_revision: int,
    since_base: Sequence[PathChange] = (),
) -> Resolved | PendingConflict:
    """Decide what a stale update does, by `policy`.

    `since_base` are the changes committed after `base_revision`, oldest first;
    PROVIDER_PRIORITY ranks the latest one that wrote at (or above, or below) a
    conflicting path against `origin`. Returns `Resolved` (commit its document) or
    `PendingConflict` (commit its document and record the conflicts); raises
    `RevisionConflict` when a conflicting path falls to a fallback of None.
    """
    result = three_way_merge(base, current, incoming, identity_key=policy.identity_key)
    if result.clean:
        return Resolved(result.merged, policy.strategy)
    decisions: dict[str, Decision] = {}
    open_paths: list[ThreeWayConflict] = []
    for conflict in result.conflicts:
        decision = _decide(conflict, policy, origin, since_base, current)
        if decision is None:
            open_paths.append(conflict)
        else:
            decisions[conflict.path] = decision
    handler = (
        policy.strategy
        if policy.strategy in (ConflictStrategy.MANUAL_MERGE, ConflictStrategy.USER_CHOICE)
        else policy.fallback
    )
    if handler is ConflictStrategy.LATEST_WINS:
        decisions.update(dict.fromkeys((c.path for c in open_paths), "theirs"))
        open_paths = []
    decided = [c for c in result.conflicts if c.path in decisions]
    document = apply_choices(result.merged, decided, decisions, identity_key=policy.identity_key)
    if not open_paths:
        return Resolved(document, policy.strategy, result.conflicts, decisions)
    if handler is None:
        paths = [c.path for c in open_paths]
        raise RevisionConflict(context_id, base_revision, current_revision, paths)
    return PendingConflict(
        document=document,
        strategy=handler,
        conflicts=tuple(open_paths),
        origin=origin,
        base_revision=base_revision,
        current_revision=current_revision,
        resolver=(policy.chooser or origin.user_id)
        if handler is ConflictStrategy.USER_CHOICE
        else None,
        decisions=decisions,
    )


def _decide(
    conflict: ThreeWayConflict,
    policy: ConflictPolicy,
    origin: UpdateOrigin,
    since_base: Sequence[PathChange],
    current: Any,
) -> Decision | None:
    """The side that wins `conflict` under the policy's own strategy; None: undecided."""
    match policy.strategy:
        case ConflictStrategy.LATEST_WINS:
            return "theirs"
        case ConflictStrategy.PROVIDER_PRIORITY:
            incoming = policy.rank(origin)
            standing = policy.rank(_last_writer(conflict.path, since_base, current))
            if incoming == standing:
                return None
            return "theirs" if incoming < standing else "ours"
        case _:
            return None


def _last_writer(path: str, since_base: Sequence[PathChange], current: Any) -> UpdateOrigin | None:
    """The origin of the latest change whose JSON Patch touched `path`, a path above it or
    one below it. JSON Patch addresses list items by position and conflicts by identity,
    so below a list only the list itself is compared."""
    tokens = _up_to_first_list(parse_pointer(path), current)
    for change in reversed(since_base):
        for op in change.patch:
            pointers = [op.get("path"), op.get("from") if op.get("op") == "move" else None]
            for pointer in pointers:
                if isinstance(pointer, str):
                    written = parse_pointer(pointer)
                    depth = min(len(tokens), len(written))
                    if written[:depth] == tokens[:depth]:
                        return change.origin
    return None


def _up_to_first_list(tokens: list[str], document: Any) -> list[str]:
    node = document
    for depth, token in enumerate(tokens):
        if isinstance(node, list):
            return tokens[:depth]
        if not isinstance(node, dict) or token not in node:
            break
        node = node[token]
    return tokens
