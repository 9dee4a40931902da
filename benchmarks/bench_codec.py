"""The codec on a realistic chat corpus: every format and algorithm/level, and what auto picks.

The corpus is generated here: many conversations of varied English prose (an order-2 word
model of the Python standard library's documentation, so sentences read like English and
rarely repeat), tool calls with JSON arguments and tool results with JSON payloads, with
the system prompt repeated per conversation as real chats do, in the neutral message model.

Prints, at 1 KB, 100 KB, 1 MB and 10 MB, per format and algorithm/level: space saved,
MB/s encode and decode; what `auto` chose and how far it is from the best size among the
settings at least as fast as it (target: within 10%); at 1 MB and above, what auto saves
(target >= 65%); the saving of a trained dictionary on 1-2 KB contexts (target >= 55%,
plain zstd about 35%); encode+compress MB/s of 1 MB with msgpack and zstd-3 (target >= 150).

Run: python benchmarks/bench_codec.py [--quick]
"""

from __future__ import annotations

import pydoc
import random
import sys
import time
from collections.abc import Callable
from typing import Any

from loremaster import Message, TextPart, ToolCallPart, ToolResultPart
from loremaster.codec import Codec, Compression, Format, inspect_blob, train_dictionary

from _common import QUICK, row

SIZES = [1_000, 100_000, 1_000_000] + ([] if QUICK else [10_000_000])
SETTINGS: list[tuple[Compression, int]] = [
    (Compression.NONE, 0),
    (Compression.LZ4, 0),
    (Compression.GZIP, 1),
    (Compression.GZIP, 6),
    (Compression.GZIP, 9),
    (Compression.ZSTD, 1),
    (Compression.ZSTD, 3),
    (Compression.ZSTD, 6),
    (Compression.ZSTD, 9),
    (Compression.ZSTD, 19),
    (Compression.BROTLI, 1),
    (Compression.BROTLI, 4),
    (Compression.BROTLI, 9),
    (Compression.BROTLI, 11),
]
SLOW = {(Compression.ZSTD, 19), (Compression.BROTLI, 11), (Compression.BROTLI, 9)}
MODULES = [
    "json",
    "asyncio",
    "collections",
    "itertools",
    "functools",
    "pathlib",
    "typing",
    "re",
    "datetime",
    "logging",
    "argparse",
    "subprocess",
    "threading",
    "unittest",
    "socket",
    "email",
    "http.client",
    "sqlite3",
    "decimal",
    "statistics",
    "random",
    "string",
    "textwrap",
    "shutil",
    "tempfile",
    "zipfile",
    "csv",
    "configparser",
]
SYSTEM_PROMPT = (
    "You are the game master of a Dungeons & Dragons 5e campaign. Describe scenes vividly, "
    "keep track of initiative, ask for rolls when the rules call for them and never decide "
    "for the players. Use the tools to roll dice and to read character sheets."
)
TOOLS = ["roll_dice", "character_sheet", "lookup_rule", "inventory"]


class Prose:
    """Sentences from an order-2 word model of the standard library's documentation."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.chain: dict[tuple[str, str], list[str]] = {}
        for name in MODULES:
            words = pydoc.render_doc(name, renderer=pydoc.plaintext).split()
            words = [w for w in words if w.isascii() and not w.startswith(("|", "-", "="))]
            for a, b, c in zip(words, words[1:], words[2:], strict=False):
                self.chain.setdefault((a, b), []).append(c)
        self.starts = [key for key in self.chain if key[0][:1].isupper()]

    def __call__(self, words: int = 60) -> str:
        state = self.rng.choice(self.starts)
        out = list(state)
        while len(out) < words:
            following = self.chain.get(state)
            if not following:
                state = self.rng.choice(self.starts)
                out.extend(state)
                continue
            word = self.rng.choice(following)
            out.append(word)
            state = (state[1], word)
        return " ".join(out)


def conversation(rng: random.Random, prose: Prose, turns: int) -> list[dict[str, Any]]:
    messages = [Message(role="system", content=SYSTEM_PROMPT)]
    for turn in range(turns):
        messages.append(Message(role="user", content=prose(rng.randint(15, 60))))
        if rng.random() < 0.4:
            call_id = f"call_{turn}_{rng.randrange(10**6)}"
            tool = rng.choice(TOOLS)
            arguments = {
                "dice": f"{rng.randint(1, 4)}d{rng.choice([4, 6, 8, 20])}",
                "reason": prose(8),
            }
            result = {
                "tool": tool,
                "rolls": [rng.randint(1, 20) for _ in range(3)],
                "modifier": rng.randint(-2, 5),
            }
            messages.append(
                Message(
                    role="assistant",
                    parts=[ToolCallPart(id=call_id, name=tool, arguments=arguments)],
                )
            )
            messages.append(
                Message(role="tool", parts=[ToolResultPart(call_id=call_id, content=str(result))])
            )
        messages.append(
            Message(role="assistant", parts=[TextPart(text=prose(rng.randint(40, 160)))])
        )
    return [m.model_dump(mode="json") for m in messages]


def corpus_of(size: int, rng: random.Random, prose: Prose) -> list[dict[str, Any]]:
    """Conversations, whole, until their JSON reaches `size` bytes."""
    chats: list[dict[str, Any]] = []
    total = 0
    while total < size:
        chat = {"conversation": conversation(rng, prose, rng.randint(3, 30))}
        chats.append(chat)
        total += len(Codec(format="json", compression="none").encode(chat)) - 20
    while len(chats) > 1 and total > size * 1.2:
        total -= len(Codec(format="json", compression="none").encode(chats.pop())) - 20
    if size < 5_000:  # a single small context: one short conversation, cut to size
        messages = chats[0]["conversation"]
        while (
            len(messages) > 2
            and len(Codec(format="json", compression="none").encode(chats[0])) > size
        ):
            messages.pop()
    return chats


def speed(call: Callable[[], object], nbytes: int) -> float:
    """MB/s over at least 0.2 s of repetitions."""
    runs, started = 0, time.perf_counter()
    while True:
        call()
        runs += 1
        elapsed = time.perf_counter() - started
        if elapsed >= 0.2 or runs >= 2000:
            return nbytes * runs / elapsed / 1e6


def measure(
    value: Any, fmt: Format, compression: Compression, level: int
) -> tuple[float, float, float, int]:
    codec = Codec(format=fmt, compression=compression, level=level, max_size=200_000_000)
    blob = codec.encode(value)
    raw = inspect_blob(blob).serialized_size
    saved = 1 - len(blob) / raw
    return (
        saved,
        speed(lambda: codec.encode(value), raw),
        speed(lambda: codec.decode(blob), raw),
        len(blob),
    )


def dictionary_figures(rng: random.Random, prose: Prose) -> tuple[float, float]:
    """Space saved on 1-2 KB contexts: plain zstd-3 and zstd-3 with a trained dictionary."""
    plain = Codec(format="json", compression="zstd")
    contexts = []
    while len(contexts) < 1200:
        chat = {"conversation": conversation(rng, prose, rng.randint(1, 2))}
        size = len(plain.encode(chat, compression="none")) - 20
        if 1_000 <= size <= 2_000:
            contexts.append(chat)
    training, held_out = contexts[:1000], contexts[1000:]
    samples = [plain.encode(c, compression="none")[20:] for c in training]
    dictionary = train_dictionary(samples, size=16 * 1024)
    with_dictionary = Codec(format="json", dictionaries={1: dictionary})
    raw = sum(inspect_blob(plain.encode(c)).serialized_size for c in held_out)
    zstd = sum(len(plain.encode(c, compression="zstd")) for c in held_out)
    trained = sum(
        len(with_dictionary.encode(c, compression="zstd", dictionary_id=1)) for c in held_out
    )
    return 1 - zstd / raw, 1 - trained / raw


def main() -> None:
    rng = random.Random(2026)
    prose = Prose(rng)
    print(f"bench_codec: prose from {len(prose.chain):,} word pairs{' (quick)' if QUICK else ''}")
    auto_savings: dict[int, float] = {}
    within: list[float] = []
    for size in SIZES:
        value = corpus_of(size, rng, prose)
        print()
        row(f"{size:,} bytes of chat JSON", "saved %", "enc MB/s", "dec MB/s")
        results: dict[tuple[Format, Compression, int], tuple[float, float, float, int]] = {}
        for fmt in (Format.JSON, Format.MSGPACK):
            for compression, level in SETTINGS:
                if size >= 10_000_000 and (compression, level) in SLOW:
                    continue
                figures = measure(value, fmt, compression, level)
                results[fmt, compression, level] = figures
                label = f"  {fmt.name.lower()} {compression.name.lower()}-{level}"
                row(label, figures[0] * 100, figures[1], figures[2])
        auto_codec = Codec(format="json", compression="auto", max_size=200_000_000)
        header = inspect_blob(auto_codec.encode(value))
        level = 3 if header.compression is Compression.ZSTD else 0
        auto = results[Format.JSON, header.compression, level]
        # Its speed class: every setting at least 80% as fast (timings are noisy).
        as_fast = [
            r for (f, _, _), r in results.items() if f is Format.JSON and r[1] >= 0.8 * auto[1]
        ]
        best = min(r[3] for r in as_fast)
        gap = auto[3] / best - 1
        within.append(gap)
        auto_savings[size] = auto[0]
        row(
            f"  auto chose {header.compression.name.lower()}: saved %, gap to best as fast",
            auto[0] * 100,
            f"{gap * 100:.1f}%",
            target="gap <= 10%",
            ok=gap <= 0.10,
        )
    print()
    for size, saved in auto_savings.items():
        if size >= 1_000_000:
            row(f"auto saves at {size:,} bytes, %", saved * 100, target=">= 65%", ok=saved >= 0.65)
    plain, trained = dictionary_figures(rng, prose)
    row("1-2 KB contexts: plain zstd-3 saves, %", plain * 100)
    row(
        "1-2 KB contexts: zstd-3 + trained dictionary saves, %",
        trained * 100,
        target=">= 55%",
        ok=trained >= 0.55,
    )
    megabyte = corpus_of(1_000_000, rng, prose)
    encode = measure(megabyte, Format.MSGPACK, Compression.ZSTD, 3)[1]
    row("1 MB msgpack + zstd-3 encode, MB/s", encode, target=">= 150", ok=encode >= 150)
    json_encode = measure(megabyte, Format.JSON, Compression.ZSTD, 3)[1]
    row("1 MB json + zstd-3 encode, MB/s", json_encode)


if __name__ == "__main__":
    sys.setrecursionlimit(10_000)
    main()
