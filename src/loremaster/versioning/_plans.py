"""What versioning writes: changes (pure plans) run inside the storage transaction, as
the document's basic changes are.

Every change on a branch (main included) is tracked on the branch's `VersionState`; when
the policy says so it also makes a version. Branches other than main are rows of their
own: a plan for a branch runs on a *view* of the context (the context row with the
branch's fields, messages and state) and its mutation is split back into the context row
(revision, times, version counter) and the branch row.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from typing import Any

import jsonpatch
import orjson

from ..codec import Codec
from ..document import (
    GUARDED_FIELDS,
    OWNERSHIP_FIELDS,
    Change,
    Write,
    check_size,
    commit_document,
    context_from_record,
    document_of,
    event_for,
    field_ops,
    writable,
)
from ..errors import BranchNotFound, Issue, RevisionConflict, ValidationFailed
from ..models import MessageRole
from ..patch import JsonPatch, apply_changes, escape_pointer
from ..storage import (
    BranchRecord,
    ContextRecord,
    MessageRecord,
    Mutation,
    Piece,
    VersionRecord,
    VersionState,
)
from ._store import VersionPolicy, VersionRequest, make_version, track_change
from ._views import view_of

__all__ = [
    "CreateBranch",
    "CreateVersion",
    "ForkPoint",
    "Merge",
    "Rewrite",
    "Rollback",
    "Versioning",
    "branch_document",
    "branch_view",
]

_DOCUMENT_COLUMNS = ("title", "description", "data", "metadata")


def branch_document(record: ContextRecord) -> dict[str, Any]:
    """The fields a branch holds of its own: all but owner, collaborators, permissions
    and state, which belong to the context."""
    return {k: v for k, v in document_of(record).items() if k not in OWNERSHIP_FIELDS}


def branch_view(current: ContextRecord, branch: BranchRecord) -> ContextRecord:
    """The context as seen on `branch`: its fields, messages and versioning state."""
    document = branch.document
    return dataclasses.replace(
        current,
        title=document["title"],
        description=document["description"],
        data=document["data"],
        metadata=document["metadata"],
        extra={k: v for k, v in document.items() if k not in _DOCUMENT_COLUMNS},
        message_count=branch.message_count,
        turn_count=branch.turn_count,
        messages_bytes=branch.messages_bytes,
        versioning=branch.versioning,
        last_modified=branch.last_modified,
        checksum=None,
    )


@dataclasses.dataclass(frozen=True, slots=True)
class Versioning:
    """The manager's versioning setup: how payloads are encoded and when versions are made."""

    codec: Codec
    policy: VersionPolicy

    def make(
        self, record: ContextRecord, branch: str, request: VersionRequest
    ) -> tuple[ContextRecord, VersionRecord]:
        """A version of `record` (a branch's state after a change) and the record with
        its head moved to it. A branch's versions hold its own fields only: owner,
        collaborators, permissions and state are the context's, and change on main."""
        version, state = make_version(
            codec=self.codec,
            policy=self.policy,
            context_id=record.context_id,
            branch=branch,
            number=record.version_number + 1,
            state=record.versioning,
            document=document_of(record) if branch == "main" else branch_document(record),
            view=view_of(record.versioning, record.message_count),
            turn_count=record.turn_count,
            revision=record.revision,
            request=request,
            now=record.last_modified,
        )
        return dataclasses.replace(record, versioning=state, version_number=version.number), version

    def track(self, mutation: Mutation | None, *, branch: str) -> Mutation | None:
        """`mutation` with the branch's bookkeeping, and a version when one is due.

        A mutation that already makes its version (rollback, merge) is left alone.
        """
        if mutation is None or mutation.version is not None:
            return mutation
        if not mutation.document_changed and not mutation.messages:
            return mutation  # a lock, say: neither the fields nor the messages changed
        ops = field_ops(mutation.event.changes) if mutation.document_changed else []
        record = dataclasses.replace(
            mutation.record, versioning=track_change(mutation.record.versioning, ops)
        )
        if not self.policy.due(record.versioning, record.last_modified):
            return dataclasses.replace(mutation, record=record)
        record, version = self.make(
            record, branch, VersionRequest(mutation.event.user_id, automatic=True)
        )
        return dataclasses.replace(mutation, record=record, version=version)

    def on_branch(
        self,
        change: Change,
        current: ContextRecord,
        branch: BranchRecord | None,
        name: str,
        write: Write,
    ) -> Mutation | None:
        """`change` (written for a context row) made on branch `name`: planned on the
        branch's view and split back into the context row and the branch row."""
        if branch is None:
            raise BranchNotFound(current.context_id, name)
        mutation = self.track(change.plan(branch_view(current, branch), write), branch=name)
        return None if mutation is None else _split(current, branch, mutation, name)


def _split(current: ContextRecord, branch: BranchRecord, mutation: Mutation, name: str) -> Mutation:
    """A mutation of a branch view as writes to the context row and the branch row."""
    new = mutation.record
    changed = sorted(
        field
        for field in OWNERSHIP_FIELDS
        if getattr(new, field) != getattr(current, field) and field != "state"
    )
    if changed or new.state != current.state:
        raise ValidationFailed(
            "owner, collaborators, permissions and state belong to the context: change "
            "them on main",
            [Issue("/" + field, "not on a branch", "branch_field") for field in changed],
        )
    row = dataclasses.replace(
        branch,
        document=branch_document(new),
        message_count=new.message_count,
        turn_count=new.turn_count,
        messages_bytes=new.messages_bytes,
        versioning=new.versioning,
        last_modified=new.last_modified,
    )
    conflicts = tuple(
        entry if entry in current.coordination.conflicts else {**entry, "branch": name}
        for entry in new.coordination.conflicts
    )
    context_row = dataclasses.replace(
        current,
        revision=new.revision,
        last_modified=new.last_modified,
        version_number=new.version_number,
        coordination=dataclasses.replace(new.coordination, conflicts=conflicts),
    )
    return dataclasses.replace(
        mutation,
        record=context_row,
        document_changed=False,
        branch=row,
        event=dataclasses.replace(mutation.event, branch=name),
    )


@dataclasses.dataclass(frozen=True, slots=True)
class CreateVersion:
    """A version of the branch as it is now, announced as a ``create_version`` change
    (`RevisionConflict` if the context is no longer at `expected_revision`)."""

    request: VersionRequest
    branch: str
    versioning: Versioning
    expected_revision: int | None = None

    def plan(self, current: ContextRecord, write: Write) -> Mutation:
        writable(current, write.user_id)
        if self.expected_revision is not None and current.revision != self.expected_revision:
            raise RevisionConflict(current.context_id, self.expected_revision, current.revision)
        record = dataclasses.replace(
            current, revision=current.revision + 1, last_modified=write.now
        )
        record, version = self.versioning.make(record, self.branch, self.request)
        change = {"op": "add", "path": "/versions/-", "value": {"version_id": version.version_id}}
        return Mutation(
            record=record,
            event=event_for(record, "create_version", [change], write.user_id),
            document_changed=False,
            segment=record.versioning.segment,
            version=version,
        )


@dataclasses.dataclass(frozen=True, slots=True)
class Rollback:
    """The branch back at `target`'s fields (`document`) and messages, as a new revision
    and version.

    Owner, collaborators, permissions, state and a room's join policy stay as they are
    now. Messages after the target leave the branch's view (a new segment starts) but
    stay stored, reachable through the versions that cover them.
    """

    target: VersionRecord
    document: dict[str, Any]
    branch: str
    versioning: Versioning

    def plan(self, current: ContextRecord, write: Write) -> Mutation:
        writable(current, write.user_id)
        now_document = document_of(current)
        kept = {field: now_document[field] for field in GUARDED_FIELDS if field in now_document}
        restored = {**self.document, **kept}
        ops: JsonPatch = jsonpatch.make_patch(now_document, restored).patch
        updated = context_from_record(current, document=restored)
        mutation = commit_document(current, updated, write, op="rollback", ops=ops)
        record = mutation.record
        state = track_change(record.versioning, ops)
        changes = list(ops)
        target = self.target
        if target.view != view_of(current.versioning, current.message_count):
            state = dataclasses.replace(
                state, lineage=target.view, segment=f"{self.branch}~{record.revision}"
            )
            record = dataclasses.replace(
                record, message_count=target.message_seq, turn_count=target.turn_count
            )
            changes.append({"op": "replace", "path": "/message_count", "value": target.message_seq})
        record, version = self.versioning.make(
            dataclasses.replace(record, versioning=state),
            self.branch,
            VersionRequest(write.user_id, f"rollback to version {target.number}"),
        )
        return dataclasses.replace(
            mutation,
            record=record,
            event=event_for(record, "rollback", changes, write.user_id),
            segment=state.segment,
            version=version,
        )


@dataclasses.dataclass(frozen=True, slots=True)
class ForkPoint:
    """Where a new branch starts: a version's fields and message view."""

    version_id: str
    document: dict[str, Any]
    view: tuple[Piece, ...]
    turn_count: int


@dataclasses.dataclass(frozen=True, slots=True)
class CreateBranch:
    """A new branch `name` from `fork`, or from main as it is now (versioned first if it
    has changed since its last version). Nothing is copied: the branch sees the fork's
    messages through its lineage and appends to a segment of its own."""

    name: str
    fork: ForkPoint | None
    versioning: Versioning

    def plan(self, current: ContextRecord, existing: BranchRecord | None, write: Write) -> Mutation:
        writable(current, write.user_id)
        name = self.name
        if existing is not None:
            raise ValidationFailed(f"branch {name!r} exists", [Issue("/branch", name, "exists")])
        record = dataclasses.replace(
            current, revision=current.revision + 1, last_modified=write.now
        )
        version = None
        fork = self.fork
        if fork is None:
            state = record.versioning
            if state.head is None or state.changes_since:
                record, version = self.versioning.make(
                    record, "main", VersionRequest(write.user_id, f"fork point of branch {name}")
                )
            assert record.versioning.head is not None
            fork = ForkPoint(
                version_id=record.versioning.head,
                document=branch_document(record),
                view=view_of(record.versioning, record.message_count),
                turn_count=record.turn_count,
            )
        change = {
            "op": "add",
            "path": "/branches/" + escape_pointer(name),
            "value": {"base_version_id": fork.version_id},
        }
        return Mutation(
            record=record,
            event=dataclasses.replace(
                event_for(record, "create_branch", [change], write.user_id), branch=name
            ),
            document_changed=False,
            segment=record.versioning.segment,
            branch=_new_branch(record, name, fork, write),
            version=version,
        )


def _new_branch(record: ContextRecord, name: str, fork: ForkPoint, write: Write) -> BranchRecord:
    return BranchRecord(
        context_id=record.context_id,
        name=name,
        document=fork.document,
        message_count=fork.view[-1][1] if fork.view else 0,
        turn_count=fork.turn_count,
        messages_bytes=0,
        versioning=VersionState(  # its first version is a snapshot: it holds fewer fields
            segment=f"{name}~{record.revision}",
            lineage=fork.view,
            head=fork.version_id,
            head_at=write.now,
        ),
        base_version=fork.version_id,
        created_by=write.user_id,
        created_at=write.now,
        last_modified=write.now,
    )


def _commit_fields(
    current: ContextRecord, write: Write, *, op: str, ops: JsonPatch, expected_revision: int
) -> Mutation:
    """`ops` applied to the fields as one revision, tracked for versioning;
    `RevisionConflict` if the context moved on since they were computed."""
    writable(current, write.user_id)
    if current.revision != expected_revision:
        raise RevisionConflict(current.context_id, expected_revision, current.revision)
    updated = context_from_record(current, document=apply_changes(document_of(current), ops)[0])
    mutation = commit_document(current, updated, write, op=op, ops=ops, sized=False)
    state = track_change(mutation.record.versioning, ops)
    return dataclasses.replace(
        mutation, record=dataclasses.replace(mutation.record, versioning=state)
    )


def _json_bytes(values: Iterable[Any]) -> int:
    """The size messages count for, as an append counts them: their JSON's (what a row
    stores is compact, and not what the size limit measures)."""
    return sum(len(orjson.dumps(value)) for value in values)


def _users(messages: Sequence[MessageRecord]) -> int:
    return sum(m.role == MessageRole.USER for m in messages)


@dataclasses.dataclass(frozen=True, slots=True)
class Merge:
    """`ops` (the merged fields) and the source's `messages` applied to the target
    branch, as one revision and one version that records the source version it took in
    (`merged_from`); `RevisionConflict` if the context moved on since the merge was
    computed."""

    ops: JsonPatch
    messages: Sequence[MessageRecord]
    message_changes: JsonPatch
    expected_revision: int
    merged_from: str
    request: VersionRequest
    branch: str
    versioning: Versioning

    def plan(self, current: ContextRecord, write: Write) -> Mutation:
        mutation = _commit_fields(
            current, write, op="merge", ops=self.ops, expected_revision=self.expected_revision
        )
        start = current.message_count + 1
        copies = [
            dataclasses.replace(m, seq=seq) for seq, m in enumerate(self.messages, start=start)
        ]
        record = dataclasses.replace(
            mutation.record,
            message_count=current.message_count + len(copies),
            turn_count=current.turn_count + _users(copies),
            messages_bytes=current.messages_bytes
            + _json_bytes(change["value"] for change in self.message_changes),
        )
        check_size(record, write.max_bytes)
        record, version = self.versioning.make(record, self.branch, self.request)
        changes = [*self.ops, *self.message_changes]
        return dataclasses.replace(
            mutation,
            record=record,
            event=event_for(record, "merge", changes, write.user_id),
            messages=copies,
            segment=record.versioning.segment,
            version=dataclasses.replace(version, merge_parent_id=self.merged_from),
        )


@dataclasses.dataclass(frozen=True, slots=True)
class Rewrite:
    """`ops` applied to the fields and, unless `messages` is None, the conversation's
    messages replaced by `messages` (a new segment: the old ones stay stored, reachable
    through the versions that cover them); one revision and one version.
    `RevisionConflict` if the context moved on since the rewrite was computed."""

    op: str
    ops: JsonPatch
    messages: Sequence[MessageRecord] | None
    message_values: Sequence[dict[str, Any]]
    expected_revision: int
    request: VersionRequest
    branch: str
    versioning: Versioning

    def plan(self, current: ContextRecord, write: Write) -> Mutation:
        mutation = _commit_fields(
            current, write, op=self.op, ops=self.ops, expected_revision=self.expected_revision
        )
        record = mutation.record
        changes = list(self.ops)
        messages = self.messages
        if messages is not None:
            state = dataclasses.replace(
                record.versioning, lineage=(), segment=f"{self.branch}~{record.revision}"
            )
            record = dataclasses.replace(
                record,
                versioning=state,
                message_count=len(messages),
                turn_count=_users(messages),
                messages_bytes=record.messages_bytes + _json_bytes(self.message_values),
            )
            changes.append(
                {"op": "replace", "path": "/messages", "value": list(self.message_values)}
            )
        check_size(record, write.max_bytes)
        record, version = self.versioning.make(record, self.branch, self.request)
        return dataclasses.replace(
            mutation,
            record=record,
            event=event_for(record, self.op, changes, write.user_id),
            messages=list(messages or ()),
            segment=record.versioning.segment,
            version=version,
        )
