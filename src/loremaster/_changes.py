"""What each kind of change writes: pure plans run inside the storage transaction.

Each function takes the current row and returns the `Mutation` to commit (or None for a
change that changes nothing), or raises to write nothing at all.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import jsonpatch
from pydantic import ValidationError

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
from ._storable import check_json
from .errors import ContextNotFound, Issue, PayloadTooLarge, RevisionConflict, ValidationFailed
from .models import (
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
from .patch import JsonPatch, apply_changes, escape_pointer, same_json, top_level_fields
from .storage import ContextRecord, EventRecord, Mutation, NewContext

__all__ = [
    "check_purgeable",
    "check_size",
    "commit_document",
    "event_for",
    "parse_messages",
    "plan_append",
    "plan_archive",
    "plan_create",
    "plan_delete",
    "plan_restore",
    "plan_update",
    "readable",
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


def plan_create(
    context: Context, *, user_id: str | None, now: int, max_bytes: int, bodies: MessageBodies
) -> NewContext:
    """The first revision of `context`, owned by `user_id` unless it names an owner.

    ``created_at`` is kept (an import keeps its history's start); the other times are now.
    """
    messages = context.messages if isinstance(context, ConversationContext) else []
    stamped = _seated(with_owner(context, user_id)).model_copy(
        update={"last_modified": from_micros(now), "last_accessed": from_micros(now)}
    )
    packed = [message_record(m, seq, bodies) for seq, m in enumerate(messages, start=1)]
    message_records = [record for record, _ in packed]
    record = record_from_document(
        stamped,
        revision=1,
        message_count=len(messages),
        turn_count=count_turns(messages),
        messages_bytes=sum(size for _, size in packed),
    )
    check_size(record, max_bytes)
    snapshot = stamped.model_dump(mode="json")
    snapshot["revision"] = record.revision
    if isinstance(stamped, ConversationContext):
        snapshot |= {"message_count": record.message_count, "turn_count": record.turn_count}
    return NewContext(
        record,
        message_records,
        event_for(record, "create", [{"op": "add", "path": "", "value": snapshot}], user_id),
    )


def readable(current: ContextRecord, user_id: str | None) -> None:
    authorize(current, user_id, Permission.READ)
    if current.state == ContextState.DELETED:
        raise ContextNotFound(current.context_id)


def _changed_fields(changes: Mapping[str, Any] | Sequence[Any]) -> set[str]:
    if isinstance(changes, Mapping):
        return {str(key) for key in changes}
    return top_level_fields([dict(op) for op in changes if isinstance(op, Mapping)])


def plan_update(
    current: ContextRecord,
    *,
    changes: Mapping[str, Any] | Sequence[Any],
    user_id: str | None,
    expected_revision: int | None,
    now: int,
    max_bytes: int,
    check: Callable[[Context], None] | None = None,
) -> Mutation | None:
    """An update; `check` (the validator's, when validation is on) may refuse the result."""
    readable(current, user_id)
    authorize(current, user_id, Permission.WRITE)
    if expected_revision is not None and expected_revision != current.revision:
        raise RevisionConflict(current.context_id, expected_revision, current.revision)
    touched = _changed_fields(changes)
    protected = sorted(touched & (PROTECTED_FIELDS | {""}))
    if protected:
        hint = " (add messages with append_messages)" if "messages" in protected else ""
        raise ValidationFailed(
            "read-only fields cannot be changed" + hint,
            [Issue("/" + escape_pointer(name), "read-only") for name in protected],
        )
    if touched & GUARDED_FIELDS:
        authorize(current, user_id, Permission.ADMIN)
    document, ops = apply_changes(document_of(current), changes)
    if not ops:
        return None
    try:
        updated = context_from_record(current, document=document)
    except ValidationFailed as exc:
        raise ValidationFailed("the update would make the context invalid", exc.issues) from exc
    if check is not None:
        check(updated)
    mutation = commit_document(
        current, updated, op="update", ops=ops, user_id=user_id, now=now, max_bytes=max_bytes
    )
    # The model may normalize what was written (a partial object gets its defaults): the
    # event's patch must lead to what is stored.
    stored = document_of(mutation.record)
    if same_json(stored, document):
        return mutation
    ops = [*ops, *jsonpatch.make_patch(document, stored).patch]
    return dataclasses.replace(mutation, event=dataclasses.replace(mutation.event, changes=ops))


def commit_document(
    current: ContextRecord,
    updated: Context,
    *,
    op: str,
    ops: JsonPatch,
    user_id: str | None,
    now: int,
    max_bytes: int,
) -> Mutation:
    record = dataclasses.replace(
        record_from_document(
            updated,
            revision=current.revision + 1,
            message_count=current.message_count,
            turn_count=current.turn_count,
            messages_bytes=current.messages_bytes,
        ),
        created_at=current.created_at,
        last_modified=now,
        last_accessed=max(now, current.last_accessed),
        version_number=current.version_number,
        versioning=current.versioning,
        coordination=current.coordination,
    )
    check_size(record, max_bytes)
    return Mutation(
        record=record, event=event_for(record, op, ops, user_id), segment=current.versioning.segment
    )


def _with_state(
    current: ContextRecord,
    state: ContextState,
    *,
    op: str,
    user_id: str | None,
    now: int,
    max_bytes: int,
) -> Mutation:
    updated = context_from_record(current, document={**document_of(current), "state": state.value})
    ops: JsonPatch = [{"op": "replace", "path": "/state", "value": state.value}]
    return commit_document(
        current, updated, op=op, ops=ops, user_id=user_id, now=now, max_bytes=max_bytes
    )


def plan_delete(
    current: ContextRecord, *, user_id: str | None, now: int, max_bytes: int
) -> Mutation:
    """Soft delete: state ``deleted``, restorable; owner and admins only."""
    authorize(current, user_id, Permission.ADMIN)
    if current.state == ContextState.DELETED:
        raise ContextNotFound(current.context_id)
    return _with_state(
        current, ContextState.DELETED, op="delete", user_id=user_id, now=now, max_bytes=max_bytes
    )


def plan_restore(
    current: ContextRecord, *, user_id: str | None, now: int, max_bytes: int
) -> Mutation:
    """Undo a soft delete: state ``active``; owner and admins only."""
    authorize(current, user_id, Permission.ADMIN)
    if current.state != ContextState.DELETED:
        raise ValidationFailed(
            "only a deleted context can be restored", [Issue("/state", current.state)]
        )
    return _with_state(
        current, ContextState.ACTIVE, op="restore", user_id=user_id, now=now, max_bytes=max_bytes
    )


def plan_archive(current: ContextRecord, *, idle_before: int, now: int) -> Mutation | None:
    """Retention: archive an active context not accessed since `idle_before` (re-checked
    here, in the transaction, in case it was used since it was picked). No size limit: a
    context that grew past a since-lowered CONTEXT_MAX_SIZE_MB is still archived."""
    if current.state != ContextState.ACTIVE or current.last_accessed >= idle_before:
        return None
    return _with_state(
        current, ContextState.ARCHIVED, op="archive", user_id=None, now=now, max_bytes=2**62
    )


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


def plan_append(
    current: ContextRecord,
    *,
    messages: Sequence[Message],
    user_id: str | None,
    now: int,
    max_bytes: int,
    bodies: MessageBodies,
) -> Mutation:
    readable(current, user_id)
    authorize(current, user_id, Permission.WRITE)
    if current.context_type != ContextType.CONVERSATION:
        raise ValidationFailed(
            f"only conversation contexts hold messages; this one is {current.context_type}",
            [Issue("/context_type", current.context_type)],
        )
    packed = [
        message_record(message, seq, bodies)
        for seq, message in enumerate(messages, start=current.message_count + 1)
    ]
    records = [record for record, _ in packed]
    record = dataclasses.replace(
        current,
        revision=current.revision + 1,
        message_count=current.message_count + len(records),
        turn_count=current.turn_count + sum(m.role is MessageRole.USER for m in messages),
        messages_bytes=current.messages_bytes + sum(size for _, size in packed),
        last_modified=now,
    )
    check_size(record, max_bytes)
    changes: JsonPatch = [
        {
            "op": "add",
            "path": "/messages/-",
            "value": message.model_dump(mode="json", exclude={"seq"}),
        }
        for message in messages
    ]
    return Mutation(
        record=record,
        event=event_for(record, "append_messages", changes, user_id),
        messages=records,
        document_changed=False,
        segment=current.versioning.segment,
    )
