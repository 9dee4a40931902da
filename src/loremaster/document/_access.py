"""Who may do what to a context. Pure functions over stored rows.

The owner may do everything; collaborators read and write; ``permissions`` gives a user
any of read, write and admin (each implies read; admin implies write). ``user_id=None``
is a trusted in-process caller. The SQL filters of the storage backends mirror `can`.

A user who may not read a context is told it is not there (`ContextNotFound`), exactly as
for an id that does not exist; one who may read it but lacks the right asked for gets
`PermissionDenied`.
"""

from __future__ import annotations

from ..errors import ContextNotFound, PermissionDenied
from ..models import Permission
from ..storage import ContextRecord

__all__ = ["GUARDED_FIELDS", "OWNERSHIP_FIELDS", "authorize", "authorize_commit", "can"]

OWNERSHIP_FIELDS = frozenset({"owner_id", "collaborators", "permissions", "state"})
"""Who owns a context, who may use it, and whether it is live: columns of the context
itself, the same on every branch."""

GUARDED_FIELDS = OWNERSHIP_FIELDS | {"join_policy"}
"""The fields only the owner or an admin may change, whatever the route (a room's
``join_policy`` decides who may become a member)."""


def can(record: ContextRecord, user_id: str | None, action: Permission) -> bool:
    if user_id is None or user_id == record.owner_id:
        return True
    granted = set(record.permissions.get(user_id, ()))
    if Permission.ADMIN in granted:
        return True
    if user_id in record.collaborators:
        granted |= {Permission.READ, Permission.WRITE}
    if action is Permission.READ:
        return bool(granted)
    return action.value in granted


def authorize(record: ContextRecord, user_id: str | None, action: Permission) -> None:
    if can(record, user_id, action):
        return
    assert user_id is not None
    if not can(record, user_id, Permission.READ):
        raise ContextNotFound(record.context_id)
    raise PermissionDenied(user_id, action.value, record.context_id)


def authorize_commit(
    current: ContextRecord, updated: ContextRecord, user_id: str | None, *, op: str
) -> None:
    """The rule every committed change passes, whatever route made it: only the owner or
    an admin changes the guarded fields. The one exception is a join to an open room,
    which seats the joiner itself (see `takes_own_seat`)."""
    before, after = _guarded_values(current), _guarded_values(updated)
    changed = [f for f in sorted(GUARDED_FIELDS) if before[f] != after[f]]
    if not changed or can(current, user_id, Permission.ADMIN):
        return
    if op == "join" and changed == ["collaborators"] and takes_own_seat(current, updated, user_id):
        return
    if not can(current, user_id, Permission.READ):
        raise ContextNotFound(current.context_id)
    assert user_id is not None
    raise PermissionDenied(user_id, "change " + ", ".join(changed) + " of", current.context_id)


def _guarded_values(record: ContextRecord) -> dict[str, object]:
    values: dict[str, object] = {f: getattr(record, f) for f in OWNERSHIP_FIELDS}
    return values | {"join_policy": record.extra.get("join_policy")}


def takes_own_seat(current: ContextRecord, updated: ContextRecord, user_id: str | None) -> bool:
    """Whether `updated` only adds `user_id` to the members of an open room."""
    return (
        user_id is not None
        and current.extra.get("join_policy", "open") == "open"
        and updated.collaborators == [*current.collaborators, user_id]
    )
