"""Collaboration changes as pure plans, run inside the storage transaction (as `_changes`):
edit locks with fencing tokens, joining and leaving rooms, recording and resolving
conflicts, and the lock check every write passes.

Lock expiry is judged by the database's clock: storage stamps each row it reads for a
write with that clock (`ContextRecord.read_at`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import jsonpatch

from ._access import GUARDED_FIELDS, authorize
from ._changes import commit_document, event_for, plan_update, readable
from ._records import context_from_record, document_of
from .errors import Issue, LockHeld, LockLost, PermissionDenied, ValidationFailed
from .models import (
    ConflictPolicy,
    ConflictStrategy,
    Context,
    ContextConflict,
    ContextLock,
    ContextType,
    PathConflict,
    Permission,
    UpdateOrigin,
    from_micros,
)
from .patch import JsonPatch
from .storage import ContextRecord, Lease, Mutation
from .sync import Change, PendingConflict, Side, apply_choices, resolve_update

__all__ = [
    "HistoryMoved",
    "check_lease",
    "conflict_model",
    "lock_model",
    "parse_strategy",
    "plan_join",
    "plan_leave",
    "plan_lock",
    "plan_release",
    "plan_resolve",
    "plan_settle",
    "policy_for",
]


def _live(record: ContextRecord) -> Lease | None:
    lease = record.coordination.lease
    return lease if lease is not None and lease.expires_at > record.read_at else None


def check_lease(record: ContextRecord, user_id: str | None, token: int | None) -> None:
    """Refuse a write the context's edit lock does not allow: anyone's while another
    holds a live lease, and the writer's own when it believes it holds the lock (it has a
    `token`) but that lease has expired or been taken over."""
    lease = _live(record)
    if token is not None:
        if lease is None or lease.holder != user_id or lease.token != token:
            raise LockLost(record.context_id, user_id or "", token)
        return
    if lease is not None and lease.holder != user_id:
        raise LockHeld(record.context_id, lease.holder)


def lock_model(record: ContextRecord) -> ContextLock:
    lease = record.coordination.lease
    assert lease is not None
    return ContextLock(
        context_id=record.context_id,
        holder=lease.holder,
        token=lease.token,
        expires_at=from_micros(lease.expires_at),
    )


def _with_lease(current: ContextRecord, lease: Lease | None, *, op: str, now: int) -> Mutation:
    record = dataclasses.replace(
        current,
        revision=current.revision + 1,
        last_modified=now,
        coordination=dataclasses.replace(current.coordination, lease=lease),
    )
    value = None if lease is None else {"holder": lease.holder, "token": lease.token}
    change = {"op": "replace", "path": "/lock", "value": value}
    user = lease.holder if lease is not None else None
    return Mutation(
        record=record,
        event=event_for(record, op, [change], user),
        document_changed=False,
        segment=current.versioning.segment,
    )


def plan_lock(
    current: ContextRecord,
    *,
    user_id: str,
    seconds: float,
    renew_only: bool,
    now: int,
    max_bytes: int,
) -> Mutation:
    """Take (or extend) the edit lock for `seconds`. A new lease's fencing token is the
    revision that grants it, so tokens only grow; extending keeps the token and never
    shortens the lease."""
    del max_bytes
    readable(current, user_id)
    authorize(current, user_id, Permission.WRITE)
    lease = _live(current)
    if lease is not None and lease.holder != user_id:
        raise LockHeld(current.context_id, lease.holder)
    if renew_only and lease is None:
        stale = current.coordination.lease
        raise LockLost(current.context_id, user_id, 0 if stale is None else stale.token)
    token = current.revision + 1 if lease is None else lease.token
    expires_at = current.read_at + int(seconds * 1_000_000)
    if lease is not None:
        expires_at = max(expires_at, lease.expires_at)
    granted = Lease(user_id, token, expires_at)
    return _with_lease(current, granted, op="lock", now=now)


def plan_release(
    current: ContextRecord, *, user_id: str, now: int, max_bytes: int
) -> Mutation | None:
    """Give the lock up; nothing to do if the user does not hold it (or it expired)."""
    del max_bytes
    readable(current, user_id)
    lease = current.coordination.lease
    if lease is None or lease.holder != user_id:
        live = _live(current)
        if live is not None:
            raise LockHeld(current.context_id, live.holder)
        return None
    return _with_lease(current, None, op="unlock", now=now)


def _room(current: ContextRecord) -> dict[str, Any]:
    if current.context_type != ContextType.COLLABORATIVE:
        raise ValidationFailed(
            "only collaborative contexts have sessions to join",
            [Issue("/context_type", current.context_type)],
        )
    return document_of(current)


def _commit_room(
    current: ContextRecord, room: dict[str, Any], *, op: str, user_id: str, now: int
) -> Mutation:
    ops: JsonPatch = jsonpatch.make_patch(document_of(current), room).patch
    updated = context_from_record(current, document=room)
    return commit_document(
        current, updated, op=op, ops=ops, user_id=user_id, now=now, max_bytes=2**62
    )


def plan_join(
    current: ContextRecord, *, user_id: str, max_participants: int, now: int, max_bytes: int
) -> Mutation | None:
    """Add `user_id` to the room's participants. An open room takes anyone while it has
    seats, and who sits at its table becomes a member (may read and write); a members-only
    room takes those who may already read it, with the rights they have."""
    del max_bytes
    room = _room(current)
    if current.state != "active":
        raise ValidationFailed(f"the room is {current.state}", [Issue("/state", current.state)])
    if room.get("join_policy") == "members":
        authorize(current, user_id, Permission.READ)
    participants: list[str] = list(room["active_participants"])
    if user_id in participants:
        return None
    seats = min(int(room["max_participants"]), max_participants)
    if len(participants) >= seats:
        raise ValidationFailed(
            f"the room is full ({seats} participants)",
            [Issue("/active_participants", f"{len(participants)} of {seats}", "room_full")],
        )
    room["active_participants"] = [*participants, user_id]
    open_room = room.get("join_policy", "open") == "open"
    if open_room and user_id != current.owner_id and user_id not in room["collaborators"]:
        room["collaborators"] = [*room["collaborators"], user_id]
    return _commit_room(current, room, op="join", user_id=user_id, now=now)


def plan_leave(
    current: ContextRecord, *, user_id: str, now: int, max_bytes: int
) -> Mutation | None:
    """Take `user_id` off the participants (they stay a member); a lock they hold goes."""
    del max_bytes
    readable(current, user_id)
    room = _room(current)
    participants: list[str] = list(room["active_participants"])
    if user_id not in participants:
        return None
    room["active_participants"] = [p for p in participants if p != user_id]
    mutation = _commit_room(current, room, op="leave", user_id=user_id, now=now)
    lease = current.coordination.lease
    if lease is None or lease.holder != user_id:
        return mutation
    record = dataclasses.replace(
        mutation.record, coordination=dataclasses.replace(current.coordination, lease=None)
    )
    released = {"op": "replace", "path": "/lock", "value": None}
    event = dataclasses.replace(mutation.event, changes=[*mutation.event.changes, released])
    return dataclasses.replace(mutation, record=record, event=event)


def _conflict_id(context_id: str, revision: int) -> str:
    return f"{context_id}.{revision}"


class HistoryMoved(Exception):
    """A change landed after the changes a provider_priority settlement ranked: read
    them again."""


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


def plan_settle(
    current: ContextRecord,
    *,
    base: dict[str, Any],
    incoming: dict[str, Any],
    strategy: ConflictStrategy | None,
    origin: UpdateOrigin,
    base_revision: int,
    since: Sequence[Change],
    since_revision: int,
    user_id: str | None,
    check: Callable[[Context], None] | None,
    now: int,
    max_bytes: int,
) -> Mutation | None:
    """A stale update (`incoming`, written against the fields at `base_revision`) merged
    three ways into the fields as committed now, by the conflict policy: what it decides
    lands, paths left for a person are recorded (manual_merge, user_choice), and an open
    path with no fallback is a `RevisionConflict`."""
    readable(current, user_id)
    if any(base.get(f) != incoming.get(f) for f in GUARDED_FIELDS):
        # Before settling: a conflict record never holds a change its author may not make.
        authorize(current, user_id, Permission.ADMIN)
    policy = policy_for(current, strategy)
    ranked = policy.strategy is ConflictStrategy.PROVIDER_PRIORITY
    if ranked and current.revision != since_revision:
        raise HistoryMoved
    committed = document_of(current)
    outcome = resolve_update(
        base,
        committed,
        incoming,
        policy=policy,
        origin=origin,
        context_id=current.context_id,
        base_revision=base_revision,
        current_revision=current.revision,
        since_base=since,
    )
    ops: JsonPatch = jsonpatch.make_patch(committed, outcome.document).patch
    mutation = plan_update(
        current,
        changes=ops,
        user_id=user_id,
        expected_revision=None,
        now=now,
        max_bytes=max_bytes,
        check=check,
    )
    if not isinstance(outcome, PendingConflict):
        return mutation
    if mutation is None:  # everything merged is already there: record the conflict alone
        record = dataclasses.replace(current, revision=current.revision + 1, last_modified=now)
        mutation = Mutation(
            record=record,
            event=event_for(record, "update", [], user_id),
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


def plan_resolve(
    current: ContextRecord,
    *,
    conflict_id: str,
    resolution: Mapping[str, str],
    user_id: str | None,
    now: int,
    max_bytes: int,
) -> Mutation:
    """Settle a recorded conflict: each path takes the side chosen for it (``base``,
    ``current`` or ``incoming``); the record goes. Only its named resolver (USER_CHOICE)
    or, for MANUAL_MERGE, anyone who may write."""
    readable(current, user_id)
    authorize(current, user_id, Permission.WRITE)
    entries = current.coordination.conflicts
    entry = next((e for e in entries if e["id"] == conflict_id), None)
    if entry is None:
        raise ValidationFailed(
            "no such open conflict", [Issue("/conflict_id", conflict_id, "no_conflict")]
        )
    resolver = entry.get("resolver")
    if resolver is not None and user_id is not None and user_id != resolver:
        raise PermissionDenied(
            user_id, f"resolve this conflict (it is offered to {resolver!r}) of", current.context_id
        )
    unknown = {p: c for p, c in resolution.items() if c not in _CHOICES}
    if unknown:
        raise ValidationFailed(
            "choose base, current or incoming for each path",
            [Issue(path, repr(choice), "choice") for path, choice in unknown.items()],
        )
    pending = PendingConflict.from_dict(entry, None)
    paths = {c.path for c in pending.conflicts}
    issues = [Issue(p, "no conflict at this path", "choice") for p in resolution if p not in paths]
    issues += [Issue(p, "no side chosen", "choice") for p in sorted(paths - set(resolution))]
    if issues:
        raise ValidationFailed("the choices do not match the conflict's paths", issues)
    # "current" keeps what is committed now, which later changes may have moved on.
    changing = [c for c in pending.conflicts if resolution[c.path] != "current"]
    choices = {c.path: _CHOICES[resolution[c.path]] for c in changing}
    document = apply_choices(document_of(current), changing, choices)
    ops: JsonPatch = jsonpatch.make_patch(document_of(current), document).patch
    updated = context_from_record(current, document=document)
    mutation = commit_document(
        current,
        updated,
        op="resolve_conflict",
        ops=ops,
        user_id=user_id,
        now=now,
        max_bytes=max_bytes,
    )
    rest = tuple(e for e in entries if e["id"] != conflict_id)
    record = dataclasses.replace(
        mutation.record, coordination=dataclasses.replace(current.coordination, conflicts=rest)
    )
    change = {"op": "remove", "path": "/conflicts/" + conflict_id}
    event = dataclasses.replace(mutation.event, changes=[*mutation.event.changes, change])
    return dataclasses.replace(mutation, record=record, event=event)
