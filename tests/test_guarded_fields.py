"""Only the owner or an admin changes owner_id, collaborators, permissions, state or a
room's join policy, or deletes — whatever the route. Each test walks a write route of the
public API with a writer (``w``) and a stranger (``s``) and proves the guarded fields did
not move, on both backends."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from loremaster import (
    CollaborativeContext,
    ContextManager,
    ContextNotFound,
    ConversationContext,
    LoremasterError,
    PermissionDenied,
    RevisionConflict,
)

STRATEGIES = ["latest_wins", "manual_merge", "provider_priority", "user_choice", "automatic_merge"]
TAKEOVER = {"owner_id": "w", "collaborators": ["w", "friend"], "permissions": {"w": ["admin"]}}


def _guarded(context: Any) -> dict[str, Any]:
    fields = ("owner_id", "collaborators", "permissions", "state", "join_policy")
    return {name: getattr(context, name, None) for name in fields}


async def _room(manager: ContextManager, **fields: Any) -> str:
    return await manager.create_context(
        CollaborativeContext.model_validate(
            {
                "title": "The Keep",
                "collaborators": ["w"],
                "permissions": {"reader": ["read"]},
                "join_policy": "members",
                **fields,
            }
        ),
        user_id="o",
    )


async def _refused(call: Awaitable[Any]) -> LoremasterError:
    with pytest.raises(LoremasterError) as caught:
        await call
    assert isinstance(caught.value, (PermissionDenied, ContextNotFound, RevisionConflict))
    return caught.value


async def test_the_reported_takeover_is_refused(manager: ContextManager) -> None:
    """A writer's stale manual_merge update of owner and collaborators, then resolving the
    conflict with "incoming": refused before any conflict is recorded."""
    room = await _room(manager)
    await manager.update_context(room, {"owner_id": "o2", "collaborators": ["w", "o"]}, user_id="o")
    after_handover = _guarded(await manager.get_context(room, user_id="o2"))
    with pytest.raises(PermissionDenied):
        await manager.update_context(
            room, TAKEOVER, user_id="w", expected_revision=1, strategy="manual_merge"
        )
    assert await manager.list_conflicts(room, user_id="o2") == []
    assert _guarded(await manager.get_context(room, user_id="o2")) == after_handover
    with pytest.raises(PermissionDenied):
        await manager.delete_context(room, user_id="w", hard_delete=True)
    assert (await manager.get_context(room, user_id="o2")).owner_id == "o2"


@pytest.mark.parametrize("strategy", STRATEGIES)
async def test_no_conflict_strategy_moves_a_guarded_field(
    manager: ContextManager, strategy: str
) -> None:
    room = await _room(manager)
    await manager.update_context(room, {"shared_state": {"hp": 5}}, user_id="o")
    before = _guarded(await manager.get_context(room))
    events = len(await manager.get_events(room))
    for user in ("w", "s"):
        for changes in (
            TAKEOVER,
            {"state": "archived"},
            {"join_policy": "open"},
            [{"op": "add", "path": "/collaborators/-", "value": "friend"}],
            [{"op": "replace", "path": "/owner_id", "value": user}],
        ):
            await _refused(
                manager.update_context(
                    room,
                    changes,
                    user_id=user,
                    expected_revision=1,
                    strategy=strategy,
                    origin={"provider": "anthropic"},
                )
            )
    assert _guarded(await manager.get_context(room)) == before
    assert len(await manager.get_events(room)) == events
    assert await manager.list_conflicts(room) == []


async def test_a_writer_cannot_resolve_an_admins_conflict_into_guarded_fields(
    manager: ContextManager,
) -> None:
    """An admin's own stale change may be recorded; a plain writer taking its side of a
    guarded path is refused at the commit, and so is the stranger."""
    room = await _room(manager, permissions={"adm": ["admin"]})
    await manager.update_context(room, {"collaborators": ["w", "x"]}, user_id="o")
    await manager.update_context(
        room,
        {"collaborators": ["w", "adm-friend"]},
        user_id="adm",
        expected_revision=1,
        strategy="manual_merge",
    )
    [conflict] = await manager.list_conflicts(room)
    choice = {path.path: "incoming" for path in conflict.paths}
    before = _guarded(await manager.get_context(room))
    with pytest.raises(PermissionDenied):
        await manager.resolve_conflict(conflict.conflict_id, choice, user_id="w")
    with pytest.raises(ContextNotFound):
        await manager.resolve_conflict(conflict.conflict_id, choice, user_id="s")
    assert _guarded(await manager.get_context(room)) == before
    resolved = await manager.resolve_conflict(conflict.conflict_id, choice, user_id="adm")
    assert resolved.collaborators == ["w", "adm-friend"]


async def test_plain_updates_json_patches_and_deletes(manager: ContextManager) -> None:
    room = await _room(manager)
    before = _guarded(await manager.get_context(room))
    attempts: list[Callable[[str], Awaitable[Any]]] = [
        lambda u: manager.update_context(room, TAKEOVER, user_id=u),
        lambda u: manager.update_context(room, {"join_policy": "open"}, user_id=u),
        lambda u: manager.update_context(
            room, [{"op": "replace", "path": "/permissions", "value": {u: ["admin"]}}], user_id=u
        ),
        lambda u: manager.update_context(
            room, [{"op": "replace", "path": "/state", "value": "archived"}], user_id=u
        ),
        lambda u: manager.delete_context(room, user_id=u),
        lambda u: manager.delete_context(room, user_id=u, hard_delete=True),
        lambda u: manager.restore_context(room, user_id=u),
    ]
    for attempt in attempts:
        assert isinstance(await _refused(attempt("w")), (PermissionDenied, RevisionConflict))
        assert isinstance(await _refused(attempt("s")), ContextNotFound)
    assert _guarded(await manager.get_context(room)) == before


async def test_branches_rollbacks_and_merges_keep_guarded_fields(manager: ContextManager) -> None:
    room = await _room(manager)
    first = await manager.create_version(room, user_id="o")
    await manager.update_context(
        room,
        {"collaborators": ["w", "y"], "permissions": {"reader": []}, "join_policy": "open"},
        user_id="o",
    )
    before = _guarded(await manager.get_context(room))

    # Rolling back past the owner's change brings back the fields, not who may use them.
    await manager.rollback_to_version(room, first.version_id, user_id="w")
    assert _guarded(await manager.get_context(room)) == before

    # A writer's branch holds a closed join policy; merging it into main is refused.
    await manager.create_branch(room, "closed", user_id="w")
    await manager.update_context(room, {"join_policy": "members"}, user_id="o", branch="closed")
    with pytest.raises(PermissionDenied):
        await manager.merge_branch(room, "closed", user_id="w", strategy="source")
    assert _guarded(await manager.get_context(room)) == before
    with pytest.raises(ContextNotFound):
        await manager.merge_branch(room, "closed", user_id="s", strategy="source")
    with pytest.raises(ContextNotFound):
        await manager.rollback_to_version(room, first.version_id, user_id="s")
    assert _guarded(await manager.get_context(room)) == before


async def test_joining_a_room_seats_only_the_joiner(manager: ContextManager) -> None:
    open_room = await _room(manager, join_policy="open")
    joined = await manager.join_collaborative_session(open_room, user_id="s")
    assert isinstance(joined, CollaborativeContext)
    assert joined.collaborators == ["w", "s"]  # an open room's table: members who write
    await manager.update_context(open_room, {"shared_state": {"s": 1}}, user_id="s")
    with pytest.raises(PermissionDenied):
        await manager.update_context(open_room, {"collaborators": ["s"]}, user_id="s")

    members_only = await _room(manager)
    for call in (
        manager.join_collaborative_session(members_only, user_id="s"),
        manager.leave_collaborative_session(members_only, user_id="s"),  # once showed the room
        manager.release_context_lock(members_only, user_id="s"),
    ):
        with pytest.raises(ContextNotFound):
            await call
    seated = await manager.join_collaborative_session(members_only, user_id="reader")
    assert isinstance(seated, CollaborativeContext)
    assert "reader" in seated.active_participants
    assert seated.collaborators == ["w"]  # joining grants no right the owner did not give
    with pytest.raises(PermissionDenied):
        await manager.update_context(members_only, {"shared_state": {"r": 1}}, user_id="reader")


async def test_migration_and_version_routes_refuse_strangers(manager: ContextManager) -> None:
    conversation = await manager.create_context(
        ConversationContext(
            title="Session 1", messages=[{"role": "user", "content": "hi"}], collaborators=["w"]
        ),
        user_id="o",
    )
    before = _guarded(await manager.get_context(conversation))
    result = await manager.migrate_context(conversation, to_provider="anthropic", user_id="w")
    assert result.migrated
    for call in (
        manager.migrate_context(conversation, to_provider="openai", user_id="s"),
        manager.create_version(conversation, user_id="s"),
        manager.create_branch(conversation, "mine", user_id="s"),
        manager.append_messages(conversation, {"role": "user", "content": "x"}, user_id="s"),
    ):
        with pytest.raises(ContextNotFound):
            await call
    assert _guarded(await manager.get_context(conversation)) == before
