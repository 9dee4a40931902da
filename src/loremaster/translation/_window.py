"""Fitting a conversation into a model's window: drop the oldest, keep what must stay."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from ..models import Message, MessageRole, ToolCallPart
from ._registry import ModelInfo
from ._tokens import count_message, count_messages

__all__ = ["FitStrategy", "Summarizer", "WindowFit", "fit"]

Summarizer = Callable[[Sequence[Message]], Message]
"""Turns the messages a fit removes into one message that stands in for them."""


class FitStrategy(StrEnum):
    KEEP_SYSTEM_AND_RECENT = "keep-system-and-recent"
    """Every system message stays where it is; the history kept starts at a user turn."""
    DROP_OLDEST = "drop-oldest"
    """The oldest messages go first, system messages after the leading prompt included."""


@dataclass(frozen=True, slots=True)
class WindowFit:
    """What to send (`messages`), what was removed to make room, and the count.

    `fits` is False only when the leading system prompt and the newest turn alone are over
    the budget: both are always kept."""

    messages: list[Message]
    removed: list[Message]
    summary: Message | None
    tokens: int
    budget: int

    @property
    def fits(self) -> bool:
        return self.tokens <= self.budget


def _units(messages: Sequence[Message]) -> list[list[int]]:
    """Indexes of messages that go together: an assistant message with tool calls and the
    tool messages right after it are one unit, never split."""
    units: list[list[int]] = []
    for index, message in enumerate(messages):
        follows_calls = (
            message.role is MessageRole.TOOL
            and units
            and any(
                isinstance(part, ToolCallPart)
                for unit_index in units[-1]
                for part in messages[unit_index].parts
            )
        )
        if follows_calls:
            units[-1].append(index)
        else:
            units.append([index])
    return units


def fit(
    messages: Sequence[Message],
    model: ModelInfo,
    budget: int,
    strategy: FitStrategy,
    *,
    summarizer: Summarizer | None = None,
    tools: Sequence[Mapping[str, Any]] = (),
) -> WindowFit:
    """Remove the fewest oldest units that may go for the rest (and the summary of what
    went, with a `summarizer`) to fit `budget` tokens."""
    units = _units(messages)
    leading = 0
    while leading < len(units) and messages[units[leading][0]].role is MessageRole.SYSTEM:
        leading += 1
    pinned = set(range(leading)) | {len(units) - 1}
    if strategy is FitStrategy.KEEP_SYSTEM_AND_RECENT:
        system = MessageRole.SYSTEM
        pinned |= {i for i, unit in enumerate(units) if messages[unit[0]].role is system}
    costs = [sum(count_message(messages[i], model) for i in unit) for unit in units]
    everything = count_messages([], model, tools).total + sum(costs)
    droppable = [i for i in range(len(units)) if i not in pinned]

    def gone_after(dropped: int) -> set[int]:
        gone = droppable[:dropped]
        if strategy is FitStrategy.KEEP_SYSTEM_AND_RECENT and gone:
            gone += _up_to_user_turn(droppable[dropped:], units, messages)
        return set(gone)

    def tokens_without(gone: set[int]) -> int:
        return everything - sum(costs[i] for i in gone)

    low, high = 0, len(droppable)
    while low < high:  # dropping more never costs more: the fewest that fit, by bisection
        middle = (low + high) // 2
        if tokens_without(gone_after(middle)) <= budget:
            high = middle
        else:
            low = middle + 1
    for dropped in range(low, len(droppable) + 1):
        gone = gone_after(dropped)
        removed = [messages[i] for unit in sorted(gone) for i in units[unit]]
        summary = summarizer(removed) if summarizer and removed else None
        tokens = tokens_without(gone) + (count_message(summary, model) if summary else 0)
        if tokens <= budget:
            break
    kept = [messages[i] for unit, indexes in enumerate(units) if unit not in gone for i in indexes]
    if summary is not None:
        kept.insert(leading, summary)
    return WindowFit(kept, removed, summary, tokens, budget)


def _up_to_user_turn(
    rest: list[int], units: list[list[int]], messages: Sequence[Message]
) -> list[int]:
    """The units to drop as well for the history kept to start with a user turn: none
    when no unit left to drop starts with one."""
    for count, unit in enumerate(rest):
        if messages[units[unit][0]].role is MessageRole.USER:
            return rest[:count]
    return []
