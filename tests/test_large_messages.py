"""Large messages are taken alike by both backends, and search stays cheap whatever the
size of a message (its snippet is cut around the first match, not by FTS5's snippet(),
which is quadratic in how often the word occurs)."""

from __future__ import annotations

from loremaster import ContextManager, ConversationContext

LINE = "The red dragon sleeps on its hoard of gold and silver coins. "


async def test_a_large_tool_result_is_stored_and_found_on_both_backends(
    manager: ContextManager,
) -> None:
    context_id = await manager.create_context(ConversationContext(title="The vault"))
    rules = LINE * (2_500_000 // len(LINE))  # 2.5 MB, past PostgreSQL's 1 MB tsvector limit
    await manager.append_messages(
        context_id,
        [
            {"role": "user", "content": "Read me the vault's ledger."},
            {
                "role": "assistant",
                "parts": [{"kind": "tool_call", "id": "c1", "name": "ledger", "arguments": {}}],
            },
            {
                "role": "tool",
                "parts": [
                    {
                        "kind": "tool_result",
                        "call_id": "c1",
                        "content": [{"kind": "text", "text": rules}],
                    }
                ],
            },
        ],
    )
    [stored] = await manager.get_messages(context_id, limit=1)
    [result] = stored.parts
    assert result.kind == "tool_result"
    assert result.content[0].text == rules
    [hit] = await manager.search_contexts("hoard")
    assert hit.message_seq == 3
    assert "[hoard]" in hit.snippet
    assert len(hit.snippet) < 200


async def test_a_snippet_is_a_short_window_around_the_first_match(
    manager: ContextManager,
) -> None:
    context_id = await manager.create_context(ConversationContext(title="The road"))
    text = "We walk for hours through the forest. " * 50 + LINE * 2_000
    await manager.append_messages(context_id, {"role": "user", "content": text})
    [hit] = await manager.search_contexts("dragon")
    assert "[dragon]" in hit.snippet.lower()
    assert not hit.snippet.startswith("We walk")
    assert len(hit.snippet) < 200
