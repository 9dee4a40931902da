"""What a translation did: every place the payload is not a plain rendering of the input."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, NamedTuple

from ..models import Message, ProviderType

__all__ = ["CHANGE_CODES", "Action", "Change", "TranslationReport", "TranslationResult"]


class Action(StrEnum):
    CONVERTED = "converted"
    MOVED = "moved"
    MERGED = "merged"
    SPLIT = "split"
    ADDED = "added"
    DROPPED = "dropped"


class _Code(NamedTuple):
    action: Action
    lossless: bool
    meaning: str


CHANGE_CODES: dict[str, _Code] = {
    "system_prompt": _Code(
        Action.CONVERTED, True, "leading system messages sent as the provider's system field"
    ),
    "tool_results_grouped": _Code(
        Action.MERGED, True, "consecutive tool results sent in one turn, split back when read"
    ),
    "system_merged": _Code(
        Action.MERGED, False, "several leading system messages became one system prompt"
    ),
    "system_as_user": _Code(
        Action.CONVERTED, False, "a system message after the start sent as a user message"
    ),
    "name_dropped": _Code(Action.DROPPED, False, "the provider has no participant names here"),
    "tool_results_split": _Code(
        Action.SPLIT, False, "a message with several tool results became one message per result"
    ),
    "tool_result_moved": _Code(Action.MOVED, False, "a tool result moved to right after its call"),
    "orphan_tool_result": _Code(
        Action.DROPPED, False, "a tool result whose call is not earlier in the conversation"
    ),
    "duplicate_tool_result": _Code(Action.DROPPED, False, "a second result for the same call"),
    "duplicate_tool_call": _Code(Action.DROPPED, False, "a call reusing an earlier call's id"),
    "unanswered_tool_call": _Code(
        Action.DROPPED, False, "a tool call with no result, followed by more conversation"
    ),
    "parts_reordered": _Code(Action.MOVED, False, "parts reordered the way the provider requires"),
    "tool_result_image_moved": _Code(
        Action.MOVED, False, "images of tool results sent in a user message after the results"
    ),
    "error_flag_dropped": _Code(Action.DROPPED, False, "the provider has no tool error flag"),
    "empty_text": _Code(Action.DROPPED, False, "empty or blank text the provider rejects"),
    "empty_message": _Code(Action.DROPPED, False, "a message left with nothing to send"),
    "placeholder_user": _Code(
        Action.ADDED, False, "a user message added where the provider needs one to start"
    ),
    "same_role_merged": _Code(
        Action.MERGED,
        False,
        "consecutive messages of one role (assistant or user) sent as one turn",
    ),
    "user_after_results": _Code(
        Action.MERGED, True, "a user message sent in the turn of the tool results before it"
    ),
    "id_sanitized": _Code(
        Action.CONVERTED, False, "a tool call id rewritten to the provider's id rules"
    ),
    "data_url": _Code(Action.CONVERTED, False, "a data: URL carried as inline data"),
    "media_type_guessed": _Code(
        Action.CONVERTED, False, "a media type the provider needs, guessed from the URL"
    ),
    "media_type_dropped": _Code(
        Action.DROPPED, False, "the provider takes a URL without its media type"
    ),
    "image_detail_dropped": _Code(Action.DROPPED, False, "the provider has no image detail"),
    "document_title_dropped": _Code(Action.DROPPED, False, "the provider has no document title"),
    "document_as_image": _Code(
        Action.CONVERTED, False, "a document with an image media type sent as an image"
    ),
    "unsupported_part": _Code(
        Action.DROPPED, False, "a part the provider cannot take in that place"
    ),
    "thinking_dropped": _Code(
        Action.DROPPED, False, "reasoning the provider cannot take back (unsigned or foreign)"
    ),
    "signature_dropped": _Code(
        Action.DROPPED, False, "a signature made by another model, never sent to this one"
    ),
    "arguments_reserialized": _Code(
        Action.CONVERTED,
        False,
        "tool call arguments written anew from their value: the same arguments, another text",
    ),
    "provider_data_dropped": _Code(
        Action.DROPPED, False, "details only another provider understands"
    ),
    "thought_signature_added": _Code(
        Action.ADDED, False, "the documented placeholder signature Gemini 3 needs on a call"
    ),
}
"""Every change code, its action, whether it round-trips, and what it means. Codes are a
wire format: they never change once released."""


@dataclass(frozen=True, slots=True)
class Change:
    """One thing the translation did, at `path` (a JSON pointer into the messages given)."""

    code: str
    path: str
    detail: str

    @property
    def action(self) -> Action:
        return CHANGE_CODES[self.code].action

    @property
    def lossless(self) -> bool:
        """True when reading the payload back gives the input back here."""
        return CHANGE_CODES[self.code].lossless

    def __str__(self) -> str:
        return f"{self.action.value:<9} {self.path or '/':<14} {self.code}: {self.detail}"


@dataclass(frozen=True, slots=True)
class TranslationReport:
    """Everything converted, moved, merged, split, added or dropped, in input order."""

    provider: ProviderType
    model: str | None
    changes: tuple[Change, ...] = ()
    warnings: tuple[str, ...] = ()
    """What the caller may have got wrong (a model of another provider, say)."""

    @property
    def lossless(self) -> bool:
        """True when `from_provider` of the payload gives the messages back as given."""
        return all(change.lossless for change in self.changes)

    def codes(self) -> dict[str, int]:
        """How often each change code occurs."""
        counts: dict[str, int] = {}
        for change in self.changes:
            counts[change.code] = counts.get(change.code, 0) + 1
        return counts

    def __str__(self) -> str:
        warned = [f"warning: {warning}" for warning in self.warnings]
        if not self.changes:
            done = f"{self.provider.value}: lossless, nothing converted, moved or dropped"
            return "\n".join([*warned, done])
        return "\n".join([*warned, *(str(change) for change in self.changes)])


@dataclass(frozen=True, slots=True)
class TranslationResult:
    """A provider's request body fragment, what it took to make, and what it holds.

    `messages` is the payload in the neutral model: what `from_provider` reads back from
    it, with the input's message ids kept."""

    payload: dict[str, Any]
    report: TranslationReport
    messages: list[Message] = field(default_factory=list)
