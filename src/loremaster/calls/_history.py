"""Which messages of a request the context does not hold yet, and whether the request's
history departs from the stored one."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, assert_never

import orjson

from ..models import (
    DocumentPart,
    ImagePart,
    Message,
    Part,
    TextPart,
    ThinkingPart,
    ToolCallPart,
    ToolResultPart,
)

__all__ = ["Fingerprint", "HistoryPlan", "fingerprint", "plan_history"]

Fingerprint = tuple[Any, ...]


def fingerprint(message: Message) -> Fingerprint:
    """What makes two messages the same turn of a conversation: role and content.

    Ids, times, metadata and provider details are left out (each provider, and each
    read, gives its own), and so is thinking: an application may or may not send a
    model's thinking back, and the turn is the same either way. A tool call is its name
    and arguments (Gemini's calls have no ids of their own).
    """
    parts = tuple(_part(part) for part in message.parts if not isinstance(part, ThinkingPart))
    return (message.role.value, parts)


def _part(part: Part) -> Fingerprint:
    match part:
        case TextPart():
            return ("text", part.text)
        case ImagePart() | DocumentPart():
            return (part.kind, part.url or part.data)
        case ToolCallPart():
            return (
                "tool_call",
                part.name,
                orjson.dumps(part.arguments, option=orjson.OPT_SORT_KEYS),
            )
        case ToolResultPart():
            return ("tool_result", part.is_error, tuple(_part(item) for item in part.content))
        case ThinkingPart():
            return ("thinking", part.text)
        case _:
            assert_never(part)


@dataclass(frozen=True, slots=True)
class HistoryPlan:
    """Where a request's messages meet the stored history: the first `keep` stored
    messages are the request's own first ones (their fingerprints: `kept_prints`); `new`
    are the request's messages after them (`new_prints`). When the request `departs` (it
    holds fewer of the stored messages than there are, or others in their place), it
    belongs on a new branch forked after `keep`."""

    keep: int
    new: list[Message]
    departs: bool
    kept_prints: list[Fingerprint]
    new_prints: list[Fingerprint]


def plan_history(
    stored: Sequence[Fingerprint],
    sent: Sequence[Message],
    prints: Sequence[Fingerprint],
    *,
    continues: bool = False,
) -> HistoryPlan:
    """How a request with the messages `sent` (their fingerprints: `prints`) relates to
    the `stored` history (its fingerprints); `continues`: the request sends only what
    follows the stored history."""
    if continues:
        return HistoryPlan(len(stored), list(sent), False, list(stored), list(prints))
    keep = 0
    for held, given in zip(stored, prints, strict=False):
        if held != given:
            break
        keep += 1
    return HistoryPlan(
        keep, list(sent[keep:]), keep < len(stored), list(prints[:keep]), list(prints[keep:])
    )
