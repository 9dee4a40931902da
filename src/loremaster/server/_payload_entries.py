"""Where a translation's messages land in a provider's payload, and which changes of its
report concern each (the inspector's "as sent" view marks them)."""

from __future__ import annotations

from dataclasses import dataclass

from ..models import Message, MessageRole, ProviderType
from ..translation import Change

__all__ = ["Grouped", "payload_entries"]


@dataclass
class Grouped:
    """One message of a payload (or its system field): its JSON pointer, the input
    messages it holds (their indexes; None for one translation added) and the indexes
    of the report's changes that concern it."""

    pointer: str
    sources: list[int | None]
    changes: list[int]


_LIST_KEY = {
    ProviderType.ANTHROPIC: "messages",
    ProviderType.OPENAI: "messages",
    ProviderType.GOOGLE: "contents",
}
_SYSTEM_KEY = {ProviderType.ANTHROPIC: "system", ProviderType.GOOGLE: "system_instruction"}
_JOINS = {
    ProviderType.ANTHROPIC: frozenset({MessageRole.TOOL}),
    ProviderType.OPENAI: frozenset[MessageRole](),  # one message per message
    ProviderType.GOOGLE: frozenset({MessageRole.TOOL, MessageRole.USER}),
}


def payload_entries(
    provider: ProviderType,
    sent: list[Message],
    given: list[Message],
    changes: tuple[Change, ...],
) -> list[Grouped]:
    """Where the messages `sent` (the translation's own, in payload order, with the ids
    of the messages `given`) land in the provider's payload, and which changes concern
    each: a change at an input message goes to the entry holding it, or the one holding
    the closest message before it (a dropped or merged message has none of its own)."""
    index_of = {message.id: index for index, message in enumerate(given)}
    entries = _group(provider, sent, index_of)
    for number, change in enumerate(changes):
        entry = _entry_of(entries, _input_index(change.path))
        if entry is not None:
            entry.changes.append(number)
    return entries


def _group(provider: ProviderType, sent: list[Message], index_of: dict[str, int]) -> list[Grouped]:
    """The payload's messages as the provider's format groups them: Anthropic and Gemini
    send a leading system message in a field of its own and consecutive tool results as
    one user turn, to which Gemini also adds the user messages that follow them."""
    entries: list[Grouped] = []
    key, system, joining = _LIST_KEY[provider], _SYSTEM_KEY.get(provider), _JOINS[provider]
    listed = 0
    in_results = False
    for position, message in enumerate(sent):
        source = index_of.get(message.id)
        if system and position == 0 and message.role is MessageRole.SYSTEM:
            entries.append(Grouped(f"/{system}", [source], []))
        elif in_results and message.role in joining:
            entries[-1].sources.append(source)
        else:
            in_results = message.role is MessageRole.TOOL
            entries.append(Grouped(f"/{key}/{listed}", [source], []))
            listed += 1
    return entries


def _input_index(path: str) -> int | None:
    """The input message a change's path points into (None: a message it added)."""
    head = path.split("/", 2)[1] if path.startswith("/") else ""
    return int(head) if head.isdigit() else None


def _entry_of(entries: list[Grouped], index: int | None) -> Grouped | None:
    """The entry holding input message `index`, or else the closest one before it;
    for None, the entry holding a message translation added."""
    if index is None:
        return next((entry for entry in entries if None in entry.sources), None)
    best: tuple[int, Grouped] | None = None
    for entry in entries:
        for source in entry.sources:
            if source is not None and source <= index and (best is None or source > best[0]):
                best = (source, entry)
    return None if best is None else best[1]
