"""``Lock-Token``: the fencing token a write under an edit lock carries, checked by the
manager in the write's transaction, in whichever server process takes the write."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header

from ._problems import ApiError

__all__ = ["LockTokenDep"]

_LONGEST = 18
"""Digits of the largest token parsed (tokens are revisions: 64-bit)."""


def _lock_token(
    lock_token: Annotated[
        str | None,
        Header(
            alias="Lock-Token",
            description="the token of the edit lock this write is made under (from "
            "POST /v1/contexts/{id}/lock): refused with 423 lock_lost once that lock has "
            "expired or been taken over",
        ),
    ] = None,
) -> int | None:
    if lock_token is None:
        return None
    value = lock_token.strip()
    if not value.isascii() or not value.isdigit() or len(value) > _LONGEST:
        raise ApiError(400, "bad_lock_token", "Lock-Token must be a lock's token: digits")
    return int(value)


LockTokenDep = Annotated[int | None, Depends(_lock_token)]
