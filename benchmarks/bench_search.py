"""Search time against the size of one message that repeats the searched word.

Prints, per message size, the median time of `search_contexts` on SQLite beside FTS5's own
`snippet()` over the same file (what search used before: quadratic in how often the word
occurs in one text), and `search_contexts` on PostgreSQL (`ts_headline`).
Target: search stays flat whatever the message's size (within 5x of a 16 KB message).

Run: python benchmarks/bench_search.py [--quick]
"""

from __future__ import annotations

import sqlite3
import tempfile
import time
from pathlib import Path

from loremaster import ContextManager, ConversationContext

from _common import QUICK, median_ms, postgres_database, row, run, timed

LINE = "the red dragon sleeps on its hoard of gold "
SIZES_KB = (16, 64, 128) if QUICK else (16, 64, 128, 512, 2048)
SNIPPET_SQL = (
    "SELECT rowid, snippet(messages_fts, 0, '[', ']', '…', 12) FROM messages_fts "
    "WHERE messages_fts MATCH 'dragon'"
)


async def _seeded(url: str, size_kb: int) -> ContextManager:
    cm = ContextManager(url)
    await cm.initialize()
    context_id = await cm.create_context(ConversationContext(title="The vault"))
    text = LINE * (size_kb * 1024 // len(LINE))
    await cm.append_messages(context_id, {"role": "user", "content": text})
    return cm


def _fts5_snippet_ms(size_kb: int) -> float:
    """FTS5's snippet() over the same text, indexed whole (capped at the bigger sizes:
    it grows with the square of the size)."""
    connection = sqlite3.connect(":memory:")
    connection.execute("CREATE VIRTUAL TABLE messages_fts USING fts5(body)")
    connection.execute(
        "INSERT INTO messages_fts VALUES (?)", (LINE * (size_kb * 1024 // len(LINE)),)
    )
    started = time.perf_counter()
    connection.execute(SNIPPET_SQL).fetchall()
    connection.close()
    return (time.perf_counter() - started) * 1000


async def main() -> None:
    print("search of one message repeating the word, median ms")
    baseline: float | None = None
    with tempfile.TemporaryDirectory() as folder:
        for size_kb in SIZES_KB:
            path = Path(folder) / f"s{size_kb}.db"
            cm = await _seeded(f"sqlite:///{path}", size_kb)
            ours = median_ms(await timed(lambda cm=cm: cm.search_contexts("dragon"), 20))
            await cm.close()
            baseline = baseline or ours
            fts5 = _fts5_snippet_ms(size_kb) if size_kb <= 512 else None
            row(
                f"SQLite {size_kb:>5} KB",
                ours,
                fts5,
                target="<= 5x the 16 KB figure",
                ok=ours <= 5 * baseline,
            )
    for size_kb in SIZES_KB:
        async with postgres_database() as url:
            cm = await _seeded(url, size_kb)
            ours = median_ms(await timed(lambda cm=cm: cm.search_contexts("dragon"), 20))
            await cm.close()
            row(f"PostgreSQL {size_kb:>5} KB", ours, None)
    print("columns: loremaster search, FTS5 snippet() on the same text (what it replaced)")


if __name__ == "__main__":
    run(main)
