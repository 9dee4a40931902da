"""Models <-> storage records, and queries <-> storage queries. Pure functions."""

from __future__ import annotations

import base64
import binascii
import dataclasses
import hashlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

import orjson
from pydantic import ValidationError

from .._storable import check_json, check_text, describe
from ..codec import Codec
from ..errors import DataCorrupted, Issue, ValidationFailed
from ..models import (
    SOURCE_KEY,
    Context,
    ContextEvent,
    ContextQuery,
    ContextState,
    ContextType,
    ConversationContext,
    Message,
    ProviderType,
    SearchHit,
    TextPart,
    ToolResultPart,
    context_class,
    from_micros,
    to_micros,
)
from ..storage import (
    ContextRecord,
    EventRecord,
    MessageRecord,
    RecordQuery,
    SearchRecord,
    message_fields,
    pack_message,
)

__all__ = [
    "PROTECTED_FIELDS",
    "SEARCHABLE_CHARACTERS",
    "MessageBodies",
    "best_hits",
    "canonical_id",
    "canonical_json",
    "content_checksum",
    "context_from_record",
    "document_of",
    "event_from_record",
    "field_ops",
    "message_from_record",
    "message_record",
    "next_cursor",
    "parse_context",
    "parse_query",
    "record_from_document",
    "record_query",
    "validation_failed",
    "verify_checksum",
    "with_owner",
]

PROTECTED_FIELDS = frozenset(
    {
        "context_id",
        "context_type",
        "revision",
        "created_at",
        "last_modified",
        "last_accessed",
        "messages",
        "message_count",
        "turn_count",
    }
)
"""Fields no update may set: identity, bookkeeping, and messages (use append_messages)."""

_COLUMNS = (
    "title",
    "description",
    "data",
    "metadata",
    "state",
    "owner_id",
    "collaborators",
    "permissions",
)


def validation_failed(message: str, exc: ValidationError) -> ValidationFailed:
    """Our error for a pydantic one, one issue per problem with a JSON pointer."""
    issues = [
        Issue("/" + "/".join(str(p) for p in error["loc"]), error["msg"]) for error in exc.errors()
    ]
    return ValidationFailed(message, issues)


# Events also report what changed outside the fields: messages, versions, branches, the
# edit lock and recorded conflicts.
_OUTSIDE_FIELDS = frozenset(
    {"", "messages", "message_count", "versions", "branches", "lock", "conflicts"}
)


def field_ops(changes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The operations of an event's changes that apply to one of the context's fields
    (not to the whole document, nor to what lies outside the fields)."""
    return [op for op in changes if _top_field(op.get("path", "")) not in _OUTSIDE_FIELDS]


def _top_field(path: str) -> str:
    """The field a JSON Pointer starts with ("" for the whole document)."""
    return path.split("/")[1] if path.startswith("/") else ""


def document_of(record: ContextRecord) -> dict[str, Any]:
    """The part of a context that updates may patch (no protected fields)."""
    return {
        "title": record.title,
        "description": record.description,
        "data": record.data,
        "metadata": record.metadata,
        "state": record.state,
        "owner_id": record.owner_id,
        "collaborators": record.collaborators,
        "permissions": record.permissions,
        **record.extra,
    }


# A JSON \u0000 escape not itself escaped (preceded by an even number of backslashes).
_NUL = re.compile(rb"(?:^|[^\\])(?:\\\\)*\\u0000")


def refuse_nul(serialized: bytes, path: str) -> None:
    """PostgreSQL cannot store NUL characters in text, so no backend accepts them."""
    if b"\\u0000" in serialized and _NUL.search(serialized):
        raise ValidationFailed(
            "NUL characters (\\u0000) cannot be stored", [Issue(path, "contains NUL")]
        )


def _document_bytes(document: Mapping[str, Any]) -> int:
    serialized = orjson.dumps(document)
    refuse_nul(serialized, "")
    return len(serialized)


def _canonical(value: Any) -> Any:
    """The same value whichever way a backend stored it (PostgreSQL's JSONB turns 1e20
    into 100000000000000000000): integral floats as ints, keys sorted at dump time."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**63:
        return int(value)
    if isinstance(value, dict):
        return {key: _canonical(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_canonical(item) for item in value]
    return value


def _may_hold_integral_float(serialized: bytes) -> bool:
    """Whether orjson may have written an integral float: "7.0" (before a delimiter, or
    at the end) or a large one with an exponent ("1e+20"). Text may match too; that
    only costs the slow path. Substring searches: far faster than a regex here."""
    return (
        b"e+" in serialized
        or b".0," in serialized
        or b".0]" in serialized
        or b".0}" in serialized
        or serialized.endswith(b".0")
    )


def canonical_json(value: Any) -> bytes:
    """`value` serialized the same way whichever backend stored it: the bytes to hash."""
    plain = orjson.dumps(value, option=orjson.OPT_SORT_KEYS)
    if not _may_hold_integral_float(plain):
        return plain  # no integral float: nothing to canonicalize
    return orjson.dumps(_canonical(value), option=orjson.OPT_SORT_KEYS)


def content_checksum(record: ContextRecord) -> str:
    """SHA-256 of a context's identity and content (not of its counters and times)."""
    content = {
        "context_id": record.context_id,
        "context_type": record.context_type,
        "document": document_of(record),
    }
    return hashlib.sha256(canonical_json(content)).hexdigest()


def verify_checksum(record: ContextRecord) -> ContextRecord:
    """`record`, if its content matches its checksum; else `DataCorrupted`."""
    if record.checksum is not None and content_checksum(record) != record.checksum:
        raise DataCorrupted(
            f"context {record.context_id} fails its checksum: the stored data is damaged"
        )
    return record


def record_from_document(
    context: Context, *, revision: int, message_count: int, turn_count: int, messages_bytes: int
) -> ContextRecord:
    """The row for a validated context model."""
    document = context.model_dump(mode="json", exclude=set(PROTECTED_FIELDS))
    extra = {key: value for key, value in document.items() if key not in _COLUMNS}
    record = ContextRecord(
        context_id=context.context_id,
        context_type=context.context_type.value,
        title=document["title"],
        description=document["description"],
        data=document["data"],
        metadata=document["metadata"],
        extra=extra,
        state=document["state"],
        owner_id=document["owner_id"],
        collaborators=document["collaborators"],
        permissions=document["permissions"],
        revision=revision,
        message_count=message_count,
        turn_count=turn_count,
        doc_bytes=_document_bytes(document),
        messages_bytes=messages_bytes,
        created_at=to_micros(context.created_at),
        last_modified=to_micros(context.last_modified),
        last_accessed=to_micros(context.last_accessed),
    )
    return dataclasses.replace(record, checksum=content_checksum(record))


def context_from_record(
    record: ContextRecord,
    messages: Iterable[Message] = (),
    document: Mapping[str, Any] | None = None,
) -> Context:
    """The model for a row (with `document` in place of its patchable fields, if given)."""
    fields: dict[str, Any] = {
        **(document_of(record) if document is None else document),
        "context_id": record.context_id,
        "context_type": record.context_type,
        "revision": record.revision,
        "created_at": from_micros(record.created_at),
        "last_modified": from_micros(record.last_modified),
        "last_accessed": from_micros(record.last_accessed),
    }
    cls = context_class(record.context_type)
    if issubclass(cls, ConversationContext):
        fields["messages"] = list(messages)
        fields["message_count"] = record.message_count
        fields["turn_count"] = record.turn_count
    try:
        context = cls.model_validate(fields)
    except ValidationError as exc:
        raise validation_failed(f"not a valid {record.context_type} context", exc) from exc
    return context.as_stale() if record.stale else context


SEARCHABLE_CHARACTERS = 100_000
"""How much of a message's text full-text search indexes: its first 100,000 characters.
PostgreSQL cannot index more than 1 MB of lexemes per value, and a message may be larger."""


def _search_text(message: Message) -> str:
    texts: list[str] = []
    size = 0
    for part in message.parts:
        if isinstance(part, TextPart):
            found = [part.text]
        elif isinstance(part, ToolResultPart):
            found = [item.text for item in part.content if isinstance(item, TextPart)]
        else:
            continue
        texts += found
        size += sum(len(text) + 1 for text in found)
        if size > SEARCHABLE_CHARACTERS:
            break
    return "\n".join(texts)[:SEARCHABLE_CHARACTERS]


@dataclass(frozen=True, slots=True)
class MessageBodies:
    """How message bodies are stored: as JSON, or, when larger than `threshold` bytes,
    through the codec (compressed, with the conversation dictionary when one is trained)."""

    codec: Codec
    threshold: int

    def pack(self, body: bytes) -> tuple[bytes, bytes | None]:
        if len(body) <= self.threshold:
            return body, None
        return b"", self.codec.encode(body, format="raw", kind=ContextType.CONVERSATION.value)

    def unpack(self, record: MessageRecord) -> bytes:
        if record.blob is None:
            return record.body
        body = self.codec.decode(record.blob)
        if not isinstance(body, bytes):
            raise DataCorrupted(f"message {record.seq} is stored as {type(body).__name__}")
        return body


def message_record(message: Message, seq: int, bodies: MessageBodies) -> tuple[MessageRecord, int]:
    """The row for `message` at position `seq` (its body in the compact stored form), and
    the size of its JSON."""
    value = message.model_dump(mode="json", exclude={"seq"})
    serialized = orjson.dumps(value)
    refuse_nul(serialized, f"/messages/{seq - 1}")
    search_text = _search_text(message)
    stored, blob = bodies.pack(pack_message(value, search_text))
    record = MessageRecord(
        seq=seq,
        message_id=message.id,
        role=message.role.value,
        body=stored,
        blob=blob,
        search_text=search_text,
        created_at=to_micros(message.created_at),
    )
    return record, len(serialized)


def message_from_record(record: MessageRecord, bodies: MessageBodies) -> Message:
    """The message a row stores, in either stored form of its body."""
    fields = message_fields(record, bodies.unpack(record))
    try:
        return Message.model_validate({**fields, "seq": record.seq})
    except ValidationError as exc:
        raise DataCorrupted(f"message {record.seq} does not read as a message") from exc


def event_from_record(record: EventRecord) -> ContextEvent:
    return ContextEvent(
        context_id=record.context_id,
        revision=record.revision,
        op=record.op,
        changes=record.changes,
        user_id=record.user_id,
        created_at=from_micros(record.created_at),
        branch=record.branch,
        provider=record.provider,
        tool=record.tool,
    )


def _flatten(
    match: Mapping[str, Any], prefix: tuple[str, ...] = ()
) -> list[tuple[tuple[str, ...], Any]]:
    pairs: list[tuple[tuple[str, ...], Any]] = []
    for key, value in match.items():
        if isinstance(value, Mapping) and value:
            pairs.extend(_flatten(value, (*prefix, key)))
        else:
            pairs.append(((*prefix, key), value))
    return pairs


def _micros(value: datetime | None) -> int | None:
    return None if value is None else to_micros(value)


def _order_value(record: ContextRecord, order_by: str) -> Any:
    return getattr(record, order_by)


def next_cursor(query: ContextQuery, last: ContextRecord) -> str:
    token = {
        "o": query.order_by,
        "d": query.descending,
        "v": _order_value(last, query.order_by),
        "i": last.context_id,
    }
    return base64.urlsafe_b64encode(orjson.dumps(token)).decode().rstrip("=")


def _decode_cursor(query: ContextQuery) -> tuple[Any, str] | None:
    if query.cursor is None:
        return None
    try:
        padded = query.cursor + "=" * (-len(query.cursor) % 4)
        token = orjson.loads(base64.urlsafe_b64decode(padded))
        if token["o"] != query.order_by or token["d"] != query.descending:
            raise ValidationFailed("invalid cursor: it belongs to another ordering")
        value, context_id = token["v"], token["i"]
        expected = str if query.order_by == "title" else int  # times are microseconds
        if not isinstance(context_id, str) or type(value) is not expected:
            raise ValueError("malformed cursor")
        check_json([value, context_id], "/cursor")
    except (binascii.Error, orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise ValidationFailed(
            "invalid cursor: pass the next_cursor of the previous page of the same query, "
            "whole and unchanged"
        ) from exc
    return value, context_id


def record_query(query: ContextQuery, reader: str | None) -> RecordQuery:
    """The storage query for `query` as seen by `reader`, one row more than a page."""
    states: tuple[str, ...]
    if query.state is None:
        states = (ContextState.ACTIVE.value, ContextState.ARCHIVED.value)
    else:
        states = (query.state.value,)
    return RecordQuery(
        context_type=None if query.context_type is None else query.context_type.value,
        states=states,
        owner_id=query.owner_id,
        collaborator=query.collaborator,
        title_contains=query.title_contains,
        metadata_match=tuple(_flatten(query.metadata_match)),
        created_after=_micros(query.created_after),
        created_before=_micros(query.created_before),
        modified_after=_micros(query.modified_after),
        modified_before=_micros(query.modified_before),
        order_by=query.order_by,
        descending=query.descending,
        limit=query.limit + 1,
        offset=query.offset,
        after=_decode_cursor(query),
        reader=reader,
    )


def best_hits(rows: Iterable[SearchRecord], limit: int, branch: str = "main") -> list[SearchHit]:
    """One hit per context (its best-scoring match), best first; all on `branch`."""
    best: dict[str, SearchHit] = {}
    for row in rows:
        hit = SearchHit(
            context_id=row.context_id,
            context_type=ContextType(row.context_type),
            title=row.title,
            score=row.score,
            snippet=row.snippet,
            matched="context" if row.message_seq is None else "message",
            message_seq=row.message_seq,
            branch=branch,
        )
        if row.context_id not in best or hit.score > best[row.context_id].score:
            best[row.context_id] = hit
    return sorted(best.values(), key=lambda hit: -hit.score)[:limit]


def parse_context(
    context: Context | Mapping[str, Any], source: ProviderType | None = None
) -> Context:
    """A context model from a model or a dict (its class chosen by ``context_type``),
    whose content is storable JSON (`check_json`). A model is validated again: one made
    with ``model_copy(update=...)`` or ``model_construct`` never was. `source`: the
    provider whose shape a dict's messages are in (default: detected)."""
    if isinstance(context, Context):
        check_json(context)  # first: past its own depth limit, pydantic cannot dump it
        context = context.model_dump(warnings=False)
    if not isinstance(context, Mapping):
        raise ValidationFailed(
            "a context is a Context model or a dict", [Issue("", f"got {describe(context)}")]
        )
    kind = context.get("context_type", ContextType.GENERIC)
    try:
        cls = context_class(kind)
    except (ValueError, TypeError) as exc:
        raise ValidationFailed(
            "unknown context_type", [Issue("/context_type", describe(kind))]
        ) from exc
    try:
        model = cls.model_validate(dict(context), context={SOURCE_KEY: source})
    except ValidationError as exc:
        raise validation_failed(f"not a valid {cls.kind.value} context", exc) from exc
    check_json(model)
    return model


def canonical_id(context_id: str) -> str:
    """The one spelling of an id (lowercase UUID), so every backend finds the same row."""
    if isinstance(context_id, UUID):
        return str(context_id)
    try:
        return str(UUID(check_text(context_id, "/context_id")))
    except ValueError:
        return context_id  # not a UUID: no context has it, and lookups say so


def with_owner(context: Context, user_id: str | None) -> Context:
    """`context`, owned by `user_id` unless it names its owner."""
    if context.owner_id is not None or user_id is None:
        return context
    return context.model_copy(update={"owner_id": user_id})


def parse_query(query: ContextQuery | None, filters: Mapping[str, Any]) -> ContextQuery:
    """The query from a `ContextQuery` or from its fields given as keyword filters."""
    if query is not None and filters:
        raise ValidationFailed("give a ContextQuery or keyword filters, not both")
    if isinstance(query, ContextQuery):
        return query
    if query is not None:
        raise ValidationFailed(
            "query is a ContextQuery (or give its fields as keywords)",
            [Issue("/query", describe(query))],
        )
    try:
        return ContextQuery.model_validate(filters)
    except ValidationError as exc:
        raise validation_failed("invalid query", exc) from exc
