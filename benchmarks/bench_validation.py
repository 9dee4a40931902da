"""Validation throughput: how many contexts per second, and how long a huge one takes.

Prints, for a 100-message conversation: contexts/s validated as a model and as a dict
(target >= 2,000/s); for a 10,000-message conversation: ms per validation (target <= 50 ms).
Conversations mix prose, tool calls and their results, as games do.

Run: python benchmarks/bench_validation.py [--quick]
"""

from __future__ import annotations

import asyncio
import random
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from loremaster import ConversationContext, Message, TextPart, ToolCallPart, ToolResultPart
from loremaster.validation import ContextValidator

from _common import QUICK, prose, row


def conversation(size: int, rng: random.Random) -> ConversationContext:
    start = datetime(2026, 11, 24, tzinfo=UTC)
    messages: list[Message] = [
        Message(role="system", content="You are the game master.", created_at=start)
    ]
    while len(messages) < size:
        at = start + timedelta(seconds=len(messages))
        messages.append(Message(role="user", content=prose(rng, 30), created_at=at))
        if rng.random() < 0.3:
            call_id = f"call_{len(messages)}"
            messages.append(
                Message(
                    role="assistant",
                    parts=[ToolCallPart(id=call_id, name="roll_dice", arguments={"dice": "1d20"})],
                    created_at=at,
                )
            )
            messages.append(
                Message(
                    role="tool",
                    parts=[ToolResultPart(call_id=call_id, content="17")],
                    created_at=at,
                )
            )
        messages.append(
            Message(role="assistant", parts=[TextPart(text=prose(rng, 80))], created_at=at)
        )
    return ConversationContext(title="bench", primary_provider="openai", messages=messages[:size])


async def per_second(validator: ContextValidator, value: Any, seconds: float) -> float:
    runs, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        result = await validator.validate_context(value)
        assert result.is_valid, result.issues[:3]
        runs += 1
    return runs / (time.perf_counter() - started)


async def main() -> None:
    rng = random.Random(3)
    validator = ContextValidator(load_entry_points=False)
    seconds = 1.0 if QUICK else 3.0
    small = conversation(100, rng)
    small_dict = small.model_dump(mode="json")
    huge = conversation(10_000, rng)
    huge_dict = huge.model_dump(mode="json")
    print(f"bench_validation{' (quick)' if QUICK else ''}")
    row("figure", "value", target="target")
    model_rate = await per_second(validator, small, seconds)
    row("100 messages, model: contexts/s", model_rate, target=">= 2,000", ok=model_rate >= 2000)
    dict_rate = await per_second(validator, small_dict, seconds)
    row("100 messages, dict: contexts/s", dict_rate, target=">= 2,000", ok=dict_rate >= 2000)
    huge_ms = 1000 / await per_second(validator, huge, seconds)
    row("10,000 messages, model: ms each", huge_ms, target="<= 50", ok=huge_ms <= 50)
    huge_dict_ms = 1000 / await per_second(validator, huge_dict, seconds)
    row("10,000 messages, dict: ms each", huge_dict_ms, target="<= 50", ok=huge_dict_ms <= 50)


if __name__ == "__main__":
    asyncio.run(main())
