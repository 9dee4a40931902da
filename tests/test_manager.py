from __future__ import annotations

import base64
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest

from loremaster import (
    CollaborativeContext,
    Context,
    ContextManager,
    ContextNotFound,
    ContextQuery,
    ContextState,
    ContextType,
    ConversationContext,
    Message,
    NotInitialized,
    PayloadTooLarge,
    PermissionDenied,
    RevisionConflict,
    SessionContext,
    ValidationFailed,
)
from loremaster.storage._schema import available_migrations

from conftest import table_counts

LATEST_SCHEMA = available_migrations("sqlite")[-1].version


async def test_spec_basic_context_creation_example(db_url: str) -> None:
    from loremaster import ContextManager, ConversationContext

    context_manager = ContextManager(database_url=db_url, redis_url="redis://localhost:6379/0")
    await context_manager.initialize()
    context = ConversationContext(
        title="D&D Campaign Session 1",
        messages=[
            {"role": "system", "content": "You are a helpful D&D game master."},
            {"role": "user", "content": "I want to create a new character."},
        ],
        primary_provider="anthropic",
        model_parameters={"temperature": 0.7},
    )
    context_id = await context_manager.create_context(context, user_id="player123")

    stored = await context_manager.get_context(context_id, user_id="player123")
    assert isinstance(stored, ConversationContext)
    assert stored.owner_id == "player123"
    assert stored.revision == 1
    assert [m.text for m in stored.messages] == [
        "You are a helpful D&D game master.",
        "I want to create a new character.",
    ]
    assert [m.seq for m in stored.messages] == [1, 2]
    assert stored.message_count == 2
    assert stored.turn_count == 1
    assert stored.model_parameters == {"temperature": 0.7}
    await context_manager.close()


async def test_manager_must_be_initialized(db_url: str) -> None:
    cm = ContextManager(database_url=db_url)
    with pytest.raises(NotInitialized):
        await cm.get_context("6f9619ff-8b86-d011-b42d-00c04fc964ff")
    report = await cm.health_check()
    assert report["status"] == "unavailable"


async def test_every_context_type_round_trips_through_storage(manager: ContextManager) -> None:
    chat = await manager.create_context(
        ConversationContext(title="chat", collaborators=["alice"]), user_id="dm"
    )
    originals: list[Context] = [
        Context(title="notes", data={"npc": {"name": "Sildar"}}, metadata={"campaign": "lmop"}),
        SessionContext(
            title="alice's session",
            user_id="alice",
            active_conversations=[chat],
            preferences={"theme": "dark"},
            ui_state={"panel": "map"},
            activity_metrics={"messages": 3},
        ),
        CollaborativeContext(
            title="table",
            room_id="room_abc123",
            active_participants=["dm", "p1"],
            collaborators=["p1"],  # participants are members (the owner, dm, needs not be)
            shared_state={"quest": "Dragon's Lair"},
        ),
    ]
    for original in originals:
        context_id = await manager.create_context(original, user_id="dm")
        stored = await manager.get_context(context_id)
        assert type(stored) is type(original)
        expected = original.model_dump(
            exclude={"revision", "last_modified", "last_accessed", "owner_id"}
        )
        assert (
            stored.model_dump(exclude={"revision", "last_modified", "last_accessed", "owner_id"})
            == expected
        )
        assert stored.owner_id == "dm"
        assert stored.revision == 1


async def test_create_accepts_a_dict_and_refuses_a_duplicate_id(manager: ContextManager) -> None:
    context_id = await manager.create_context(
        {"context_type": "session", "title": "s", "user_id": "u"}
    )
    assert isinstance(await manager.get_context(context_id), SessionContext)
    with pytest.raises(ValidationFailed, match="exists"):
        await manager.create_context({"context_id": context_id, "title": "again"})
    with pytest.raises(ValidationFailed, match="unknown context_type"):
        await manager.create_context({"context_type": "spaceship", "title": "x"})
    with pytest.raises(ValidationFailed, match="/title"):
        await manager.create_context({"context_type": "conversation"})


async def test_missing_context_is_not_found(manager: ContextManager) -> None:
    missing = "6f9619ff-8b86-d011-b42d-00c04fc964ff"
    with pytest.raises(ContextNotFound):
        await manager.get_context(missing)
    with pytest.raises(ContextNotFound):
        await manager.update_context(missing, {"title": "x"})
    with pytest.raises(ContextNotFound):
        await manager.append_messages(missing, {"role": "user", "content": "x"})
    with pytest.raises(ContextNotFound):
        await manager.delete_context(missing)


async def test_merge_patch_sets_one_key_and_keeps_the_others(manager: ContextManager) -> None:
    room = CollaborativeContext(title="Party Planning Session", room_id="room_abc123")
    context_id = await manager.create_context(room, user_id="dm")
    await manager.update_context(
        context_id, {"shared_state": {"quest": "Dragon's Lair"}}, user_id="dm"
    )
    updated = await manager.update_context(context_id, {"shared_state": {"level": 5}}, user_id="dm")
    assert isinstance(updated, CollaborativeContext)
    assert updated.shared_state == {"quest": "Dragon's Lair", "level": 5}
    assert updated.revision == 3
    removed = await manager.update_context(context_id, {"shared_state": {"quest": None}})
    assert removed.shared_state == {"level": 5}  # type: ignore[attr-defined]


async def test_json_patch_list_applies_operations(manager: ContextManager) -> None:
    context_id = await manager.create_context(Context(title="t", data={"hp": 10, "items": []}))
    updated = await manager.update_context(
        context_id,
        [
            {"op": "test", "path": "/data/hp", "value": 10},
            {"op": "replace", "path": "/data/hp", "value": 4},
            {"op": "add", "path": "/data/items/-", "value": "potion"},
        ],
    )
    assert updated.data == {"hp": 4, "items": ["potion"]}
    events = await manager.get_events(context_id, since_revision=1)
    assert events[0].changes[1] == {"op": "replace", "path": "/data/hp", "value": 4}


async def test_an_update_that_changes_nothing_writes_nothing(manager: ContextManager) -> None:
    context_id = await manager.create_context(Context(title="t", data={"a": 1}))
    same = await manager.update_context(context_id, {"data": {"a": 1, "b": None}})
    assert same.revision == 1
    same = await manager.update_context(
        context_id, [{"op": "replace", "path": "/data/a", "value": 1}]
    )
    assert same.revision == 1
    assert len(await manager.get_events(context_id)) == 1


async def test_stale_expected_revision_conflicts_and_writes_nothing(
    manager: ContextManager,
) -> None:
    context_id = await manager.create_context(Context(title="t"))
    await manager.update_context(context_id, {"data": {"a": 1}}, expected_revision=1)
    with pytest.raises(RevisionConflict) as caught:
        await manager.update_context(context_id, {"data": {"a": 2}}, expected_revision=1)
    assert caught.value.actual_revision == 2
    context = await manager.get_context(context_id)
    assert context.data == {"a": 1}
    assert context.revision == 2


@pytest.mark.parametrize(
    "changes",
    [
        {"revision": 7},
        {"context_id": "6f9619ff-8b86-d011-b42d-00c04fc964ff"},
        {"messages": []},
        [{"op": "replace", "path": "/created_at", "value": "2020-01-01T00:00:00Z"}],
        [{"op": "replace", "path": "", "value": {}}],
    ],
)
async def test_read_only_fields_cannot_be_updated(manager: ContextManager, changes: object) -> None:
    context_id = await manager.create_context(ConversationContext(title="t"))
    with pytest.raises(ValidationFailed, match="read-only"):
        await manager.update_context(context_id, changes)  # type: ignore[arg-type]


async def test_update_making_the_context_invalid_is_refused(
    manager: ContextManager, db_url: str
) -> None:
    context_id = await manager.create_context(CollaborativeContext(title="r", max_participants=2))
    before = await table_counts(db_url)
    with pytest.raises(ValidationFailed, match="active_participants"):
        await manager.update_context(context_id, {"active_participants": ["a", "b", "c"]})
    with pytest.raises(ValidationFailed, match="title"):
        await manager.update_context(context_id, {"title": ""})
    with pytest.raises(ValidationFailed):
        await manager.update_context(context_id, {"no_such_field": 1})
    with pytest.raises(ValidationFailed, match="does not apply"):
        await manager.update_context(context_id, [{"op": "remove", "path": "/data/missing"}])
    assert await table_counts(db_url) == before
    assert (await manager.get_context(context_id)).revision == 1


async def test_append_and_page_through_messages(manager: ContextManager) -> None:
    context_id = await manager.create_context(
        ConversationContext(title="t", messages=[{"role": "system", "content": "be a GM"}])
    )
    revision = await manager.append_messages(
        context_id,
        [{"role": "user", "content": f"line {i}"} for i in range(1, 11)],
        user_id=None,
    )
    assert revision == 2
    revision = await manager.append_messages(
        context_id, Message(role="assistant", content="the end")
    )
    assert revision == 3

    last = await manager.get_messages(context_id, limit=3)
    assert [m.text for m in last] == ["line 9", "line 10", "the end"]
    assert [m.seq for m in last] == [10, 11, 12]
    earlier = await manager.get_messages(context_id, limit=3, before_seq=last[0].seq)
    assert [m.seq for m in earlier] == [7, 8, 9]
    first = await manager.get_messages(context_id, limit=100, before_seq=2)
    assert [m.text for m in first] == ["be a GM"]

    context = await manager.get_context(context_id)
    assert isinstance(context, ConversationContext)
    assert context.message_count == 12
    assert context.turn_count == 10
    assert [m.seq for m in context.messages] == list(range(1, 13))
    light = await manager.get_context(context_id, include_messages=False)
    assert light.messages == []  # type: ignore[attr-defined]
    assert light.message_count == 12  # type: ignore[attr-defined]


async def test_append_refuses_bad_messages_and_other_context_types(
    manager: ContextManager, db_url: str
) -> None:
    conversation = await manager.create_context(ConversationContext(title="c"))
    session = await manager.create_context(SessionContext(title="s"))
    before = await table_counts(db_url)
    with pytest.raises(ValidationFailed, match="role"):
        await manager.append_messages(conversation, [{"role": "narrator", "content": "x"}])
    with pytest.raises(ValidationFailed, match="/1/"):
        await manager.append_messages(
            conversation, [{"role": "user", "content": "ok"}, {"content": 5}]
        )
    with pytest.raises(ValidationFailed, match="no messages"):
        await manager.append_messages(conversation, [])
    with pytest.raises(ValidationFailed, match="only conversation contexts"):
        await manager.append_messages(session, {"role": "user", "content": "x"})
    message = Message(id="fixed", role="user", content="once")
    await manager.append_messages(conversation, message)
    with pytest.raises(ValidationFailed, match="message id"):
        await manager.append_messages(conversation, [Message(role="user", content="new"), message])
    after = await table_counts(db_url)
    assert after == {**before, "messages": before["messages"] + 1, "events": before["events"] + 1}


async def test_events_are_gapless_one_per_change(manager: ContextManager) -> None:
    context_id = await manager.create_context(ConversationContext(title="t"), user_id="gm")
    await manager.append_messages(context_id, {"role": "user", "content": "hi"}, user_id="gm")
    await manager.update_context(context_id, {"metadata": {"x": 1}}, user_id="gm")
    await manager.delete_context(context_id, user_id="gm")
    await manager.restore_context(context_id, user_id="gm")
    events = await manager.get_events(context_id, user_id="gm")
    assert [(e.revision, e.op) for e in events] == [
        (1, "create"),
        (2, "append_messages"),
        (3, "update"),
        (4, "delete"),
        (5, "restore"),
    ]
    assert all(e.user_id == "gm" for e in events)
    assert events[1].changes[0]["path"] == "/messages/-"
    assert events[1].changes[0]["value"]["parts"] == [
        {"kind": "text", "text": "hi", "provider_data": {}}
    ]
    assert [e.revision for e in await manager.get_events(context_id, since_revision=3)] == [4, 5]
    assert [
        e.revision for e in await manager.get_events(context_id, since_revision=1, limit=2)
    ] == [2, 3]


async def test_soft_delete_hides_and_restore_brings_back(
    manager: ContextManager, db_url: str
) -> None:
    context_id = await manager.create_context(ConversationContext(title="lost mine"))
    await manager.append_messages(context_id, {"role": "user", "content": "goblins"})
    await manager.delete_context(context_id)
    with pytest.raises(ContextNotFound):
        await manager.get_context(context_id)
    with pytest.raises(ContextNotFound):
        await manager.update_context(context_id, {"title": "x"})
    with pytest.raises(ContextNotFound):
        await manager.delete_context(context_id)
    assert (
        await manager.get_context(context_id, include_deleted=True)
    ).state is ContextState.DELETED
    assert len(await manager.query_contexts()) == 0
    assert len(await manager.query_contexts(state="deleted")) == 1
    assert await manager.search_contexts("goblins") == []
    assert await table_counts(db_url) == {"contexts": 1, "messages": 1, "events": 3}

    restored = await manager.restore_context(context_id)
    assert restored.state is ContextState.ACTIVE
    assert len(await manager.search_contexts("goblins")) == 1


async def test_hard_delete_removes_everything(manager: ContextManager, db_url: str) -> None:
    keep = await manager.create_context(ConversationContext(title="keep"))
    gone = await manager.create_context(ConversationContext(title="gone"))
    await manager.append_messages(gone, [{"role": "user", "content": "secret plans"}])
    await manager.delete_context(gone, hard_delete=True)
    with pytest.raises(ContextNotFound):
        await manager.get_context(gone, include_deleted=True)
    assert await table_counts(db_url) == {"contexts": 1, "messages": 0, "events": 1}
    assert await manager.search_contexts("secret") == []
    assert (await manager.get_context(keep)).title == "keep"


async def test_stranger_is_denied_and_learns_nothing(manager: ContextManager, db_url: str) -> None:
    context_id = await manager.create_context(
        ConversationContext(title="The Secret Villain", collaborators=["p1"]), user_id="dm"
    )
    missing = str(uuid.uuid4())
    before = await table_counts(db_url)

    def calls(target: str) -> list[Any]:
        return [
            manager.get_context(target, user_id="eve"),
            manager.update_context(target, {"title": "pwned"}, user_id="eve"),
            manager.append_messages(target, {"role": "user", "content": "x"}, user_id="eve"),
            manager.get_messages(target, user_id="eve"),
            manager.get_events(target, user_id="eve"),
            manager.delete_context(target, user_id="eve"),
            manager.delete_context(target, user_id="eve", hard_delete=True),
            manager.restore_context(target, user_id="eve"),
            manager.create_version(target, user_id="eve"),
            manager.get_version_history(target, user_id="eve"),
            manager.acquire_context_lock(target, user_id="eve"),
            manager.list_conflicts(target, user_id="eve"),
            manager.subscribe(target, user_id="eve"),
        ]

    # A stranger cannot tell the context from one that does not exist.
    for existing, absent in zip(calls(context_id), calls(missing), strict=True):
        with pytest.raises(ContextNotFound) as caught:
            await existing
        with pytest.raises(ContextNotFound) as nothing:
            await absent
        assert str(caught.value).replace(context_id, missing) == str(nothing.value)
        assert "Secret Villain" not in str(caught.value)
    assert await table_counts(db_url) == before
    assert len(await manager.query_contexts(user_id="eve")) == 0
    assert await manager.search_contexts("villain", user_id="eve") == []


async def test_roles_owner_collaborator_and_permissions(manager: ContextManager) -> None:
    context_id = await manager.create_context(
        CollaborativeContext(
            title="table",
            collaborators=["player"],
            permissions={"reader": ["read"], "writer": ["write"], "admin": ["admin"], "nobody": []},
        ),
        user_id="dm",
    )
    for user in ("dm", "player", "reader", "writer", "admin"):
        assert (await manager.get_context(context_id, user_id=user)).title == "table"
    with pytest.raises(ContextNotFound):
        await manager.get_context(context_id, user_id="nobody")

    await manager.update_context(context_id, {"shared_state": {"a": 1}}, user_id="player")
    await manager.update_context(context_id, {"shared_state": {"b": 1}}, user_id="writer")
    with pytest.raises(PermissionDenied):
        await manager.update_context(context_id, {"shared_state": {"c": 1}}, user_id="reader")
    # Sharing and state changes are for the owner and admins only.
    for user in ("player", "writer"):
        with pytest.raises(PermissionDenied):
            await manager.update_context(
                context_id, {"collaborators": ["player", user, "x"]}, user_id=user
            )
        with pytest.raises(PermissionDenied):
            await manager.delete_context(context_id, user_id=user)
    await manager.update_context(
        context_id, {"permissions": {"reader": ["read", "write"]}}, user_id="admin"
    )
    await manager.update_context(context_id, {"shared_state": {"c": 1}}, user_id="reader")
    await manager.update_context(context_id, {"state": "archived"}, user_id="admin")
    readable = await manager.query_contexts(user_id="reader")
    assert [c.state for c in readable] == [ContextState.ARCHIVED]
    await manager.delete_context(context_id, user_id="dm", hard_delete=True)


async def test_query_filters(manager: ContextManager) -> None:
    conv = await manager.create_context(
        ConversationContext(
            title="Goblin Ambush", metadata={"campaign": "lmop", "tier": {"level": 1}}
        ),
        user_id="dm",
    )
    sess = await manager.create_context(
        SessionContext(title="alice session", collaborators=["bob"], metadata={"campaign": "lmop"}),
        user_id="alice",
    )
    room = await manager.create_context(
        CollaborativeContext(
            title="Dragon table 100%", metadata={"campaign": "tomb", "public": True}
        ),
        user_id="dm",
    )
    await manager.update_context(room, {"state": "archived"})

    async def ids(**filters: object) -> set[str]:
        return {c.context_id for c in await manager.query_contexts(**filters)}

    assert await ids() == {conv, sess, room}
    assert await ids(context_type="conversation") == {conv}
    assert await ids(context_type=ContextType.SESSION) == {sess}
    assert await ids(state="archived") == {room}
    assert await ids(state="active") == {conv, sess}
    assert await ids(owner_id="dm") == {conv, room}
    assert await ids(collaborator="bob") == {sess}
    assert await ids(title_contains="goblin") == {conv}
    assert await ids(title_contains="100%") == {room}
    assert await ids(title_contains="_") == set()
    assert await ids(metadata_match={"campaign": "lmop"}) == {conv, sess}
    assert await ids(metadata_match={"tier": {"level": 1}}) == {conv}
    assert await ids(metadata_match={"public": True}) == {room}
    assert await ids(metadata_match={"campaign": "lmop", "tier": {"level": 2}}) == set()
    assert await ids(owner_id="dm", context_type="conversation") == {conv}

    all_contexts = await manager.query_contexts(order_by="created_at", descending=False)
    created = [c.created_at for c in all_contexts]
    assert created == sorted(created)
    middle = created[1]
    assert await ids(created_after=middle) == {sess, room}
    assert await ids(created_before=middle) == {conv}
    later = datetime.now(UTC) + timedelta(hours=1)
    assert await ids(modified_after=later) == set()
    assert await ids(modified_before=later) == {conv, sess, room}
    with pytest.raises(ValidationFailed, match="invalid query"):
        await manager.query_contexts(order_by="colour")
    with pytest.raises(ValidationFailed):
        await manager.query_contexts(ContextQuery(), limit=3)


async def test_pagination_with_offset_and_cursor(manager: ContextManager) -> None:
    created = [await manager.create_context(Context(title=f"ctx {i:02d}")) for i in range(25)]
    by_title = ContextQuery(order_by="title", descending=False, limit=10)

    pages = []
    cursor = None
    while True:
        page = await manager.query_contexts(by_title.model_copy(update={"cursor": cursor}))
        pages.append([c.title for c in page])
        cursor = page.next_cursor
        if cursor is None:
            break
    assert [len(p) for p in pages] == [10, 10, 5]
    assert [title for page in pages for title in page] == [f"ctx {i:02d}" for i in range(25)]

    offset_page = await manager.query_contexts(by_title.model_copy(update={"offset": 20}))
    assert [c.title for c in offset_page] == [f"ctx {i:02d}" for i in range(20, 25)]

    # A cursor stays correct while new contexts arrive in front of it.
    newest_first = ContextQuery(order_by="created_at", limit=10)
    first = await manager.query_contexts(newest_first)
    await manager.create_context(Context(title="latecomer"))
    second = await manager.query_contexts(
        newest_first.model_copy(update={"cursor": first.next_cursor})
    )
    seen = [c.context_id for c in first] + [c.context_id for c in second]
    assert seen == list(reversed(created))[:20]

    with pytest.raises(ValidationFailed, match="cursor"):
        await manager.query_contexts(by_title.model_copy(update={"cursor": "garbage!"}))
    with pytest.raises(ValidationFailed, match="another ordering"):
        await manager.query_contexts(newest_first.model_copy(update={"cursor": page_cursor(pages)}))
    # A forged cursor whose value has the wrong type for the ordering is refused, typed.
    for forged in (
        {"o": "created_at", "d": True, "v": "soon", "i": created[0]},
        {"o": "title", "d": False, "v": 7, "i": created[0]},
    ):
        token = base64.urlsafe_b64encode(orjson.dumps(forged)).decode()
        query = ContextQuery(order_by=forged["o"], descending=forged["d"], cursor=token)
        with pytest.raises(ValidationFailed, match="cursor"):
            await manager.query_contexts(query)


def page_cursor(pages: list[list[str]]) -> str:
    import base64

    import orjson

    token = {"o": "title", "d": False, "v": pages[0][-1], "i": "x"}
    return base64.urlsafe_b64encode(orjson.dumps(token)).decode()


async def test_full_text_search(manager: ContextManager) -> None:
    lair = await manager.create_context(
        ConversationContext(
            title="The Dragon's Lair",
            description="A red wyrm guards its hoard",
            messages=[{"role": "user", "content": "We sneak past the sleeping guards."}],
        ),
        user_id="dm",
    )
    tavern = await manager.create_context(
        ConversationContext(
            title="Tavern brawl",
            messages=[
                {"role": "user", "content": "I throw a chair at the bandit."},
                {"role": "assistant", "content": "Rumours say dragons nest in the northern hills."},
            ],
        ),
        user_id="dm",
    )
    hits = await manager.search_contexts("dragons")
    assert [hit.context_id for hit in hits][:2] == [lair, tavern] or {
        h.context_id for h in hits
    } == {lair, tavern}
    by_id = {hit.context_id: hit for hit in hits}
    assert by_id[lair].matched == "context"
    assert by_id[tavern].matched == "message"
    assert by_id[tavern].message_seq == 2
    assert "[dragons]" in by_id[tavern].snippet

    assert {h.context_id for h in await manager.search_contexts("hoard")} == {lair}
    assert {h.context_id for h in await manager.search_contexts("chair bandit")} == {tavern}
    assert {h.context_id for h in await manager.search_contexts("sneak")} == {lair}
    assert {h.context_id for h in await manager.search_contexts("tav")} == {tavern}
    assert await manager.search_contexts("unicorn") == []
    # FTS syntax in user text is searched as words, never a syntax error.
    for text in ['"unbalanced', "AND OR NOT", "a*b:c", "dragon's -lair", "()", ""]:
        await manager.search_contexts(text)
    assert len(await manager.search_contexts("dragon", limit=1)) == 1
    await manager.update_context(tavern, {"title": "Tavern of the golden griffon"})
    assert {h.context_id for h in await manager.search_contexts("griffon")} == {tavern}


async def test_oversized_writes_are_rejected_with_nothing_stored(db_url: str) -> None:
    async with ContextManager(database_url=db_url, max_size_mb=0.01) as cm:  # 10 KiB
        big = "x" * 20_000
        with pytest.raises(PayloadTooLarge):
            await cm.create_context(Context(title="t", data={"blob": big}))
        with pytest.raises(PayloadTooLarge):
            await cm.create_context(
                ConversationContext(title="t", messages=[{"role": "user", "content": big}])
            )
        assert await table_counts(db_url) == {"contexts": 0, "messages": 0, "events": 0}

        context_id = await cm.create_context(ConversationContext(title="t"))
        before = await table_counts(db_url)
        with pytest.raises(PayloadTooLarge):
            await cm.update_context(context_id, {"data": {"blob": big}})
        with pytest.raises(PayloadTooLarge):
            await cm.append_messages(context_id, {"role": "user", "content": big})
        for _ in range(4):  # about 8.6 KB in all
            await cm.append_messages(context_id, {"role": "user", "content": "y" * 1900})
        with pytest.raises(PayloadTooLarge, match="CONTEXT_MAX_SIZE_MB"):
            await cm.append_messages(context_id, {"role": "user", "content": "y" * 1900})
        assert (await table_counts(db_url))["messages"] == before["messages"] + 4
        assert (await cm.get_context(context_id)).revision == 5


async def test_cache_is_validated_by_revision_across_managers(db_url: str) -> None:
    async with ContextManager(database_url=db_url) as a, ContextManager(database_url=db_url) as b:
        context_id = await a.create_context(Context(title="shared"))
        assert (await b.get_context(context_id)).title == "shared"
        assert (await b.get_context(context_id)).title == "shared"
        await a.update_context(context_id, {"title": "renamed"})
        assert (await b.get_context(context_id)).title == "renamed"
        stats = await b.get_performance_stats()
        assert stats["cache"]["hits"] >= 1
        assert stats["cache"]["misses"] >= 2


async def test_last_accessed_is_touched_at_most_once_per_interval(db_url: str) -> None:
    async with ContextManager(database_url=db_url, access_touch_seconds=0) as cm:
        context_id = await cm.create_context(Context(title="t"))
        first = (await cm.get_context(context_id)).last_accessed
        second = (await cm.get_context(context_id)).last_accessed
        assert second > first
        assert (await cm.get_context(context_id)).revision == 1
    async with ContextManager(database_url=db_url, access_touch_seconds=3600) as cm:
        third = (await cm.get_context(context_id)).last_accessed
        assert (await cm.get_context(context_id)).last_accessed == third


async def test_performance_stats_and_health(manager: ContextManager, db_url: str) -> None:
    context_id = await manager.create_context(ConversationContext(title="t"))
    for _ in range(3):
        await manager.append_messages(context_id, {"role": "user", "content": "x"})
    with pytest.raises(ContextNotFound):
        await manager.get_context("6f9619ff-8b86-d011-b42d-00c04fc964ff")
    stats = await manager.get_performance_stats()
    assert stats["backend"] == db_url.split(":", maxsplit=1)[0]
    append = stats["operations"]["append_messages"]
    assert append["count"] == 3
    assert append["errors"] == 0
    assert 0 < append["p50_ms"] <= append["p99_ms"] <= append["max_ms"]
    assert stats["operations"]["get_context"]["errors"] == 1
    assert 0 <= stats["cache"]["hit_rate"] <= 1

    health = await manager.health_check()
    assert health["status"] == "ok"
    assert health["storage"]["schema_version"] == LATEST_SCHEMA
    assert health["storage"]["backend"] == stats["backend"]
    assert health["storage"]["database_bytes"] > 0

    figures = await manager.refresh_statistics()
    assert figures["contexts"] == 1
    assert figures["messages"] == 3
    assert figures["by_type_and_state"] == [
        {
            "context_type": "conversation",
            "state": "active",
            "contexts": 1,
            "bytes": figures["bytes"],
            "messages": 3,
            "max_messages": 3,
        }
    ]
    assert (await manager.get_performance_stats())["storage"]["messages_per_context"] == 3


async def test_data_survives_reopening_the_file(db_url: str) -> None:
    async with ContextManager(database_url=db_url) as cm:
        context_id = await cm.create_context(ConversationContext(title="durable"))
        await cm.append_messages(context_id, {"role": "user", "content": "remember me"})
    async with ContextManager(database_url=db_url) as cm:
        context = await cm.get_context(context_id)
        assert context.messages[0].text == "remember me"  # type: ignore[attr-defined]
        assert (await cm.health_check())["storage"]["schema_version"] == LATEST_SCHEMA
