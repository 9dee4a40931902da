"""Asking for contexts: filters, ordering, pages, search hits and the event log."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from .._storable import MAX_INT, check_json, check_text
from ..errors import ValidationFailed
from ._contexts import Context, ContextState, ContextType
from ._time import UtcDatetime

__all__ = ["CleanupReport", "ContextEvent", "ContextPage", "ContextQuery", "OrderBy", "SearchHit"]

OrderBy = Literal["created_at", "last_modified", "last_accessed", "title"]

MAX_MATCHES = 100
"""Values a `metadata_match` may hold: each is one more condition (SQLite refuses a query
of several hundred)."""


class ContextQuery(BaseModel):
    """Filters for `ContextManager.query_contexts`; every filter given must match.

    Deleted contexts are left out unless ``state="deleted"`` asks for them. Page with
    ``offset`` or, for stable pages while contexts change, with the ``next_cursor`` of the
    previous page.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    context_type: ContextType | None = None
    state: ContextState | None = None
    owner_id: str | None = None
    collaborator: str | None = None
    title_contains: str | None = Field(None, min_length=1)
    metadata_match: dict[str, Any] = Field(
        default_factory=dict,
        description="key -> value (a JSON scalar) that metadata must hold; nested dicts "
        f"match nested keys; at most {MAX_MATCHES} values",
    )
    created_after: UtcDatetime | None = None
    created_before: UtcDatetime | None = None
    modified_after: UtcDatetime | None = None
    modified_before: UtcDatetime | None = None
    order_by: OrderBy = "last_modified"
    descending: bool = True
    limit: int = Field(50, ge=1, le=1000)
    offset: int = Field(0, ge=0, le=MAX_INT)
    cursor: str | None = None

    @field_validator("owner_id", "collaborator", "title_contains", "cursor")
    @classmethod
    def _storable_text(cls, text: str | None) -> str | None:
        try:
            return None if text is None else check_text(text, "")
        except ValidationFailed as exc:
            raise ValueError(exc.issues[0].message) from exc

    @field_validator("metadata_match")
    @classmethod
    def _scalar_leaves(cls, match: dict[str, Any]) -> dict[str, Any]:
        """Leaves are JSON scalars, compared by value: the same on every backend."""
        try:
            check_json(match)
        except ValidationFailed as exc:
            raise ValueError(exc.message) from exc

        leaves = 0

        def check(value: Any, path: str) -> None:
            nonlocal leaves
            if isinstance(value, dict) and value:
                for key, item in value.items():
                    if '"' in key:
                        raise ValueError(f"metadata key {key!r} contains a double quote")
                    check(item, f"{path}/{key}")
            elif not (value is None or isinstance(value, (str, int, float, bool))):
                raise ValueError(
                    f"metadata_match{path or '/'} must be a string, number, boolean or null"
                )
            else:
                leaves += 1
                if leaves > MAX_MATCHES:
                    raise ValueError(f"metadata_match holds more than {MAX_MATCHES} values")

        check(match, "")
        return match

    @model_validator(mode="after")
    def _cursor_or_offset(self) -> ContextQuery:
        if self.cursor is not None and self.offset:
            raise ValueError("page with either offset or cursor, not both")
        return self


class ContextPage(BaseModel):
    """One page of contexts; iterate it like a list. ``next_cursor`` is None on the last."""

    items: list[Context]
    next_cursor: str | None = None

    def __iter__(self) -> Iterator[Context]:  # type: ignore[override]
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> Context:
        return self.items[index]


class SearchHit(BaseModel):
    """A context that matched a full-text search, best first (higher score is better)."""

    context_id: str
    context_type: ContextType
    title: str
    score: float
    snippet: str
    matched: Literal["context", "message"]
    message_seq: int | None = None
    branch: str = Field("main", description="the branch whose view the hit is in")


class ContextEvent(BaseModel):
    """One committed change: the audit log entry and the unit of synchronization.

    ``changes`` is the RFC 6902 JSON Patch that the change applied to the context's
    ``branch`` (``main`` unless the change was made on another branch).
    """

    model_config = ConfigDict(frozen=True)

    context_id: str
    revision: int
    op: str
    changes: list[dict[str, Any]]
    user_id: str | None
    created_at: UtcDatetime
    branch: str = "main"
    provider: str | None = Field(None, description="the AI provider that wrote it, if one did")


class CleanupReport(BaseModel):
    """What a retention run archived, purged and trimmed (or would, with ``dry_run``)."""

    dry_run: bool
    archived: list[str] = Field(default_factory=list)
    purged: list[str] = Field(default_factory=list)
    events_trimmed: int = 0
    versions_pruned: int = 0
    idempotency_keys_purged: int = 0
