"""Locks, pending conflicts and presence: what the collaboration calls return."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from ._time import UtcDatetime

__all__ = ["ContextConflict", "ContextLock", "PathConflict"]


class ContextLock(BaseModel):
    """An exclusive edit lock on a context, a lease that ends at ``expires_at`` unless
    renewed. ``token`` is its fencing token: every later lock of the context has a larger
    one."""

    model_config = ConfigDict(frozen=True)

    context_id: str
    holder: str
    token: int
    expires_at: UtcDatetime


class PathConflict(BaseModel):
    """One path two writers changed differently: its value at the base the writer
    started from, the committed one (``current``) and the writer's (``incoming``).
    A side that has no value there is left out (None)."""

    model_config = ConfigDict(frozen=True)

    path: str
    base: Any = None
    current: Any = None
    incoming: Any = None


class ContextConflict(BaseModel):
    """An update whose overlapping paths wait for a person: everything else it changed
    has landed. Resolve it with `ContextManager.resolve_conflict`."""

    model_config = ConfigDict(frozen=True)

    conflict_id: str
    context_id: str
    strategy: str
    resolver: str | None = Field(description="the user who must choose (user_choice), or None")
    user_id: str | None = Field(description="who wrote the conflicting update")
    provider: str | None = None
    base_revision: int
    revision: int = Field(description="the revision that recorded the conflict")
    created_at: UtcDatetime
    paths: list[PathConflict]
