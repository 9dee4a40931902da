"""Versions, branches, diffs and merges: what the versioning calls return."""

from __future__ import annotations

from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from ._messages import Message
from ._time import UtcDatetime

__all__ = [
    "Branch",
    "ContextVersion",
    "MergeConflict",
    "MergeResult",
    "VersionDiff",
    "VersionKind",
    "VersionStrategy",
]


class VersionStrategy(StrEnum):
    """How versions are stored: every one a snapshot, every one a JSON Patch against its
    parent, or patches with a snapshot every K versions (and whenever the patch would be
    larger than a snapshot)."""

    FULL = "full"
    INCREMENTAL = "incremental"
    HYBRID = "hybrid"


VersionKind = Literal["snapshot", "delta"]


class ContextVersion(BaseModel):
    """One version of a context: its fields and the messages up to ``message_seq``.

    History listings carry this metadata only; `ContextManager.get_version` returns the
    context as it was.
    """

    model_config = ConfigDict(frozen=True)

    version_id: str
    context_id: str
    number: int = Field(description="1, 2, 3, ... per context, across branches")
    branch: str
    parent_version_id: str | None
    merged_version_id: str | None = Field(
        None, description="for a merge: the source branch's version that was merged in"
    )
    author: str | None
    message: str
    tags: list[str]
    created_at: UtcDatetime
    kind: VersionKind
    size_bytes: int = Field(description="bytes stored for this version's payload")
    checksum: str
    revision: int = Field(description="the context revision this version captured")
    message_seq: int = Field(description="how many messages the version covers")
    automatic: bool = Field(
        False,
        description="made by a change (kept up to CONTEXT_MAX_VERSIONS) rather than asked "
        "for (a checkpoint, kept up to CONTEXT_MAX_CHECKPOINTS)",
    )


class Branch(BaseModel):
    """A line of versions. ``main`` is the context itself; others fork from a version."""

    model_config = ConfigDict(frozen=True)

    name: str
    head_version_id: str | None
    base_version_id: str | None = Field(description="the version it forked from")
    message_count: int
    created_by: str | None = None
    created_at: UtcDatetime | None = None
    last_modified: UtcDatetime


class VersionDiff(BaseModel):
    """From version ``from_version_id`` to ``to_version_id``: the JSON Patch over the
    fields (apply it to the first to get the second) and the messages that differ."""

    from_version_id: str
    to_version_id: str
    patch: list[dict[str, Any]]
    messages_added: list[Message] = Field(
        description="messages the second version has and the first does not, in order"
    )
    messages_removed: int = Field(
        description="how many of the first version's last messages the second lacks"
    )


class MergeConflict(BaseModel):
    """A path both branches changed to different values since their common version."""

    path: str
    base: Any = None
    source: Any = None
    target: Any = None


class MergeResult(BaseModel):
    """What `ContextManager.merge_branch` did (or, with conflicts and strategy ``fail``,
    would have done: then nothing was written)."""

    source: str
    target: str
    base_version_id: str | None
    merged: bool
    revision: int | None = None
    version: ContextVersion | None = None
    changes: list[dict[str, Any]] = Field(default_factory=list)
    messages_added: int = 0
    conflicts: list[MergeConflict] = Field(default_factory=list)
