"""Edit locks with fencing tokens, as changes (pure plans), and the lock check every
write passes.

Lock expiry is judged by the database's clock: storage stamps each row it reads for a
write with that clock (`ContextRecord.read_at`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from ..document import Write, event_for, readable, writable
from ..errors import LockHeld, LockLost
from ..models import ContextLock, from_micros
from ..storage import ContextRecord, Lease, Mutation

__all__ = ["Lock", "Release", "check_lease", "lock_model"]


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


def _with_lease(current: ContextRecord, lease: Lease | None, write: Write, *, op: str) -> Mutation:
    record = dataclasses.replace(
        current,
        revision=current.revision + 1,
        last_modified=write.now,
        coordination=dataclasses.replace(current.coordination, lease=lease),
    )
    value = None if lease is None else {"holder": lease.holder, "token": lease.token}
    change = {"op": "replace", "path": "/lock", "value": value}
    return Mutation(
        record=record,
        event=event_for(record, op, [change], write.user_id),
        document_changed=False,
        segment=current.versioning.segment,
    )


@dataclass(frozen=True, slots=True)
class Lock:
    """Take (or, `renew_only`, extend) the writer's edit lock for `seconds`. A new lease's
    fencing token is the revision that grants it, so tokens only grow; extending keeps
    the token and never shortens the lease."""

    seconds: float
    renew_only: bool = False

    def plan(self, current: ContextRecord, write: Write) -> Mutation:
        user_id = write.user_id
        assert user_id is not None
        writable(current, user_id)
        lease = _live(current)
        if lease is not None and lease.holder != user_id:
            raise LockHeld(current.context_id, lease.holder)
        if self.renew_only and lease is None:
            stale = current.coordination.lease
            raise LockLost(current.context_id, user_id, 0 if stale is None else stale.token)
        token = current.revision + 1 if lease is None else lease.token
        expires_at = current.read_at + int(self.seconds * 1_000_000)
        if lease is not None:
            expires_at = max(expires_at, lease.expires_at)
        return _with_lease(current, Lease(user_id, token, expires_at), write, op="lock")


@dataclass(frozen=True, slots=True)
class Release:
    """Give the writer's lock up; nothing to do if it does not hold it (or it expired)."""

    def plan(self, current: ContextRecord, write: Write) -> Mutation | None:
        readable(current, write.user_id)
        lease = current.coordination.lease
        if lease is None or lease.holder != write.user_id:
            live = _live(current)
            if live is not None:
                raise LockHeld(current.context_id, live.holder)
            return None
        return _with_lease(current, None, write, op="unlock")
