"""What every change is planned with, and what a change is."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from ..storage import BranchRecord, ContextRecord, Mutation

__all__ = ["BranchChange", "Change", "Write"]


@dataclass(frozen=True, slots=True)
class Write:
    """One commit's circumstances, fixed before its transaction opens: who writes (None:
    the system, trusted), the time it is stamped with (microseconds since the epoch) and
    the size a context may reach (CONTEXT_MAX_SIZE_MB)."""

    user_id: str | None
    now: int
    max_bytes: int


class Change(Protocol):
    """A change to a context: a pure plan from the current row to the mutation to commit
    (None: nothing to do), raising to write nothing. The writer runs it on main or, seen
    through the branch's view, on a branch."""

    def plan(self, current: ContextRecord, write: Write) -> Mutation | None: ...


class BranchChange(Protocol):
    """A change that sees the context row and a branch's own row (None: no such branch
    yet), as making a branch does."""

    def plan(
        self, current: ContextRecord, branch: BranchRecord | None, write: Write
    ) -> Mutation | None: ...
