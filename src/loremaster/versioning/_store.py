"""Making and reading stored versions: snapshots, patches, checksums. Pure functions.

A version's payload goes through the codec (JSON inside, compressed when that pays): a
``snapshot`` holds the document, a ``delta`` the RFC 6902 JSON Patch from its parent's
document. Reading a version applies at most the patches since the snapshot it rests on
(K under the hybrid strategy) and checks the result against the version's checksum.
"""

from __future__ import annotations

import dataclasses
import hashlib
import uuid
from collections.abc import Sequence
from typing import Any

import orjson

from ..codec import Codec
from ..config import Settings
from ..errors import DataCorrupted, UnsupportedFormat
from ..models import VersionStrategy
from ..patch import apply_stored_patch
from ..storage import Piece, VersionRecord, VersionState

__all__ = [
    "VersionPolicy",
    "VersionRequest",
    "decode_payload",
    "make_version",
    "reconstruct",
    "track_change",
    "version_checksum",
]

JsonPatch = list[dict[str, Any]]

# Past this many operations since the head version, the next version is a snapshot.
_MAX_PENDING_OPS = 1000


@dataclasses.dataclass(frozen=True, slots=True)
class VersionPolicy:
    """When versions are made automatically and how they are stored."""

    strategy: VersionStrategy = VersionStrategy.HYBRID
    snapshot_every: int = 50
    auto: bool = True
    every_changes: int = 1
    every_seconds: float = 0.0

    @classmethod
    def from_settings(cls, settings: Settings) -> VersionPolicy:
        return cls(
            strategy=VersionStrategy(settings.version_strategy),
            snapshot_every=settings.version_snapshot_every,
            auto=settings.enable_versioning,
            every_changes=settings.version_every_changes,
            every_seconds=settings.version_every_seconds,
        )

    def due(self, state: VersionState, now: int) -> bool:
        """Whether the change just tracked in `state` should make a version."""
        if not self.auto or state.changes_since == 0:
            return False
        if self.every_changes and state.changes_since >= self.every_changes:
            return True
        elapsed = (now - state.head_at) / 1_000_000
        return bool(self.every_seconds) and elapsed >= self.every_seconds


@dataclasses.dataclass(frozen=True, slots=True)
class VersionRequest:
    """Who asked for a version and why. `automatic` versions come with changes (and are
    kept up to CONTEXT_MAX_VERSIONS); the others were asked for, checkpoints a person
    made (kept up to CONTEXT_MAX_CHECKPOINTS)."""

    author: str | None
    message: str = ""
    tags: tuple[str, ...] = ()
    automatic: bool = False


def track_change(state: VersionState, ops: JsonPatch) -> VersionState:
    """`state` after a change that applied `ops` to the document.

    The patch since the head version is kept while it stays short; past that it becomes
    unknown and the next version is a snapshot.
    """
    pending = None
    if state.pending is not None:
        pending = state.pending + ops
        if len(pending) > _MAX_PENDING_OPS:
            pending = None
    return dataclasses.replace(state, pending=pending, changes_since=state.changes_since + 1)


def version_checksum(document: dict[str, Any], view: tuple[Piece, ...]) -> str:
    """SHA-256 of a version's fields and message view. The payload is JSON written and
    read by orjson alone (never a JSONB column), so numbers keep their type and plain
    sorted-key JSON is canonical enough."""
    content = {"document": document, "view": [list(piece) for piece in view]}
    return hashlib.sha256(orjson.dumps(content, option=orjson.OPT_SORT_KEYS)).hexdigest()


def _encode(codec: Codec, value: Any) -> bytes:
    return codec.encode(value, format="json")


def _as_patch(policy: VersionPolicy, state: VersionState, document: dict[str, Any]) -> bool:
    """Whether the new version is stored as the patch since the head: when the strategy
    allows, the patch is known, and (but for INCREMENTAL) it is the smaller. Sizes are
    compared as plain JSON: only the payload chosen is compressed."""
    if state.head is None or state.pending is None or policy.strategy is VersionStrategy.FULL:
        return False
    if policy.strategy is VersionStrategy.INCREMENTAL:
        return True
    if state.depth + 1 >= policy.snapshot_every:
        return False
    try:
        return len(orjson.dumps(state.pending)) < len(orjson.dumps(document))
    except TypeError as exc:  # what orjson cannot write, the codec would not either
        raise UnsupportedFormat(f"a version cannot hold this document: {exc}") from exc


def make_version(
    *,
    codec: Codec,
    policy: VersionPolicy,
    context_id: str,
    branch: str,
    number: int,
    state: VersionState,
    document: dict[str, Any],
    view: tuple[Piece, ...],
    turn_count: int,
    revision: int,
    request: VersionRequest,
    now: int,
) -> tuple[VersionRecord, VersionState]:
    """A new version of `document` (the branch's state now) and the branch's new state.

    It is a patch against the head version or a snapshot, as `_as_patch` decides.
    """
    if _as_patch(policy, state, document):
        payload, kind, depth = _encode(codec, state.pending), "delta", state.depth + 1
    else:
        payload, kind, depth = _encode(codec, document), "snapshot", 0
    version = VersionRecord(
        version_id=str(uuid.uuid4()),
        context_id=context_id,
        number=number,
        branch=branch,
        parent_id=state.head,
        kind=kind,
        payload=payload,
        message_seq=view[-1][1] if view else 0,
        view=view,
        turn_count=turn_count,
        revision=revision,
        author=request.author,
        message=request.message,
        tags=request.tags,
        automatic=request.automatic,
        created_at=now,
        checksum=version_checksum(document, view),
        size_bytes=len(payload),
    )
    head = dataclasses.replace(
        state, head=version.version_id, depth=depth, pending=[], changes_since=0, head_at=now
    )
    return version, head


def decode_payload(codec: Codec, version: VersionRecord) -> Any:
    return codec.decode(version.payload)


def reconstruct(codec: Codec, chain: Sequence[VersionRecord]) -> dict[str, Any]:
    """The document of the last version of `chain` (a snapshot, then its patches in
    order), verified against that version's checksum."""
    if not chain or chain[0].kind != "snapshot":
        raise DataCorrupted("a version's chain does not start at a snapshot")
    document: dict[str, Any] = decode_payload(codec, chain[0])
    if not isinstance(document, dict):
        raise DataCorrupted(f"version {chain[0].version_id} does not hold a document")
    for version in chain[1:]:
        document = apply_stored_patch(document, decode_payload(codec, version))
    target = chain[-1]
    if version_checksum(document, target.view) != target.checksum:
        raise DataCorrupted(
            f"version {target.version_id} of context {target.context_id} fails its checksum"
        )
    return document
