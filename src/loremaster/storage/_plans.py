"""What a write transaction does with plans, once for both backends: each plan runs on the
row as the transaction loaded it, and what it returns is what the backend writes."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from ..errors import ContextNotFound, DataCorrupted, LoremasterError, RevisionConflict
from ._types import BranchPlan, BranchRecord, ContextRecord, Mutation, Plan

__all__ = ["Planned", "plan_branch", "plan_contexts", "revision_guard_missed"]

R = TypeVar("R")


@dataclass(frozen=True, slots=True)
class Planned(Generic[R]):
    """What the plans decided: the result to return once committed, and each mutation to
    write with the row it was planned on (whose revision guards the write)."""

    result: R
    mutations: list[tuple[ContextRecord, Mutation]] = field(default_factory=list)


def plan_contexts(
    current: Mapping[str, ContextRecord], plans: Mapping[str, Plan]
) -> Planned[dict[str, ContextRecord]]:
    """Run each plan on its context's row; the rows as they will be committed."""
    planned: Planned[dict[str, ContextRecord]] = Planned({})
    for context_id, plan in plans.items():
        row = current[context_id]
        mutation = plan(row)
        planned.result[context_id] = row if mutation is None else mutation.record
        if mutation is not None:
            planned.mutations.append((row, mutation))
    return planned


def plan_branch(
    current: ContextRecord, branch: BranchRecord | None, plan: BranchPlan
) -> Planned[tuple[ContextRecord, BranchRecord | None]]:
    """Run a branch plan on the context's row and the branch's."""
    mutation = plan(current, branch)
    if mutation is None:
        return Planned((current, branch))
    return Planned((mutation.record, mutation.branch), [(current, mutation)])


def revision_guard_missed(context_id: str, expected: int, actual: int | None) -> LoremasterError:
    """Why a row write guarded by revision `expected` matched no row, the row being at
    `actual` (None: gone). A write transaction holds the row locked, so this is a stored
    row that changed under the lock, or a plan that changed what the guard matches."""
    if actual is None:
        return ContextNotFound(context_id)
    if actual != expected:
        return RevisionConflict(context_id, expected, actual)
    return DataCorrupted(
        f"context {context_id}: the write guarded by revision {expected} matched no row"
    )
