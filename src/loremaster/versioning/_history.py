"""Reading stored versions and message views, and cleaning up old versions.

The I/O shell around the pure `versioning` functions: it loads what they need from storage
in as few round trips as it can (a version's whole chain in one query, a view's messages
in one query per piece) and hands back records and documents.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from ..codec import Codec
from ..document._records import MessageBodies, message_from_record
from ..errors import BranchNotFound, UnsupportedFormat, VersionNotFound
from ..models import Branch, ContextVersion, Message, from_micros
from ..storage import BranchRecord, ContextRecord, MessageRecord, Piece, Storage, VersionRecord
from ._prune import VersionLimits, choose_victims, prune_plan
from ._store import decode_payload, reconstruct
from ._views import ranges

__all__ = ["History", "branch_model", "version_model"]

# A cleanup that keeps losing to writers gives up; the next one starts afresh.
_PRUNE_ATTEMPTS = 5


def version_model(version: VersionRecord) -> ContextVersion:
    return ContextVersion(
        version_id=version.version_id,
        context_id=version.context_id,
        number=version.number,
        branch=version.branch,
        parent_version_id=version.parent_id,
        merged_version_id=version.merge_parent_id,
        author=version.author,
        message=version.message,
        tags=list(version.tags),
        created_at=from_micros(version.created_at),
        kind="snapshot" if version.kind == "snapshot" else "delta",
        size_bytes=version.size_bytes,
        checksum=version.checksum,
        revision=version.revision,
        message_seq=version.message_seq,
        automatic=version.automatic,
    )


def branch_model(record: ContextRecord, branch: BranchRecord | None) -> Branch:
    """The `Branch` for a branch row, or for main (the context row) when None."""
    if branch is None:
        return Branch(
            name="main",
            head_version_id=record.versioning.head,
            base_version_id=None,
            message_count=record.message_count,
            created_at=from_micros(record.created_at),
            last_modified=from_micros(record.last_modified),
        )
    return Branch(
        name=branch.name,
        head_version_id=branch.versioning.head,
        base_version_id=branch.base_version,
        message_count=branch.message_count,
        created_by=branch.created_by,
        created_at=from_micros(branch.created_at),
        last_modified=from_micros(branch.last_modified),
    )


class History:
    """Versions and message views of the contexts in one storage."""

    def __init__(self, storage: Storage, codec: Codec, bodies: MessageBodies) -> None:
        """`codec` reads version payloads; `bodies` stored message bodies."""
        self._storage = storage
        self._codec = codec
        self._bodies = bodies

    async def version(self, context_id: str, version_id: str) -> tuple[VersionRecord, Any]:
        """A version and its document, rebuilt from its snapshot and patches and checked
        against its checksum (`DataCorrupted` if it fails)."""
        chain = await self._storage.load_version_chain(context_id, version_id)
        if not chain:
            raise VersionNotFound(context_id, version_id)
        return chain[-1], reconstruct(self._codec, chain)

    async def branch(self, context_id: str, name: str) -> BranchRecord:
        branch = await self._storage.load_branch(context_id, name)
        if branch is None:
            raise BranchNotFound(context_id, name)
        return branch

    async def message_rows(
        self,
        context_id: str,
        view: tuple[Piece, ...],
        *,
        limit: int | None = None,
        before_seq: int | None = None,
        after_seq: int = 0,
    ) -> list[MessageRecord]:
        """The last `limit` messages of `view` between `after_seq` and `before_seq`
        (exclusive), oldest first: one query per piece of the view, newest piece first."""
        rows: list[MessageRecord] = []
        for segment, start, end in reversed(ranges(view)):
            ceiling = end + 1 if before_seq is None else min(before_seq, end + 1)
            floor = max(start, after_seq)
            if ceiling <= floor + 1:
                continue
            wanted = None if limit is None else limit - len(rows)
            found = await self._storage.load_messages(
                context_id, branch=segment, limit=wanted, before_seq=ceiling, after_seq=floor
            )
            rows[:0] = found
            if limit is not None and len(rows) >= limit:
                break
        return rows

    async def messages(self, rows: Sequence[MessageRecord]) -> list[Message]:
        try:
            return [message_from_record(row, self._bodies) for row in rows]
        except UnsupportedFormat:
            # Perhaps a dictionary another process trained since this one started.
            await self.load_dictionaries()
            return [message_from_record(row, self._bodies) for row in rows]

    async def load_dictionaries(self) -> None:
        for dictionary_id, context_type, data in await self._storage.load_dictionaries():
            self._bodies.codec.add_dictionary(dictionary_id, data)
            self._bodies.codec.dictionary_for[context_type] = dictionary_id

    async def prune(self, context_id: str, limits: VersionLimits, *, dry_run: bool = False) -> int:
        """Remove the oldest versions beyond `limits` (tagged versions, branch heads, fork
        points and versions merges took in stay), re-basing the versions that rested on
        them. How many went.

        The plan is made from reads; storage checks it again in the rewrite's transaction
        (with writers held off) and refuses it if a version was made, or a head moved,
        meanwhile: then it is made again from fresh reads."""
        for _ in range(_PRUNE_ATTEMPTS):
            versions = await self._storage.list_versions(context_id)
            record = await self._storage.load_context(context_id)
            if not isinstance(record, ContextRecord):
                return 0
            branches = await self._storage.list_branches(context_id)
            keep = {record.versioning.head}
            keep |= {b.versioning.head for b in branches} | {b.base_version for b in branches}
            keep |= {v.merge_parent_id for v in versions}  # what later merges start from
            victims = choose_victims(versions, keep={k for k in keep if k}, limits=limits)
            if dry_run or not victims:
                return len(victims)
            if await self._remove(context_id, versions, victims):
                return len(victims)
        return 0

    async def _remove(
        self, context_id: str, versions: Sequence[VersionRecord], victims: Sequence[VersionRecord]
    ) -> bool:
        gone = [v.version_id for v in victims]
        gone_set = set(gone)
        child_ids = [v.version_id for v in versions if v.parent_id in gone_set]
        loaded = {
            v.version_id: v
            for v in await self._storage.load_versions(context_id, [*gone, *child_ids])
        }
        if any(version_id not in loaded for version_id in gone):
            return False  # another cleanup got there first
        children: defaultdict[str, list[VersionRecord]] = defaultdict(list)
        for child in (loaded[child_id] for child_id in child_ids if child_id in loaded):
            if child.parent_id in gone_set:
                children[child.parent_id].append(child)
        replaced = prune_plan(
            [loaded[version_id] for version_id in gone],
            children,
            decode=lambda v: decode_payload(self._codec, v),
            encode=lambda value: self._codec.encode(value, format="json"),
        )
        return await self._storage.rewrite_versions(context_id, delete=gone, replace=replaced)
