"""Large message bodies go through the codec on every backend, and come back intact.

A body leaves out the text its row holds for search, so what makes one large is the rest:
thinking, tool call arguments, inline images, metadata."""

from __future__ import annotations

import sqlite3

import asyncpg
import pytest

from loremaster import ContextManager, ConversationContext, DataCorrupted, Message
from loremaster.codec import Compression, inspect_blob
from loremaster.models import TextPart, ThinkingPart

LONG = "The red dragon circles the tower, scattering the goblins below. " * 200
LARGE = {
    "role": "assistant",
    "parts": [{"kind": "thinking", "text": LONG}, {"kind": "text", "text": LONG}],
}


def bard(verse: str) -> Message:
    """A message whose stored body is over 100 bytes: its thinking is not search text."""
    thought = f"{verse} The dwarves hum along; the gold sleeps under the mountain."
    return Message(role="assistant", parts=[ThinkingPart(text=thought), TextPart(text=verse)])


async def stored_blobs(url: str) -> list[bytes]:
    if url.startswith("sqlite:///"):
        with sqlite3.connect(url.removeprefix("sqlite:///")) as conn:
            rows = conn.execute("SELECT body_blob FROM messages WHERE body_blob IS NOT NULL")
            return [bytes(row[0]) for row in rows.fetchall()]
    conn = await asyncpg.connect(url)
    try:
        rows = await conn.fetch("SELECT body_blob FROM messages WHERE body_blob IS NOT NULL")
        return [bytes(row[0]) for row in rows]
    finally:
        await conn.close()


async def test_large_bodies_are_compressed_and_small_ones_stay_json(db_url: str) -> None:
    async with ContextManager(database_url=db_url) as cm:
        context_id = await cm.create_context(
            ConversationContext(title="long", messages=[{"role": "user", "content": "short"}])
        )
        await cm.append_messages(context_id, LARGE)
        blobs = await stored_blobs(db_url)
        assert len(blobs) == 1
        header = inspect_blob(blobs[0])
        assert header.compression is Compression.ZSTD
        assert header.stored_size < header.serialized_size / 10
        messages = await cm.get_messages(context_id)
        assert [m.text for m in messages] == ["short", LONG]
        hits = await cm.search_contexts("goblins")
        assert hits[0].message_seq == 2
        stats = await cm.get_performance_stats()
        assert stats["codec"]["zstd"]["encoded"] >= 1


async def test_a_damaged_blob_is_an_integrity_error_never_data(sqlite_url: str) -> None:
    async with ContextManager(database_url=sqlite_url) as cm:
        context_id = await cm.create_context(ConversationContext(title="long"))
        await cm.append_messages(context_id, LARGE)
        with sqlite3.connect(sqlite_url.removeprefix("sqlite:///")) as conn:
            (blob,) = conn.execute("SELECT body_blob FROM messages").fetchone()
            damaged = bytearray(blob)
            damaged[len(damaged) // 2] ^= 0x40
            conn.execute("UPDATE messages SET body_blob = ?", (bytes(damaged),))
        with pytest.raises(DataCorrupted, match="checksum"):
            await cm.get_messages(context_id)


async def test_trained_dictionary_is_used_and_shared_between_managers(db_url: str) -> None:
    async with (
        ContextManager(database_url=db_url, codec_threshold_bytes=100) as trainer,
        ContextManager(database_url=db_url, codec_threshold_bytes=100) as reader,
    ):
        context_id = await trainer.create_context(ConversationContext(title="tavern"))
        await trainer.append_messages(
            context_id,
            [bard(f"The bard sings of the dragon, verse {n}.") for n in range(200)],
        )
        dictionary_id = await trainer.train_dictionary("conversation", samples=200, size=2048)
        await trainer.append_messages(context_id, bard("The bard sings of the dragon, verse 999."))
        newest = (await stored_blobs(db_url))[-1]
        assert inspect_blob(newest).dictionary_id == dictionary_id
        # The reader started before the dictionary existed and loads it when it meets it.
        last = await reader.get_messages(context_id, limit=1)
        assert last[0].text == "The bard sings of the dragon, verse 999."
