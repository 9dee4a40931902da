"""Search looks at one branch's view: what a rollback or a migration hid is not found,
another branch's messages are not this one's, and each hit says its branch and its
position there."""

from __future__ import annotations

from loremaster import ContextManager, ConversationContext


async def _campaign(manager: ContextManager) -> str:
    return await manager.create_context(
        ConversationContext(
            title="Session 4",
            messages=[{"role": "user", "content": "We enter the tavern."}],
        )
    )


async def test_a_rollback_hides_its_messages_from_search(manager: ContextManager) -> None:
    context_id = await _campaign(manager)
    before = await manager.create_version(context_id, message="before the dragon")
    await manager.append_messages(context_id, {"role": "user", "content": "A dragon lands."})
    [hit] = await manager.search_contexts("dragon")
    assert (hit.message_seq, hit.branch) == (2, "main")
    await manager.rollback_to_version(context_id, before.version_id)
    assert await manager.search_contexts("dragon") == []
    await manager.append_messages(context_id, {"role": "user", "content": "A dragon roars."})
    [again] = await manager.search_contexts("dragon")
    assert again.message_seq == 2
    [message] = await manager.get_messages(context_id, limit=1)
    assert (message.seq, message.text) == (2, "A dragon roars.")


async def test_a_branch_sees_its_own_messages_and_what_it_forked_from(
    manager: ContextManager,
) -> None:
    context_id = await _campaign(manager)
    await manager.create_branch(context_id, "went-left")
    await manager.append_messages(
        context_id, {"role": "user", "content": "A griffin swoops."}, branch="went-left"
    )
    await manager.append_messages(context_id, {"role": "user", "content": "We go right."})
    assert await manager.search_contexts("griffin") == []
    [hit] = await manager.search_contexts("griffin", branch="went-left")
    assert (hit.branch, hit.message_seq, hit.matched) == ("went-left", 2, "message")
    [shared] = await manager.search_contexts("tavern", branch="went-left")
    assert (shared.message_seq, shared.branch) == (1, "went-left")
    assert await manager.search_contexts("right", branch="went-left") == []
    assert await manager.search_contexts("griffin", branch="no-such-branch") == []
    # On main, the title is found too; on a branch only its messages.
    assert [h.matched for h in await manager.search_contexts("session")] == ["context"]
    assert await manager.search_contexts("session", branch="went-left") == []


async def test_after_a_migration_hits_have_the_new_numbers(manager: ContextManager) -> None:
    context_id = await manager.create_context(
        ConversationContext(
            title="Old chat",
            messages=[
                {"role": "system", "content": "You are the GM."},
                {"role": "user", "content": "Describe the crypt."},
                {"role": "assistant", "content": "Bones everywhere."},
            ],
        )
    )
    result = await manager.migrate_context(context_id, to_provider="anthropic")
    assert result.migrated
    [hit] = await manager.search_contexts("bones")
    messages = await manager.get_messages(context_id)
    assert [m.seq for m in messages if "Bones" in m.text] == [hit.message_seq]
