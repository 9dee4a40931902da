"""Joining and leaving collaborative rooms, as changes (pure plans)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import jsonpatch

from ..document import Write, authorize, commit_document, context_from_record, document_of, readable
from ..errors import Issue, ValidationFailed
from ..models import ContextType, Permission
from ..patch import JsonPatch
from ..storage import ContextRecord, Mutation

__all__ = ["Join", "Leave"]


def _room(current: ContextRecord) -> dict[str, Any]:
    if current.context_type != ContextType.COLLABORATIVE:
        raise ValidationFailed(
            "only collaborative contexts have sessions to join",
            [Issue("/context_type", current.context_type)],
        )
    return document_of(current)


def _commit_room(
    current: ContextRecord, room: dict[str, Any], write: Write, *, op: str
) -> Mutation:
    ops: JsonPatch = jsonpatch.make_patch(document_of(current), room).patch
    updated = context_from_record(current, document=room)
    return commit_document(current, updated, write, op=op, ops=ops, sized=False)


@dataclass(frozen=True, slots=True)
class Join:
    """Add the writer to the room's participants. An open room takes anyone while it has
    seats, and who sits at its table becomes a member (may read and write); a members-only
    room takes those who may already read it, with the rights they have."""

    max_participants: int

    def plan(self, current: ContextRecord, write: Write) -> Mutation | None:
        user_id = write.user_id
        assert user_id is not None
        room = _room(current)
        if current.state != "active":
            raise ValidationFailed(f"the room is {current.state}", [Issue("/state", current.state)])
        if room.get("join_policy") == "members":
            authorize(current, user_id, Permission.READ)
        participants: list[str] = list(room["active_participants"])
        if user_id in participants:
            return None
        seats = min(int(room["max_participants"]), self.max_participants)
        if len(participants) >= seats:
            raise ValidationFailed(
                f"the room is full ({seats} participants)",
                [Issue("/active_participants", f"{len(participants)} of {seats}", "room_full")],
            )
        room["active_participants"] = [*participants, user_id]
        open_room = room.get("join_policy", "open") == "open"
        if open_room and user_id != current.owner_id and user_id not in room["collaborators"]:
            room["collaborators"] = [*room["collaborators"], user_id]
        return _commit_room(current, room, write, op="join")


@dataclass(frozen=True, slots=True)
class Leave:
    """Take the writer off the participants (they stay a member); a lock they hold goes."""

    def plan(self, current: ContextRecord, write: Write) -> Mutation | None:
        readable(current, write.user_id)
        room = _room(current)
        participants: list[str] = list(room["active_participants"])
        if write.user_id not in participants:
            return None
        room["active_participants"] = [p for p in participants if p != write.user_id]
        mutation = _commit_room(current, room, write, op="leave")
        lease = current.coordination.lease
        if lease is None or lease.holder != write.user_id:
            return mutation
        record = dataclasses.replace(
            mutation.record, coordination=dataclasses.replace(current.coordination, lease=None)
        )
        released = {"op": "replace", "path": "/lock", "value": None}
        event = dataclasses.replace(mutation.event, changes=[*mutation.event.changes, released])
        return dataclasses.replace(mutation, record=record, event=event)
