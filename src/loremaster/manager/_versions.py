"""Versions and branches: checkpoints, history, rebuilding a version, diffs, rollbacks,
branches and merges."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any, Literal

import jsonpatch

from .._storable import describe
from ..document import OWNERSHIP_FIELDS, canonical_id, context_from_record, document_of
from ..errors import Issue, RevisionConflict, ValidationFailed
from ..models import (
    Branch,
    Context,
    ContextVersion,
    MergeConflict,
    MergeResult,
    Message,
    VersionDiff,
)
from ..storage import ContextRecord, MessageRecord, VersionRecord
from ..sync import MISSING, Side, ThreeWayMerge, apply_choices, three_way_merge
from ..versioning import (
    CreateBranch,
    CreateVersion,
    ForkPoint,
    Merge,
    Rollback,
    VersionRequest,
    branch_document,
    branch_model,
    common_prefix,
    version_model,
    view_of,
)
from . import _arguments as arg
from ._wiring import Core

__all__ = ["MergeStrategy", "Versions"]

MergeStrategy = Literal["fail", "source", "target"]
_MERGE_STRATEGIES = ("fail", "source", "target")
_MERGE_ATTEMPTS = 5


class Versions:
    def __init__(self, core: Core) -> None:
        self._core = core
        self._writer = core.writer
        self._reader = core.reader
        self._history = core.history

    async def create(
        self,
        context_id: str,
        user_id: str | None,
        message: str,
        tags: Sequence[str],
        branch: str,
        *,
        lock_token: int | None,
    ) -> ContextVersion:
        request = VersionRequest(
            arg.user(user_id), arg.text(message, "message"), arg.listed(tags, "tags")
        )
        token = arg.lock_token(lock_token, user_id)
        return await self._checkpoint(canonical_id(context_id), request, branch, token)

    async def _checkpoint(
        self, context_id: str, request: VersionRequest, branch: str, lock_token: int | None
    ) -> ContextVersion:
        """Commit a version of `branch` and describe it (from the commit itself: a
        cleanup may remove it as soon as it is committed)."""
        change = CreateVersion(request, branch, self._core.versioning)
        done = await self._writer.commit(
            context_id, change, user_id=request.author, branch=branch, lock_token=lock_token
        )
        return version_model(done.version)

    async def history(
        self,
        context_id: str,
        user_id: str | None,
        *,
        limit: int,
        before: int | None,
        branch: str | None,
        tag: str | None,
    ) -> list[ContextVersion]:
        context_id = canonical_id(context_id)
        arg.count(limit, "limit", lowest=1, highest=1000)
        if before is not None:
            arg.count(before, "before")
        if branch is not None:
            arg.text(branch, "branch")
        if tag is not None:
            arg.text(tag, "tag")
        await self._reader.readable(context_id, user_id, include_deleted=True)
        rows = await self._core.storage.list_versions(
            context_id, branch=branch, tag=tag, before_number=before, limit=limit
        )
        return [version_model(row) for row in rows]

    async def get(
        self, context_id: str, version_id: str, user_id: str | None, include_messages: bool
    ) -> Context:
        context_id = canonical_id(context_id)
        arg.text(version_id, "version_id")
        record = await self._reader.readable(context_id, user_id, include_deleted=True)
        version, document, stale = await self._reader.version(context_id, version_id)
        messages: list[Message] = []
        if include_messages and version.message_seq:
            messages = await self._reader.view_messages(context_id, version.view)
            stale = stale or messages.stale
        past = dataclasses.replace(
            record,
            revision=version.revision,
            message_count=version.message_seq,
            turn_count=version.turn_count,
            last_modified=version.created_at,
            stale=record.stale or stale,
        )
        return context_from_record(past, messages, document=_completed(record, document))

    async def diff(self, context_id: str, a: str, b: str, user_id: str | None) -> VersionDiff:
        context_id = canonical_id(context_id)
        arg.text(a, "a")
        arg.text(b, "b")
        record = await self._reader.readable(context_id, user_id, include_deleted=True)
        version_a, document_a = await self._history.version(context_id, a)
        version_b, document_b = await self._history.version(context_id, b)
        document_a, document_b = _completed(record, document_a), _completed(record, document_b)
        shared = common_prefix(version_a.view, version_b.view)
        rows = await self._history.message_rows(context_id, version_b.view, after_seq=shared)
        return VersionDiff(
            from_version_id=version_a.version_id,
            to_version_id=version_b.version_id,
            patch=jsonpatch.make_patch(document_a, document_b).patch,
            messages_added=await self._history.messages(rows),
            messages_removed=version_a.message_seq - shared,
        )

    async def rollback(
        self,
        context_id: str,
        version_id: str,
        user_id: str | None,
        branch: str,
        lock_token: int | None,
    ) -> Context:
        context_id = canonical_id(context_id)
        arg.text(version_id, "version_id")
        token = arg.lock_token(lock_token, arg.user(user_id))
        await self._reader.readable(context_id, user_id)
        target, document = await self._history.version(context_id, version_id)
        change = Rollback(target, document, branch, self._core.versioning)
        done = await self._writer.commit(
            context_id, change, user_id=user_id, branch=branch, lock_token=token
        )
        return context_from_record(done.record)

    async def create_branch(
        self,
        context_id: str,
        name: str,
        from_version_id: str | None,
        user_id: str | None,
        lock_token: int | None,
    ) -> Branch:
        context_id = canonical_id(context_id)
        arg.branch_name(name)
        if from_version_id is not None:
            arg.text(from_version_id, "from_version_id")
        token = arg.lock_token(lock_token, arg.user(user_id))
        await self._reader.readable(context_id, user_id)
        fork = (
            None if from_version_id is None else await self._fork_point(context_id, from_version_id)
        )
        change = CreateBranch(name, fork, self._core.versioning)
        record, row = await self._writer.create_branch(
            context_id, name, change, user_id=user_id, lock_token=token
        )
        return branch_model(record, row)

    async def _fork_point(self, context_id: str, version_id: str) -> ForkPoint:
        version, document = await self._history.version(context_id, version_id)
        return ForkPoint(
            version_id=version.version_id,
            document={k: v for k, v in document.items() if k not in OWNERSHIP_FIELDS},
            view=version.view,
            turn_count=version.turn_count,
        )

    async def branches(self, context_id: str, user_id: str | None) -> list[Branch]:
        context_id = canonical_id(context_id)
        record = await self._reader.readable(context_id, user_id, include_deleted=True)
        rows = await self._core.storage.list_branches(context_id)
        return [branch_model(record, None), *(branch_model(record, row) for row in rows)]

    # -- merging -------------------------------------------------------------------------

    async def merge(
        self,
        context_id: str,
        source: str,
        target: str,
        user_id: str | None,
        strategy: MergeStrategy,
        *,
        lock_token: int | None,
    ) -> MergeResult:
        context_id = canonical_id(context_id)
        if strategy not in _MERGE_STRATEGIES:
            raise ValidationFailed(
                f"strategy is one of {', '.join(_MERGE_STRATEGIES)}",
                [Issue("/strategy", describe(strategy))],
            )
        arg.text(source, "source")
        arg.text(target, "target")
        if source == target:
            raise ValidationFailed("a branch cannot be merged into itself")
        token = arg.lock_token(lock_token, arg.user(user_id))
        first: int | None = None  # the revision the first attempt was computed on
        for _ in range(_MERGE_ATTEMPTS):
            try:
                result, revision = await self._merge(
                    context_id, source, target, user_id, strategy, lock_token=token
                )
            except RevisionConflict as moved:  # the context moved on while it was computed
                result, revision = None, moved.expected_revision
            if result is not None:
                return result
            first = revision if first is None else first
        current = (await self._reader.readable(context_id, user_id, fresh=True)).revision
        raise RevisionConflict(context_id, first if first is not None else current, current)

    async def _merge(
        self,
        context_id: str,
        source: str,
        target: str,
        user_id: str | None,
        strategy: MergeStrategy,
        *,
        lock_token: int | None,
    ) -> tuple[MergeResult | None, int]:
        """The merge (None once it made a version of the source to record: then it is
        computed again), and the revision it was computed on: the row as storage has it,
        for the merge is checked against that revision."""
        record = await self._reader.readable(context_id, user_id, fresh=True)
        theirs = await self._reader.on_branch(record, source)
        ours = await self._reader.on_branch(record, target)
        base = await self._common_version(context_id, theirs, ours)
        base_fields: dict[str, Any] = {}
        if base is not None:
            document = (await self._history.version(context_id, base.version_id))[1]
            base_fields = {k: v for k, v in document.items() if k not in OWNERSHIP_FIELDS}
        ours_document = branch_document(ours)
        merge = three_way_merge(base_fields, ours_document, branch_document(theirs))
        outcome = _outcome(source, target, base, merge)
        if outcome.conflicts and strategy == "fail":
            return outcome, record.revision
        if theirs.versioning.head is None or theirs.versioning.changes_since:
            # A merge records the source version it took in: make one of the source as it is.
            request = VersionRequest(user_id, "merge point")
            await self._checkpoint(context_id, request, source, lock_token)
            return None, record.revision
        merged = merge.merged
        if strategy == "source":
            choices: dict[str, Side] = {c.path: "theirs" for c in merge.conflicts}
            merged = apply_choices(merged, merge.conflicts, choices)
        ops = jsonpatch.make_patch(ours_document, merged).patch
        rows = await self._messages_to_merge(context_id, theirs, ours, base)
        added = await self._history.messages(rows)
        assert theirs.versioning.head is not None
        change = Merge(
            ops=ops,
            messages=rows,
            message_changes=[
                {
                    "op": "add",
                    "path": "/messages/-",
                    "value": m.model_dump(mode="json", exclude={"seq"}),
                }
                for m in added
            ],
            expected_revision=record.revision,
            merged_from=theirs.versioning.head,
            request=VersionRequest(user_id, f"merge {source} into {target}"),
            branch=target,
            versioning=self._core.versioning,
        )
        done = await self._writer.commit(
            context_id, change, user_id=user_id, branch=target, lock_token=lock_token
        )
        version = version_model(done.version)
        merged_result = outcome.model_copy(
            update={
                "merged": True,
                "revision": version.revision,
                "version": version,
                "changes": ops,
                "messages_added": len(rows),
            }
        )
        return merged_result, record.revision

    async def _messages_to_merge(
        self,
        context_id: str,
        theirs: ContextRecord,
        ours: ContextRecord,
        base: VersionRecord | None,
    ) -> list[MessageRecord]:
        """The source's messages since the version both share (since its fork, or its
        last merge), less any the target already holds (by id)."""
        source_view = view_of(theirs.versioning, theirs.message_count)
        target_view = view_of(ours.versioning, ours.message_count)
        since = common_prefix(source_view, target_view if base is None else base.view)
        rows = await self._history.message_rows(context_id, source_view, after_seq=since)
        held = await self._history.message_rows(
            context_id, target_view, after_seq=common_prefix(target_view, source_view)
        )
        known = {row.message_id for row in held}
        return [row for row in rows if row.message_id not in known]

    async def _common_version(
        self, context_id: str, a: ContextRecord, b: ContextRecord
    ) -> VersionRecord | None:
        """The newest version both branches' heads descend from, through their parents
        and the versions earlier merges took in."""
        versions = {v.version_id: v for v in await self._core.storage.list_versions(context_id)}

        def ancestors(head: str | None) -> set[str]:
            seen: set[str] = set()
            pending = [head]
            while pending:
                version_id = pending.pop()
                if version_id is None or version_id in seen or version_id not in versions:
                    continue
                seen.add(version_id)
                pending += [versions[version_id].parent_id, versions[version_id].merge_parent_id]
            return seen

        shared = ancestors(a.versioning.head) & ancestors(b.versioning.head)
        return max((versions[v] for v in shared), key=lambda v: v.number, default=None)


def _outcome(
    source: str, target: str, base: VersionRecord | None, merge: ThreeWayMerge
) -> MergeResult:
    return MergeResult(
        source=source,
        target=target,
        base_version_id=None if base is None else base.version_id,
        merged=False,
        conflicts=[
            MergeConflict(
                path=c.path,
                base=_present(c.base),
                source=_present(c.theirs),
                target=_present(c.ours),
            )
            for c in merge.conflicts
        ],
    )


def _completed(record: ContextRecord, document: dict[str, Any]) -> dict[str, Any]:
    """A version's fields; a branch version's lack the context's own (owner,
    collaborators, permissions, state), which are taken as they are now."""
    return {**{k: v for k, v in document_of(record).items() if k in OWNERSHIP_FIELDS}, **document}


def _present(value: Any) -> Any:
    return None if value is MISSING else value
