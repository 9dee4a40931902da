"""``Lock-Token``: the fencing token a write under an edit lock carries, checked by the
manager in the write's own transaction, in whichever server process takes the write."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Header

from ._problems import ApiError
from ._service import CallerDep

__all__ = ["LOCK_TOKEN_HEADER", "Fence", "FenceDep"]

LOCK_TOKEN_HEADER = "Lock-Token"
_LONGEST = 18
"""Digits of the largest token read (tokens are revisions: 64-bit)."""


@dataclass(frozen=True, slots=True)
class Fence:
    """Who makes a write and under which lock token (None: none)."""

    user_id: str | None
    """The caller; named (`Caller.name`) when it writes under a lock, since a lock is
    held by a named user (in local mode, the trusted caller is otherwise nameless)."""
    lock_token: int | None


def _fence(
    caller: CallerDep,
    lock_token: Annotated[
        str | None,
        Header(
            alias=LOCK_TOKEN_HEADER,
            description="the token of the edit lock this write is made under (from "
            "POST /v1/contexts/{id}/lock): refused with 423 lock_lost once that lock has "
            "lapsed or been taken over, whichever server process took it",
        ),
    ] = None,
) -> Fence:
    if lock_token is None:
        return Fence(caller.user_id, None)
    value = lock_token.strip()
    if not value.isascii() or not value.isdigit() or len(value) > _LONGEST:
        raise ApiError(400, "bad_lock_token", f"{LOCK_TOKEN_HEADER} must be a lock's token")
    return Fence(caller.name, int(value))


FenceDep = Annotated[Fence, Depends(_fence)]
"""The writer of a route that writes a context, and its lock token."""
