"""What the benchmarks share: generated text, timing, databases to measure in, output."""

from __future__ import annotations

import asyncio
import os
import random
import statistics
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from loremaster import ContextManager, ConversationContext, Message

WORDS = [
    "the",
    "party",
    "enters",
    "a",
    "damp",
    "crypt",
    "where",
    "torchlight",
    "flickers",
    "across",
    "carved",
    "runes",
    "and",
    "the",
    "rogue",
    "checks",
    "for",
    "traps",
    "while",
    "the",
    "cleric",
    "whispers",
    "a",
    "prayer",
    "to",
    "keep",
    "the",
    "undead",
    "at",
    "bay",
    "a",
    "distant",
    "roar",
    "echoes",
    "through",
    "the",
    "halls",
    "as",
    "the",
    "dragon",
    "stirs",
    "beneath",
    "its",
    "hoard",
    "of",
    "gold",
]

QUICK = "--quick" in sys.argv
POSTGRES_URL = os.environ.get(
    "LOREMASTER_BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test"
)


def prose(rng: random.Random, words: int = 60) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(words))


def messages(rng: random.Random, count: int) -> list[Message]:
    roles = ("user", "assistant")
    return [Message(role=roles[i % 2], content=prose(rng)) for i in range(count)]


async def append_next(cm: ContextManager, context_id: str, pending: Iterator[Message]) -> int:
    """Append the next of `pending` to the conversation (one message: the timed unit)."""
    return await cm.append_messages(context_id, next(pending))


async def conversation_of(
    cm: ContextManager, length: int, rng: random.Random, batch: int = 1_000
) -> str:
    """A new conversation already `length` messages long."""
    context_id = await cm.create_context(ConversationContext(title=f"length {length}"))
    for start in range(0, length, batch):
        await cm.append_messages(context_id, messages(rng, min(batch, length - start)))
    return context_id


async def timed(call: Callable[[], Awaitable[object]], samples: int) -> list[float]:
    durations = []
    for _ in range(samples):
        started = time.perf_counter()
        await call()
        durations.append(time.perf_counter() - started)
    return durations


def median_ms(durations: list[float]) -> float:
    return statistics.median(durations) * 1000


def row(label: str, *figures: float | str | None, target: str = "", ok: bool | None = None) -> None:
    """One line of a figures table: a label, right-aligned figures, the target and verdict."""
    cells = []
    for figure in figures:
        if figure is None:
            cells.append("")
        elif isinstance(figure, str):
            cells.append(figure)
        else:
            cells.append(f"{figure:,.0f}" if abs(figure) >= 1000 else f"{figure:.3f}")
    verdict = "" if ok is None else ("ok" if ok else "MISSED")
    print(f"{label:<48}" + "".join(f"{cell:>13}" for cell in cells) + f"   {target} {verdict}")


@asynccontextmanager
async def postgres_database() -> AsyncIterator[str]:
    """A fresh PostgreSQL database for one benchmark, dropped afterwards."""
    name = f"lm_bench_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(POSTGRES_URL)
    try:
        await admin.execute(f"CREATE DATABASE {name}")
        yield urlunsplit(urlsplit(POSTGRES_URL)._replace(path=f"/{name}"))
    finally:
        await admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        await admin.close()


def run(main: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(main())
