"""Who may do what to a context. Pure functions over stored rows.

The owner may do everything; collaborators read and write; ``permissions`` gives a user
any of read, write and admin (each implies read; admin implies write). ``user_id=None``
is a trusted in-process caller. The SQL filters of the storage backends mirror `can`.
"""

from __future__ import annotations

from .errors import PermissionDenied
from .models import Permission
from .storage import ContextRecord

__all__ = ["authorize", "can"]


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
    if not can(record, user_id, action):
        assert user_id is not None
        raise PermissionDenied(user_id, action.value, record.context_id)
