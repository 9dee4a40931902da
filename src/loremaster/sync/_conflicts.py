"""Stale updates settled by the conflict strategy, and conflicts recorded for a person
and resolved by one: changes (pure plans) run inside the storage transaction."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import jsonpatch

from ..document import (
    GUARDED_FIELDS,
    Update,
    Write,
    authorize,
    commit_document,
    context_from_record,
    document_of,
    event_for,
    readable,
    writable,
)
from ..errors import Issue, PermissionDenied, ValidationFailed
from ..models import (
    ConflictPolicy,
    ConflictStrategy,
    Context,
    ContextConflict,
    PathConflict,
    Permission,
    UpdateOrigin,
    from_micros,
)
from ..patch import JsonPatch
from ..storage import ContextRecord, Mutation
from ._merge import Side, apply_choices
from ._strategies import PathChange, PendingConflict, resolve_update

__all__ = [
    "HistoryMoved",
    "Resolve",
    "Settle",
    "conflict_model",
    "parse_strategy",
    "policy_for",
]


def _conflict_id(context_id: str, revision: int) -> str:
    return f"{context_id}.{revision}"


class HistoryMoved(Exception):
    """A change landed after the changes a provider_priority settlement ranked: read
    them again (the context is now at `revision`)."""

    def __init__(self, revision: int) -> None:
        super().__init__(revision)
        self.revision = revision


def parse_strategy(strategy: ConflictStrategy | str | None) -> ConflictStrategy | None:
    try:
        return None if strategy is None else ConflictStrategy(strategy)
    except ValueError as exc:
        choices = ", ".join(s.value for s in ConflictStrategy)
        raise ValidationFailed(
            f"strategy must be one of {choices}", [Issue("/strategy", str(strategy), "strategy")]
        ) from exc


def policy_for(record: ContextRecord, strategy: ConflictStrategy | None) -> ConflictPolicy:
    """The context's conflict policy (default: automatic_merge, else RevisionConflict),
    with the call's `strategy` in place of its own when given."""
    stored = record.extra.get("conflict_policy")
    policy = ConflictPolicy() if stored is None else ConflictPolicy.model_validate(stored)
    return policy if strategy is None else policy.model_copy(update={"strategy": strategy})


@dataclass(frozen=True, slots=True)
class Settle:
    """A stale update (`incoming`, written against the fields at `base_revision`) merged
    three ways into the fields as committed now, by the conflict policy: what it decides
    lands, paths left for a person are recorded (manual_merge, user_choice), and an open
    path with no fallback is a `RevisionConflict`. `since` are the changes after the base,
    up to `since_revision`."""

    base: dict[str, Any]
    incoming: dict[str, Any]
    strategy: ConflictStrategy | None
    origin: UpdateOrigin
    base_revision: int
    since: Sequence[PathChange]
    since_revision: int
    check: Callable[[ContextRecord, Context], None] | None

    def plan(self, current: ContextRecord, write: Write) -> Mutation | None:
        readable(current, write.user_id)
        if any(self.base.get(f) != self.incoming.get(f) for f in GUARDED_FIELDS):
            # Before settling: a conflict record never holds a change its author may not make.
            authorize(current, write.user_id, Permission.ADMIN)
        policy = policy_for(current, self.strategy)
        ranked = policy.strategy is ConflictStrategy.PROVIDER_PRIORITY
        if ranked and current.revision != self.since_revision:
            raise HistoryMoved(current.revision)
        committed = document_of(current)
        outcome = resolve_update(
            self.base,
            committed,
            self.incoming,
            policy=policy,
            origin=self.origin,
            context_id=current.context_id,
            base_revision=self.base_revision,
            current_revision=current.revision,
            since_base=self.since,
        )
        ops: JsonPatch = jsonpatch.make_patch(committed, outcome.document).patch
        mutation = Update(ops, check=self.check).plan(current, write)
        if not isinstance(outcome, PendingConflict):
            return mutation
        if mutation is None:  # everything merged is already there: record the conflict alone
            record = dataclasses.replace(
                current, revision=current.revision + 1, last_modified=write.now
            )
            mutation = Mutation(
                record=record,
                event=event_for(record, "update", [], write.user_id),
                document_changed=False,
                segment=current.versioning.segment,
            )
        return _record_conflict(mutation, outcome)


def _record_conflict(mutation: Mutation, pending: PendingConflict) -> Mutation:
    record = mutation.record
    entry = {
        **pending.to_dict(),
        "id": _conflict_id(record.context_id, record.revision),
        "user_id": mutation.event.user_id,
        "revision": record.revision,
        "created_at": record.last_modified,
    }
    record = dataclasses.replace(
        record,
        coordination=dataclasses.replace(
            record.coordination, conflicts=(*record.coordination.conflicts, entry)
        ),
    )
    change = {"op": "add", "path": "/conflicts/-", "value": {"conflict_id": entry["id"]}}
    event = dataclasses.replace(mutation.event, changes=[*mutation.event.changes, change])
    return dataclasses.replace(mutation, record=record, event=event)


def conflict_model(record: ContextRecord, entry: Mapping[str, Any]) -> ContextConflict:
    origin = entry.get("origin", {})
    return ContextConflict(
        conflict_id=entry["id"],
        context_id=record.context_id,
        strategy=entry["strategy"],
        resolver=entry.get("resolver"),
        user_id=entry.get("user_id"),
        provider=origin.get("provider"),
        base_revision=entry["base_revision"],
        revision=entry["revision"],
        created_at=from_micros(entry["created_at"]),
        paths=[
            PathConflict(
                path=c["path"],
                base=c.get("base"),
                current=c.get("ours"),
                incoming=c.get("theirs"),
            )
            for c in entry["conflicts"]
        ],
    )


_CHOICES: dict[str, Side] = {"base": "base", "current": "ours", "incoming": "theirs"}


@dataclass(frozen=True, slots=True)
class Resolve:
    """Settle a recorded conflict: each path takes the side chosen for it (``base``,
    ``current`` or ``incoming``); the record goes. Only its named resolver (USER_CHOICE)
    or, for MANUAL_MERGE, anyone who may write."""

    conflict_id: str
    resolution: Mapping[str, str]

    def plan(self, current: ContextRecord, write: Write) -> Mutation:
        user_id = write.user_id
        writable(current, user_id)
        entries = current.coordination.conflicts
        entry = next((e for e in entries if e["id"] == self.conflict_id), None)
        if entry is None:
            raise ValidationFailed(
                "no such open conflict", [Issue("/conflict_id", self.conflict_id, "no_conflict")]
            )
        resolver = entry.get("resolver")
        if resolver is not None and user_id is not None and user_id != resolver:
            raise PermissionDenied(
                user_id,
                f"resolve this conflict (it is offered to {resolver!r}) of",
                current.context_id,
            )
        pending = PendingConflict.from_dict(entry, None)
        choices = _choices(self.resolution, {c.path for c in pending.conflicts})
        # "current" keeps what is committed now, which later changes may have moved on.
        changing = [c for c in pending.conflicts if choices[c.path] != "ours"]
        chosen = {c.path: choices[c.path] for c in changing}
        document = apply_choices(document_of(current), changing, chosen)
        ops: JsonPatch = jsonpatch.make_patch(document_of(current), document).patch
        updated = context_from_record(current, document=document)
        mutation = commit_document(current, updated, write, op="resolve_conflict", ops=ops)
        rest = tuple(e for e in entries if e["id"] != self.conflict_id)
        record = dataclasses.replace(
            mutation.record, coordination=dataclasses.replace(current.coordination, conflicts=rest)
        )
        change = {"op": "remove", "path": "/conflicts/" + self.conflict_id}
        event = dataclasses.replace(mutation.event, changes=[*mutation.event.changes, change])
        return dataclasses.replace(mutation, record=record, event=event)


def _choices(resolution: Mapping[str, str], paths: set[str]) -> dict[str, Side]:
    """The side each conflicting path takes, if `resolution` names one for each."""
    unknown = {p: c for p, c in resolution.items() if c not in _CHOICES}
    if unknown:
        raise ValidationFailed(
            "choose base, current or incoming for each path",
            [Issue(path, repr(choice), "choice") for path, choice in unknown.items()],
        )
    issues = [Issue(p, "no conflict at this path", "choice") for p in resolution if p not in paths]
    issues += [Issue(p, "no side chosen", "choice") for p in sorted(paths - set(resolution))]
    if issues:
        raise ValidationFailed("the choices do not match the conflict's paths", issues)
    return {path: _CHOICES[resolution[path]] for path in paths}
