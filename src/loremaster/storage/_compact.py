"""The compact stored forms of message bodies and event changes (wire formats).

A message row's body leaves out what the row holds elsewhere: the id, role and time are
columns, a text already in the row's search text is its length there (the text parts in
order, each after the previous one and a newline), and a field at its model's default is
left out (a part's ``kind`` always stays). A text part with nothing else is its length::

    {"v": 1, "parts": [215]}
    {"v": 1, "parts": [{"kind": "text", "#text": 40, "provider_data": {...}}, ...],
     "metadata": {"lang": "en"}}

Bodies written before are the message's whole JSON (an object with no ``"v"``) and read
as they are. An event of an append stores the messages it added as a reference to their
rows, and the changes before them as they are (``ops``, left out when there are none)::

    {"v": 1, "messages": ["main", 41, 42]}
    {"v": 1, "ops": [{"op": "replace", "path": "/data/door", ...}], "messages": ["aside", 7, 8]}

Events written before, and events whose messages are not all plain rows, are the JSON
Patch itself (a list). Reading joins the messages back in: the changes read are the ones
announced when the change was made.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from pydantic import ValidationError

from ..errors import DataCorrupted, UnsupportedFormat
from ..models import (
    Message,
    from_micros,
)
from ._types import EventRecord, MessageRecord

__all__ = [
    "AddedMessages",
    "StoredEvent",
    "joined_events",
    "message_fields",
    "message_value",
    "pack_message",
    "read_changes",
    "spans",
    "stored_changes",
]

_VERSION = 1
_TEXT_AT = "#text"
"""A text given by its length in the search text: never a field name."""
_PLAIN_TEXT = {"kind": "text"}
_COLUMNS = frozenset({"id", "role", "created_at", "seq"})
_ADD_MESSAGE = "/messages/-"


# The defaults version 1 leaves out: part of the stored format, so written out here, not
# read from the models (a test checks they still agree; a model whose default changes needs
# a new version of the format, which keeps reading these).
_PART_DEFAULTS: dict[str, dict[str, Any]] = {
    "text": {"provider_data": {}},
    "image": {"data": None, "detail": None, "media_type": None, "provider_data": {}, "url": None},
    "document": {"data": None, "media_type": None, "provider_data": {}, "title": None, "url": None},
    "tool_call": {"arguments": {}, "provider_data": {}},
    "tool_result": {"content": [], "is_error": False, "provider_data": {}},
    "thinking": {"provider_data": {}, "redacted": False, "signature": None, "text": ""},
}
_MESSAGE_DEFAULTS: dict[str, Any] = {"metadata": {}, "name": None, "parts": []}


def _without_defaults(fields: Mapping[str, Any], defaults: Mapping[str, Any]) -> dict[str, Any]:
    """`fields` less those equal to their default (of the same type: 0 is not False)."""
    return {
        key: value
        for key, value in fields.items()
        if key not in defaults or type(value) is not type(defaults[key]) or value != defaults[key]
    }


class _SearchText:
    """A message's search text, read from the start: each text part found next in it is
    stored as its length there."""

    def __init__(self, text: str) -> None:
        self._text = text
        self._at = 0

    def refer(self, part: dict[str, Any]) -> dict[str, Any] | int:
        """A text part with its text as a length: the length alone for a part that holds
        nothing else."""
        text = part.get("text")
        if not isinstance(text, str) or not self._text.startswith(text, self._at):
            return part
        self._at += len(text) + 1  # and the newline between texts
        rest = {key: value for key, value in part.items() if key != "text"}
        return len(text) if rest == _PLAIN_TEXT else {**rest, _TEXT_AT: len(text)}

    def resolve(self, part: dict[str, Any] | int) -> dict[str, Any]:
        if isinstance(part, int):
            return {**_PLAIN_TEXT, "text": self._take(part)}
        if _TEXT_AT in part:
            part["text"] = self._take(part.pop(_TEXT_AT))
        return part

    def _take(self, length: Any) -> str:
        if type(length) is not int or not 0 <= length <= len(self._text) - self._at:
            raise DataCorrupted(f"a stored message's text reference is out of range: {length}")
        text = self._text[self._at : self._at + length]
        self._at += length + 1
        return text


def _pack_part(part: Mapping[str, Any], search: _SearchText) -> dict[str, Any] | int:
    kind = part.get("kind")
    packed = _without_defaults(part, _PART_DEFAULTS.get(str(kind), {}))
    if kind == "text":
        return search.refer(packed)
    if kind == "tool_result" and "content" in packed:
        packed["content"] = [_pack_part(item, search) for item in packed["content"]]
    return packed


def _unpack_part(part: Any, search: _SearchText) -> Any:
    if type(part) is int:
        return search.resolve(part)
    if not isinstance(part, dict):
        return part  # validation reports it
    if part.get("kind") == "tool_result" and isinstance(part.get("content"), list):
        part["content"] = [_unpack_part(item, search) for item in part["content"]]
    return search.resolve(part)


def pack_message(value: Mapping[str, Any], search_text: str) -> bytes:
    """The stored body of a message whose JSON (without ``seq``) is `value` and whose row
    holds `search_text`."""
    search = _SearchText(search_text)
    fields = _without_defaults(
        {key: item for key, item in value.items() if key not in _COLUMNS}, _MESSAGE_DEFAULTS
    )
    if "parts" in fields:
        fields["parts"] = [_pack_part(part, search) for part in fields["parts"]]
    return orjson.dumps({"v": _VERSION, **fields})


def message_fields(record: MessageRecord, body: bytes) -> dict[str, Any]:
    """The fields of the message a row stores, `body` being its stored body (unpacked
    from the codec if it was stored through it); without ``seq``."""
    try:
        fields = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise DataCorrupted(f"message {record.seq} is not stored as JSON") from exc
    if not isinstance(fields, dict):
        raise DataCorrupted(f"message {record.seq} is stored as {type(fields).__name__}")
    version = fields.pop("v", None)
    if version is None:
        return fields  # written before compact bodies: the message's JSON
    if version != _VERSION:
        raise UnsupportedFormat(f"message {record.seq} is stored in format {version!r}")
    search = _SearchText(record.search_text)
    if isinstance(fields.get("parts"), list):
        fields["parts"] = [_unpack_part(part, search) for part in fields["parts"]]
    return {
        "id": record.message_id,
        "role": record.role,
        "created_at": from_micros(record.created_at),
        **fields,
    }


def message_value(record: MessageRecord) -> dict[str, Any]:
    """A plain row's message as an event shows it: its JSON without ``seq``."""
    if record.blob is not None:
        raise DataCorrupted(f"message {record.seq} is stored through the codec")
    try:
        message = Message.model_validate(message_fields(record, record.body))
    except ValidationError as exc:
        raise DataCorrupted(f"message {record.seq} does not read as a message") from exc
    return message.model_dump(mode="json", exclude={"seq"})


@dataclass(frozen=True, slots=True)
class AddedMessages:
    """The messages ``first``..``last`` (seq) of a segment, which an event added."""

    segment: str
    first: int
    last: int


@dataclass(frozen=True, slots=True)
class StoredEvent:
    """An event as read: its `record`'s changes lack the messages `added`, if any."""

    record: EventRecord
    added: AddedMessages | None = None


def _adds(change: Any, message: MessageRecord) -> bool:
    """Whether `change` adds `message` at the end of the messages."""
    if not isinstance(change, dict) or change.get("op") != "add":
        return False
    value = change.get("value")
    return (
        change.get("path") == _ADD_MESSAGE
        and isinstance(value, dict)
        and value.get("id") == message.message_id
    )


def stored_changes(
    changes: list[dict[str, Any]], segment: str, messages: Sequence[MessageRecord]
) -> Any:
    """What the events table stores of an event's `changes`, its change having written
    `messages` (consecutive) to `segment`: their adds at the end of the changes become a
    reference to their rows when every one is a plain row (not through the codec)."""
    count = len(messages)
    if not count or len(changes) < count or messages[-1].seq - messages[0].seq != count - 1:
        return changes
    if any(m.blob is not None for m in messages):
        return changes
    if not all(map(_adds, changes[len(changes) - count :], messages)):
        return changes
    ops = changes[: len(changes) - count]
    added = [segment, messages[0].seq, messages[-1].seq]
    return {"v": _VERSION, **({"ops": ops} if ops else {}), "messages": added}


def read_changes(record: EventRecord, stored: Any) -> StoredEvent:
    """An event as read: `record` with the `stored` changes (decoded from JSON)."""
    if isinstance(stored, list):
        return StoredEvent(dataclasses.replace(record, changes=stored))
    if not isinstance(stored, dict) or stored.get("v", _VERSION) != _VERSION:
        version = stored.get("v") if isinstance(stored, dict) else stored
        raise UnsupportedFormat(f"event {record.revision} is stored in format {version!r}")
    try:
        ops, (segment, first, last) = stored.get("ops", []), stored["messages"]
    except (KeyError, TypeError, ValueError) as exc:
        raise DataCorrupted(f"event {record.revision} has unreadable changes") from exc
    if not (isinstance(ops, list) and isinstance(segment, str) and _seqs(first, last)):
        raise DataCorrupted(f"event {record.revision} has unreadable changes")
    added = AddedMessages(segment, first, last)
    return StoredEvent(dataclasses.replace(record, changes=ops), added)


def _seqs(first: Any, last: Any) -> bool:
    return type(first) is int and type(last) is int and 0 < first <= last


def spans(events: Iterable[StoredEvent]) -> list[AddedMessages]:
    """The rows to read to join the events' messages back in: per segment, from the
    first message any of them added to the last."""
    found: dict[str, tuple[int, int]] = {}
    for event in events:
        if event.added is not None:
            added = event.added
            low, high = found.get(added.segment, (added.first, added.last))
            found[added.segment] = (min(low, added.first), max(high, added.last))
    return [AddedMessages(segment, low, high) for segment, (low, high) in found.items()]


def joined_events(
    events: Iterable[StoredEvent], messages: Iterable[tuple[str, MessageRecord]]
) -> list[EventRecord]:
    """The events with the messages they name joined back in from `messages` ((segment,
    row) pairs, as `spans` asked for): each as it was announced."""
    rows = {(segment, message.seq): message for segment, message in messages}
    return [_joined(event, rows) for event in events]


def _joined(event: StoredEvent, rows: Mapping[tuple[str, int], MessageRecord]) -> EventRecord:
    added = event.added
    if added is None:
        return event.record
    values = []
    for seq in range(added.first, added.last + 1):
        row = rows.get((added.segment, seq))
        if row is None:
            raise DataCorrupted(
                f"event {event.record.revision} of context {event.record.context_id} names "
                f"message {seq} of segment {added.segment!r}, which is not stored"
            )
        values.append({"op": "add", "path": _ADD_MESSAGE, "value": message_value(row)})
    return dataclasses.replace(event.record, changes=[*event.record.changes, *values])
