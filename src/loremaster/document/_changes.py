"""The basic changes of a context: create, update, append, delete, restore, archive.

Each change is an object whose `plan` takes the current row and the `Write` it is part of
and returns the `Mutation` to commit (or None for a change that changes nothing), or
raises to write nothing at all. Plans are pure: the writer runs them inside the storage
transaction.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import jsonpatch
from pydantic import ValidationError

from .._storable import check_json
from ..errors import ContextNotFound, Issue, PayloadTooLarge, RevisionConflict, ValidationFailed
from ..models import (
    CollaborativeContext,
    Context,
    ContextState,
    ContextType,
    ConversationContext,
    Message,
    MessageRole,
    Permission,
    ProviderType,
    count_turns,
    from_micros,
    read_message_groups,
)
from ..patch import (
    JsonPatch,
    apply_changes,
    escape_pointer,
    same_document,
    top_level_fields,
)
from ..storage import ContextRecord, EventRecord, Mutation, NewContext
from ._access import GUARDED_FIELDS, authorize
from ._records import (
    PROTECTED_FIELDS,
    MessageBodies,
    context_from_record,
    document_of,
    message_record,
    record_from_document,
    with_owner,
)
from ._write import Write

__all__ = [
    "Append",
    "Archive",
    "Delete",
    "Restore",
    "Update",
    "check_purgeable",
    "check_size",
    "commit_document",
    "event_for",
    "new_context",
    "parse_messages",
    "readable",
    "writable",
]


def check_size(record: ContextRecord, max_bytes: int) -> None:
    if record.size_bytes > max_bytes:
        raise PayloadTooLarge(record.size_bytes, max_bytes)


def event_for(
    record: ContextRecord, op: str, changes: JsonPatch, user_id: str | None
) -> EventRecord:
    return EventRecord(
        context_id=record.context_id,
        revision=record.revision,
        op=op,
        changes=changes,
        user_id=user_id,
        created_at=record.last_modified,
    )


def _seated(context: Context) -> Context:
    """A new room's participants are at the table: members who may read and write."""
    if not isinstance(context, CollaborativeContext):
        return context
    seated = [p for p in context.active_participants if p != context.owner_id]
    members = list(dict.fromkeys([*context.collaborators, *seated]))
    return context.model_copy(update={"collaborators": members})


def new_context(context: Context, write: Write, bodies: MessageBodies) -> NewContext:
    """The first revision of `context`, owned by the writer unless it names an owner.

    ``created_at`` is kept (an import keeps its history's start); the other times are now.
    """
    messages = context.messages if isinstance(context, ConversationContext) else []
    now = from_micros(write.now)
    stamped = _seated(with_owner(context, write.user_id)).model_copy(
        update={"last_modified": now, "last_accessed": now}
    )
    packed = [message_record(m, seq, bodies) for seq, m in enumerate(messages, start=1)]
    record = record_from_document(
        stamped,
        revision=1,
        message_count=len(messages),
        turn_count=count_turns(messages),
        messages_bytes=sum(size for _, size in packed),
    )
    check_size(record, write.max_bytes)
    snapshot = stamped.model_dump(mode="json")
    snapshot["revision"] = record.revision
    if isinstance(stamped, ConversationContext):
        snapshot |= {"message_count": record.message_count, "turn_count": record.turn_count}
    created = event_for(
        record, "create", [{"op": "add", "path": "", "value": snapshot}], write.user_id
    )
    return NewContext(record, [r for r, _ in packed], created)


def readable(current: ContextRecord, user_id: str | None) -> None:
    authorize(current, user_id, Permission.READ)
    if current.state == ContextState.DELETED:
        raise ContextNotFound(current.context_id)


def writable(current: ContextRecord, user_id: str | None) -> None:
    readable(current, user_id)
    authorize(current, user_id, Permission.WRITE)


def _changed_fields(changes: Mapping[str, Any] | Sequence[Any]) -> set[str]:
    if isinstance(changes, Mapping):
        return {str(key) for key in changes}
    return top_level_fields([dict(op) for op in changes if isinstance(op, Mapping)])


@dataclass(frozen=True, slots=True)
class Update:
    """A merge patch (a dict) or JSON Patch (a list) over the fields; `check` (the
    validator's checks, when validation is on) may refuse the result, seeing the row
    before it."""

    changes: Mapping[str, Any] | Sequence[Any]
    expected_revision: int | None = None
    check: Callable[[ContextRecord, Context], None] | None = None

    def plan(self, current: ContextRecord, write: Write) -> Mutation | None:
        writable(current, write.user_id)
        if self.expected_revision is not None and self.expected_revision != current.revision:
            raise RevisionConflict(current.context_id, self.expected_revision, current.revision)
        touched = _changed_fields(self.changes)
        protected = sorted(touched & (PROTECTED_FIELDS | {""}))
        if protected:
            hint = " (add messages with append_messages)" if "messages" in protected else ""
            raise ValidationFailed(
                "read-only fields cannot be changed" + hint,
                [Issue("/" + escape_pointer(name), "read-only") for name in protected],
            )
        if touched & GUARDED_FIELDS:
            authorize(current, write.user_id, Permission.ADMIN)
        document, ops = apply_changes(document_of(current), self.changes)
        if not ops:
            return None
        try:
            updated = context_from_record(current, document=document)
        except ValidationFailed as exc:
            raise ValidationFailed("the update would make the context invalid", exc.issues) from exc
        if self.check is not None:
            self.check(current, updated)
        mutation = commit_document(current, updated, write, op="update", ops=ops)
        # The model may normalize what was written (a partial object gets its defaults): the
        # event's patch must lead to what is stored.
        stored = document_of(mutation.record)
        if same_document(stored, document):
            return mutation
        ops = [*ops, *jsonpatch.make_patch(document, stored).patch]
        event = dataclasses.replace(mutation.event, changes=ops)
        return dataclasses.replace(mutation, event=event)


def commit_document(
    current: ContextRecord,
    updated: Context,
    write: Write,
    *,
    op: str,
    ops: JsonPatch,
    sized: bool = True,
) -> Mutation:
    """`updated` as the context's next revision; within the size limit unless not `sized`
    (archiving, say, must work on a context that outgrew a since-lowered limit)."""
    record = dataclasses.replace(
        record_from_document(
            updated,
            revision=current.revision + 1,
            message_count=current.message_count,
            turn_count=current.turn_count,
            messages_bytes=current.messages_bytes,
        ),
        created_at=current.created_at,
        last_modified=write.now,
        last_accessed=max(write.now, current.last_accessed),
        version_number=current.version_number,
        versioning=current.versioning,
        coordination=current.coordination,
    )
    if sized:
        check_size(record, write.max_bytes)
    return Mutation(
        record=record,
        event=event_for(record, op, ops, write.user_id),
        segment=current.versioning.segment,
    )


def _with_state(
    current: ContextRecord, state: ContextState, write: Write, *, op: str, sized: bool = True
) -> Mutation:
    updated = context_from_record(current, document={**document_of(current), "state": state.value})
    ops: JsonPatch = [{"op": "replace", "path": "/state", "value": state.value}]
    return commit_document(current, updated, write, op=op, ops=ops, sized=sized)


@dataclass(frozen=True, slots=True)
class Delete:
    """Soft delete: state ``deleted``, restorable; owner and admins only."""

    def plan(self, current: ContextRecord, write: Write) -> Mutation:
        authorize(current, write.user_id, Permission.ADMIN)
        if current.state == ContextState.DELETED:
            raise ContextNotFound(current.context_id)
        return _with_state(current, ContextState.DELETED, write, op="delete")


@dataclass(frozen=True, slots=True)
class Restore:
    """Undo a soft delete: state ``active``; owner and admins only."""

    def plan(self, current: ContextRecord, write: Write) -> Mutation:
        authorize(current, write.user_id, Permission.ADMIN)
        if current.state != ContextState.DELETED:
            raise ValidationFailed(
                "only a deleted context can be restored", [Issue("/state", current.state)]
            )
        return _with_state(current, ContextState.ACTIVE, write, op="restore")


@dataclass(frozen=True, slots=True)
class Archive:
    """Retention: archive an active context not accessed since `idle_before` (re-checked
    here, in the transaction, in case it was used since it was picked). No size limit: a
    context that grew past a since-lowered CONTEXT_MAX_SIZE_MB is still archived."""

    idle_before: int

    def plan(self, current: ContextRecord, write: Write) -> Mutation | None:
        if current.state != ContextState.ACTIVE or current.last_accessed >= self.idle_before:
            return None
        return _with_state(current, ContextState.ARCHIVED, write, op="archive", sized=False)


def check_purgeable(current: ContextRecord, *, deleted_before: int) -> None:
    """Retention: only a context soft-deleted before `deleted_before` may be purged."""
    if current.state != ContextState.DELETED or current.last_modified >= deleted_before:
        raise ValidationFailed("the context is no longer due for purging")


def parse_messages(
    messages: Sequence[Message | Mapping[str, Any]], source: ProviderType | None = None
) -> list[Message]:
    """Messages from models or dicts (the ``{"role", "content"}`` shorthand included, and
    a provider's own message shape: detected, or `source`'s), whose content is storable
    JSON (`check_json`). A model is validated again, as `parse_context` does. Issues name
    the message given (``/{index}``), whatever it became."""
    parsed: list[Message] = []
    for index, group in enumerate(read_message_groups(messages, source)):
        for given in group:
            parsed.append(_parse_message(given, f"/{index}"))
    return parsed


def _parse_message(given: Message | Mapping[str, Any], at: str) -> Message:
    fields: Any = given
    if isinstance(given, Message):
        check_json(given, at)  # first: past its depth limit, pydantic cannot dump it
        fields = given.model_dump(warnings=False)
    try:
        message = Message.model_validate(fields)
    except ValidationError as exc:
        issues = [
            Issue(f"{at}/" + "/".join(str(p) for p in error["loc"]), error["msg"])
            for error in exc.errors()
        ]
        raise ValidationFailed("invalid message", issues) from exc
    check_json(message, at)
    return message


@dataclass(frozen=True, slots=True)
class Append:
    """Messages added to a conversation: rows of their own; the document is untouched."""

    messages: Sequence[Message]
    bodies: MessageBodies

    def plan(self, current: ContextRecord, write: Write) -> Mutation:
        writable(current, write.user_id)
        if current.context_type != ContextType.CONVERSATION:
            raise ValidationFailed(
                f"only conversation contexts hold messages; this one is {current.context_type}",
                [Issue("/context_type", current.context_type)],
            )
        first = current.message_count + 1
        packed = [
            message_record(message, seq, self.bodies)
            for seq, message in enumerate(self.messages, start=first)
        ]
        records = [record for record, _ in packed]
        record = dataclasses.replace(
            current,
            revision=current.revision + 1,
            message_count=current.message_count + len(records),
            turn_count=current.turn_count + sum(m.role is MessageRole.USER for m in self.messages),
            messages_bytes=current.messages_bytes + sum(size for _, size in packed),
            last_modified=write.now,
        )
        check_size(record, write.max_bytes)
        changes: JsonPatch = [
            {
                "op": "add",
                "path": "/messages/-",
                "value": m.model_dump(mode="json", exclude={"seq"}),
            }
            for m in self.messages
        ]
        return Mutation(
            record=record,
            event=event_for(record, "append_messages", changes, write.user_id),
            messages=records,
            document_changed=False,
            segment=current.versioning.segment,
        )
