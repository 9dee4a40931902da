"""Versions, history, diff, rollback, branches, merge and version cleanup, on both backends."""

from __future__ import annotations

import asyncio
import sqlite3
from typing import Any

import jsonpatch
import pytest

from loremaster import (
    BranchNotFound,
    ContextManager,
    ContextNotFound,
    ConversationContext,
    DataCorrupted,
    PayloadTooLarge,
    SessionContext,
    ValidationFailed,
    VersionNotFound,
    VersionStrategy,
)
from loremaster.codec import Codec
from loremaster.storage import VersionRecord, VersionState, sqlite_path
from loremaster.versioning import VersionPolicy, VersionRequest, make_version

from conftest import table_counts


def _fields(context: ConversationContext | SessionContext) -> dict[str, object]:
    return context.model_dump(
        mode="json",
        include={"title", "description", "data", "metadata", "state", "owner_id"},
    )


async def _conversation(cm: ContextManager, **fields: object) -> str:
    return await cm.create_context(ConversationContext(title="Session 1", **fields), user_id="dm")


async def test_spec_version_management_example(db_url: str) -> None:
    async with ContextManager(database_url=db_url) as context_manager:
        context_id = await _conversation(context_manager)
        version = await context_manager.create_version(
            context_id,
            user_id="dm",
            message="Before major plot twist",
            tags=["checkpoint", "pre-battle"],
        )
        await context_manager.update_context(context_id, {"title": "The twist"}, user_id="dm")
        await context_manager.rollback_to_version(
            context_id, version_id=version.version_id, user_id="dm"
        )
        history = await context_manager.get_version_history(context_id, limit=10)

        assert (await context_manager.get_context(context_id)).title == "Session 1"
        assert [v.message for v in history][-2:] == ["Before major plot twist", "created"]
        assert history[0].message == f"rollback to version {version.number}"
        assert version.tags == ["checkpoint", "pre-battle"]
        assert version.author == "dm"
        assert [v.number for v in history] == sorted((v.number for v in history), reverse=True)


async def test_every_change_makes_a_version_by_default(db_url: str) -> None:
    async with ContextManager(database_url=db_url) as cm:
        context_id = await _conversation(cm)
        await cm.update_context(context_id, {"data": {"hp": 10}}, user_id="dm")
        await cm.append_messages(context_id, {"role": "user", "content": "hi"}, user_id="dm")
        history = await cm.get_version_history(context_id)

        assert [v.number for v in history] == [3, 2, 1]
        assert [v.kind for v in history] == ["delta", "delta", "snapshot"]
        assert [v.message_seq for v in history] == [1, 0, 0]
        assert history[0].parent_version_id == history[1].version_id
        assert all(v.author == "dm" for v in history)


async def test_versions_every_n_changes_and_not_when_disabled(db_url: str) -> None:
    async with ContextManager(database_url=db_url, version_every_changes=3) as cm:
        context_id = await _conversation(cm)
        for hp in range(7):
            await cm.update_context(context_id, {"data": {"hp": hp}}, user_id="dm")
        history = await cm.get_version_history(context_id)
        assert len(history) == 1 + 2  # created, then after changes 3 and 6
        latest = await cm.get_version(context_id, history[0].version_id)
        assert latest.data == {"hp": 5}

    async with ContextManager(database_url=db_url, enable_versioning=False) as cm:
        other = await _conversation(cm)
        await cm.update_context(other, {"data": {"hp": 1}}, user_id="dm")
        assert await cm.get_version_history(other) == []
        manual = await cm.create_version(other, user_id="dm", message="by hand")
        assert manual.kind == "snapshot"
        assert (await cm.get_version(other, manual.version_id)).data == {"hp": 1}


async def test_get_version_returns_the_context_as_it_was(db_url: str) -> None:
    async with ContextManager(database_url=db_url) as cm:
        context_id = await _conversation(cm, data={"scene": "tavern"})
        await cm.append_messages(
            context_id,
            [{"role": "user", "content": "I enter"}, {"role": "assistant", "content": "Dark."}],
        )
        before = await cm.create_version(context_id, user_id="dm", message="in the tavern")
        await cm.update_context(context_id, {"data": {"scene": "forest"}}, user_id="dm")
        await cm.append_messages(context_id, {"role": "user", "content": "I leave"})

        past = await cm.get_version(context_id, before.version_id, user_id="dm")
        assert isinstance(past, ConversationContext)
        assert past.data == {"scene": "tavern"}
        assert [m.text for m in past.messages] == ["I enter", "Dark."]
        assert past.message_count == 2
        assert past.revision == before.revision
        assert (await cm.get_context(context_id)).data == {"scene": "forest"}
        with pytest.raises(VersionNotFound):
            await cm.get_version(context_id, "no-such-version")
        with pytest.raises(ContextNotFound):
            await cm.get_version(context_id, before.version_id, user_id="stranger")


async def test_history_pages_and_filters_by_tag(db_url: str) -> None:
    async with ContextManager(database_url=db_url) as cm:
        context_id = await _conversation(cm)
        for i in range(9):
            tags = ["boss"] if i % 3 == 0 else []
            await cm.create_version(context_id, user_id="dm", message=f"v{i}", tags=tags)
        first = await cm.get_version_history(context_id, limit=4)
        second = await cm.get_version_history(context_id, limit=4, before=first[-1].number)
        assert [v.number for v in first + second] == list(range(10, 2, -1))
        tagged = await cm.get_version_history(context_id, tag="boss")
        assert [v.message for v in tagged] == ["v6", "v3", "v0"]
        with pytest.raises(ValidationFailed):
            await cm.get_version_history(context_id, limit=0)


async def test_diff_gives_the_patch_and_the_messages_between(db_url: str) -> None:
    async with ContextManager(database_url=db_url) as cm:
        context_id = await _conversation(cm, data={"hp": 10, "items": ["rope"]})
        a = await cm.create_version(context_id, user_id="dm")
        await cm.update_context(context_id, {"data": {"hp": 7, "gold": 3}}, user_id="dm")
        await cm.append_messages(context_id, {"role": "user", "content": "ouch"})
        b = await cm.create_version(context_id, user_id="dm")

        diff = await cm.diff_versions(context_id, a.version_id, b.version_id)
        fields_a = _fields(await cm.get_version(context_id, a.version_id))
        fields_b = _fields(await cm.get_version(context_id, b.version_id))
        assert jsonpatch.apply_patch(fields_a, diff.patch) == fields_b
        assert [m.text for m in diff.messages_added] == ["ouch"]
        assert diff.messages_removed == 0
        back = await cm.diff_versions(context_id, b.version_id, a.version_id)
        assert back.messages_added == []
        assert back.messages_removed == 1


async def test_rollback_keeps_history_and_moves_later_messages_out_of_view(db_url: str) -> None:
    async with ContextManager(database_url=db_url) as cm:
        context_id = await _conversation(cm, data={"hp": 10})
        await cm.append_messages(context_id, {"role": "user", "content": "one"})
        checkpoint = await cm.create_version(context_id, user_id="dm", message="one message")
        await cm.append_messages(context_id, [{"role": "user", "content": "two"}])
        await cm.update_context(context_id, {"data": {"hp": 0}}, user_id="dm")
        doomed = await cm.create_version(context_id, user_id="dm", message="the party died")
        messages_before = (await table_counts(db_url))["messages"]

        rolled = await cm.rollback_to_version(context_id, checkpoint.version_id, user_id="dm")

        assert rolled.data == {"hp": 10}
        current = await cm.get_context(context_id)
        assert isinstance(current, ConversationContext)
        assert [m.text for m in current.messages] == ["one"]
        assert current.message_count == 1
        assert (await table_counts(db_url))["messages"] == messages_before  # nothing deleted
        dead = await cm.get_version(context_id, doomed.version_id)
        assert isinstance(dead, ConversationContext)
        assert [m.text for m in dead.messages] == ["one", "two"]
        assert dead.data == {"hp": 0}
        history = await cm.get_version_history(context_id, limit=3)
        assert history[0].message == f"rollback to version {checkpoint.number}"
        assert history[1].version_id == doomed.version_id
        event = (await cm.get_events(context_id))[-1]
        assert event.op == "rollback"
        assert {"op": "replace", "path": "/message_count", "value": 1} in event.changes

        await cm.append_messages(context_id, {"role": "user", "content": "retry"})
        again = await cm.get_messages(context_id)
        assert [(m.seq, m.text) for m in again] == [(1, "one"), (2, "retry")]


async def test_rollback_does_not_restore_access_control(db_url: str) -> None:
    async with ContextManager(database_url=db_url) as cm:
        context_id = await _conversation(cm, collaborators=["ana"])
        version = await cm.create_version(context_id, user_id="dm")
        await cm.update_context(context_id, {"collaborators": []}, user_id="dm")
        with pytest.raises(ContextNotFound):
            await cm.rollback_to_version(context_id, version.version_id, user_id="ana")
        await cm.rollback_to_version(context_id, version.version_id, user_id="dm")
        assert (await cm.get_context(context_id)).collaborators == []


async def test_a_conversation_forks_and_both_futures_live_side_by_side(db_url: str) -> None:
    async with ContextManager(database_url=db_url) as cm:
        context_id = await _conversation(cm, data={"path": None})
        await cm.append_messages(
            context_id, [{"role": "user", "content": f"turn {i}"} for i in range(1, 41)]
        )
        fork = await cm.create_version(context_id, user_id="dm", message="the crossroads")
        counts = await table_counts(db_url)

        branch = await cm.create_branch(
            context_id, "left", from_version_id=fork.version_id, user_id="dm"
        )

        assert (await table_counts(db_url))["messages"] == counts["messages"]  # no copying
        assert branch.base_version_id == fork.version_id
        await cm.update_context(context_id, {"data": {"path": "left"}}, branch="left")
        await cm.append_messages(
            context_id, {"role": "user", "content": "we go left"}, branch="left"
        )
        await cm.update_context(context_id, {"data": {"path": "right"}})
        await cm.append_messages(context_id, {"role": "user", "content": "we go right"})

        left = await cm.get_context(context_id, branch="left")
        right = await cm.get_context(context_id)
        assert isinstance(left, ConversationContext)
        assert isinstance(right, ConversationContext)
        assert left.data == {"path": "left"}
        assert right.data == {"path": "right"}
        assert [m.text for m in left.messages[-2:]] == ["turn 40", "we go left"]
        assert [m.text for m in right.messages[-2:]] == ["turn 40", "we go right"]
        assert left.message_count == right.message_count == 41
        page = await cm.get_messages(context_id, limit=3, branch="left")
        assert [m.seq for m in page] == [39, 40, 41]
        assert [b.name for b in await cm.list_branches(context_id)] == ["main", "left"]
        left_history = await cm.get_version_history(context_id, branch="left")
        assert {v.branch for v in left_history} == {"left"}
        assert left_history[-1].parent_version_id == fork.version_id
        events = await cm.get_events(context_id, since_revision=right.revision - 5)
        assert {e.branch for e in events} == {"main", "left"}


async def test_branch_errors(db_url: str) -> None:
    async with ContextManager(database_url=db_url) as cm:
        context_id = await _conversation(cm)
        await cm.create_branch(context_id, "what-if")
        with pytest.raises(ValidationFailed):
            await cm.create_branch(context_id, "what-if")
        for bad in ("main", "", "has space", "x" * 101):
            with pytest.raises(ValidationFailed):
                await cm.create_branch(context_id, bad)
        with pytest.raises(BranchNotFound):
            await cm.get_context(context_id, branch="nowhere")
        with pytest.raises(BranchNotFound):
            await cm.update_context(context_id, {"title": "x"}, branch="nowhere")
        with pytest.raises(ValidationFailed):
            await cm.update_context(context_id, {"collaborators": ["eve"]}, branch="what-if")
        with pytest.raises(ContextNotFound):
            await cm.create_branch(context_id, "mine", user_id="stranger")


async def test_merge_lands_different_paths_and_keeps_both_messages(db_url: str) -> None:
    async with ContextManager(database_url=db_url) as cm:
        context_id = await _conversation(cm, data={"hp": 10, "gold": 0})
        await cm.append_messages(context_id, {"role": "user", "content": "start"})
        await cm.create_branch(context_id, "side")
        await cm.update_context(context_id, {"data": {"gold": 50}}, branch="side")
        await cm.append_messages(context_id, {"role": "user", "content": "loot"}, branch="side")
        await cm.update_context(context_id, {"data": {"hp": 4}})
        await cm.append_messages(context_id, {"role": "user", "content": "fight"})

        result = await cm.merge_branch(context_id, "side", "main", user_id="dm")

        assert result.merged
        assert result.conflicts == []
        assert result.messages_added == 1
        merged = await cm.get_context(context_id)
        assert isinstance(merged, ConversationContext)
        assert merged.data == {"hp": 4, "gold": 50}
        assert [m.text for m in merged.messages] == ["start", "fight", "loot"]
        assert result.version is not None
        assert result.version.message == "merge side into main"
        assert (await cm.get_events(context_id))[-1].op == "merge"


async def test_merge_conflicts_are_reported_per_path(db_url: str) -> None:
    async with ContextManager(database_url=db_url) as cm:
        context_id = await _conversation(cm, data={"hp": 10, "name": "Bob"})
        await cm.create_branch(context_id, "side")
        await cm.update_context(context_id, {"data": {"hp": 1, "name": "Rob"}}, branch="side")
        await cm.update_context(context_id, {"data": {"hp": 2, "name": "Rob"}})
        revision = (await cm.get_context(context_id)).revision

        refused = await cm.merge_branch(context_id, "side")
        assert not refused.merged
        assert [(c.path, c.base, c.source, c.target) for c in refused.conflicts] == [
            ("/data/hp", 10, 1, 2)
        ]
        assert (await cm.get_context(context_id)).revision == revision  # nothing written

        taken = await cm.merge_branch(context_id, "side", strategy="source")
        assert taken.merged
        assert (await cm.get_context(context_id)).data == {"hp": 1, "name": "Rob"}

        await cm.update_context(context_id, {"data": {"hp": 9}}, branch="side")
        await cm.update_context(context_id, {"data": {"hp": 8}})
        kept = await cm.merge_branch(context_id, "side", strategy="target")
        assert kept.merged
        assert (await cm.get_context(context_id)).data["hp"] == 8


async def test_a_damaged_version_is_an_error_never_wrong_data(sqlite_url: str) -> None:
    async with ContextManager(database_url=sqlite_url, compression_algorithm="none") as cm:
        context_id = await _conversation(cm, data={"secret": "dragon"})
        first = (await cm.get_version_history(context_id))[0]
        second = await cm.create_version(context_id, user_id="dm")
        with sqlite3.connect(sqlite_path(sqlite_url)) as db:
            (payload,) = db.execute(
                "SELECT payload FROM versions WHERE version_id = ?", (first.version_id,)
            ).fetchone()
            assert b"dragon" in payload
            db.execute(
                "UPDATE versions SET payload = ? WHERE version_id = ?",
                (payload.replace(b"dragon", b"kobold"), first.version_id),
            )
            db.execute(
                "UPDATE versions SET checksum = ? WHERE version_id = ?",
                ("0" * 64, second.version_id),
            )
        with pytest.raises(DataCorrupted):  # the payload fails its envelope's CRC
            await cm.get_version(context_id, first.version_id)
        with pytest.raises(DataCorrupted):  # the rebuilt document fails the version checksum
            await cm.get_version(context_id, second.version_id)


async def test_cleanup_keeps_tagged_versions_heads_and_fork_points(db_url: str) -> None:
    async with ContextManager(database_url=db_url, max_versions=10, version_snapshot_every=4) as cm:
        context_id = await _conversation(cm)
        kept = await cm.create_version(context_id, user_id="dm", tags=["keep"])
        await cm.create_branch(context_id, "side")
        for hp in range(40):
            await cm.update_context(context_id, {"data": {"hp": hp}}, user_id="dm")

        history = await cm.get_version_history(context_id, limit=1000)
        assert sum(v.automatic for v in history) == 10  # the tagged one counts against none
        assert len(history) == 11
        ids = {v.version_id for v in history}
        assert kept.version_id in ids
        branches = await cm.list_branches(context_id)
        assert {b.head_version_id for b in branches} <= ids
        assert {b.base_version_id for b in branches if b.base_version_id} <= ids
        for version in history:  # each one still rebuilds and passes its checksum
            past = await cm.get_version(context_id, version.version_id)
            if not version.tags:
                assert past.data == {"hp": version.number - 3}
        assert (await cm.run_cleanup()).versions_pruned == 0


async def test_the_retention_task_prunes_contexts_over_the_limit(db_url: str) -> None:
    async with ContextManager(database_url=db_url, max_versions=1000) as cm:
        context_id = await _conversation(cm)
        for hp in range(12):
            await cm.update_context(context_id, {"data": {"hp": hp}}, user_id="dm")
    async with ContextManager(database_url=db_url, max_versions=5) as cm:
        assert (await cm.run_cleanup(dry_run=True)).versions_pruned == 8
        assert len(await cm.get_version_history(context_id)) == 13
        assert (await cm.run_cleanup()).versions_pruned == 8
        history = await cm.get_version_history(context_id)
        assert [v.number for v in history] == [13, 12, 11, 10, 9]
        assert history[-1].kind == "snapshot"
        for version in history:
            past = await cm.get_version(context_id, version.version_id)
            assert past.data == {"hp": version.number - 2}


async def test_changes_made_by_retention_are_versioned_too(db_url: str) -> None:
    async with ContextManager(
        database_url=db_url, auto_archive_days=1e-9, version_every_changes=2
    ) as cm:
        context_id = await _conversation(cm, data={"hp": 1})
        await cm.update_context(context_id, {"data": {"hp": 2}}, user_id="dm")
        await asyncio.sleep(0.01)
        assert (await cm.run_cleanup()).archived == [context_id]  # the second change
        history = await cm.get_version_history(context_id)
        archived = await cm.get_version(context_id, history[0].version_id)
        assert (archived.state.value, archived.data) == ("archived", {"hp": 2})


async def test_branch_versions_survive_changes_to_who_may_access_the_context(db_url: str) -> None:
    async with ContextManager(database_url=db_url) as cm:
        context_id = await _conversation(cm, data={"a": 1})
        await cm.create_branch(context_id, "side", user_id="dm")
        await cm.update_context(context_id, {"collaborators": ["bob"]}, user_id="dm")
        await cm.update_context(context_id, {"data": {"a": 2}}, user_id="dm", branch="side")
        await cm.update_context(context_id, {"data": {"a": 3}}, user_id="dm", branch="side")
        for version in await cm.get_version_history(context_id, branch="side"):
            past = await cm.get_version(context_id, version.version_id, user_id="dm")
            assert past.collaborators == ["bob"]  # the context's, as it is now
        history = await cm.get_version_history(context_id, branch="side")
        assert (await cm.get_version(context_id, history[0].version_id)).data == {"a": 3}


async def test_a_branch_merges_again_and_again_without_copying_twice(db_url: str) -> None:
    async with ContextManager(database_url=db_url) as cm:
        context_id = await _conversation(cm, data={"a": 1, "b": 1})
        await cm.append_messages(context_id, {"role": "user", "content": "m1"})
        await cm.create_branch(context_id, "side")
        for turn in (1, 2, 3):
            await cm.append_messages(
                context_id, {"role": "user", "content": f"side{turn}"}, branch="side"
            )
            await cm.update_context(context_id, {"data": {"b": turn * 10}}, branch="side")
            result = await cm.merge_branch(context_id, "side")
            assert (result.merged, result.conflicts, result.messages_added) == (True, [], 1)
            assert result.version is not None
            assert result.version.merged_version_id is not None
            await cm.update_context(context_id, {"data": {"a": turn + 1}})  # main moves on
        main = await cm.get_context(context_id)
        assert isinstance(main, ConversationContext)
        assert [m.text for m in main.messages] == ["m1", "side1", "side2", "side3"]
        assert main.data == {"a": 4, "b": 30}


async def test_bad_version_and_branch_input_is_refused_before_anything_is_written(
    db_url: str,
) -> None:
    async with ContextManager(database_url=db_url) as cm:
        context_id = await _conversation(cm)
        revision = (await cm.get_context(context_id)).revision
        for call in (
            cm.create_version(context_id, tags=[1]),  # type: ignore[list-item]
            cm.create_version(context_id, tags="checkpoint"),
            cm.create_version(context_id, message=None),  # type: ignore[arg-type]
            cm.create_branch(context_id, 5),  # type: ignore[arg-type]
            cm.get_version_history(context_id, before=2**70),
            cm.get_events(context_id, since_revision=2**70),
            cm.get_messages(context_id, limit=2**70),
            cm.update_context(context_id, {"title": "x"}, expected_revision="1"),  # type: ignore[arg-type]
        ):
            with pytest.raises(ValidationFailed):
                await call
        assert (await cm.get_context(context_id)).revision == revision
        assert len(await cm.get_version_history(context_id)) == 1


async def test_a_refused_merge_writes_nothing_even_from_a_changed_source(db_url: str) -> None:
    async with ContextManager(database_url=db_url, version_every_changes=5) as cm:
        context_id = await _conversation(cm)
        await cm.create_branch(context_id, "side")
        await cm.update_context(context_id, {"title": "side's"}, branch="side")  # unversioned
        await cm.update_context(context_id, {"title": "main's"})
        revision = (await cm.get_context(context_id)).revision
        refused = await cm.merge_branch(context_id, "side")
        assert not refused.merged
        assert (await cm.get_context(context_id)).revision == revision


async def test_cleanup_keeps_what_merges_took_in(db_url: str) -> None:
    async with ContextManager(database_url=db_url, max_versions=4) as cm:
        context_id = await _conversation(cm)
        await cm.create_branch(context_id, "b")
        await cm.update_context(context_id, {"description": "x"}, branch="b")
        assert (await cm.merge_branch(context_id, "b")).merged
        await cm.update_context(context_id, {"description": "y"})
        for n in range(6):
            await cm.update_context(context_id, {"data": {"n": n}}, branch="b")
        again = await cm.merge_branch(context_id, "b")
        assert (again.merged, again.conflicts) == (True, [])
        assert (await cm.get_context(context_id)).description == "y"


class RecordingCodec(Codec):
    """A codec that keeps what it was asked to encode."""

    def __init__(self) -> None:
        super().__init__()
        self.encoded: list[Any] = []

    def encode(self, value: Any, **options: Any) -> bytes:
        self.encoded.append(value)
        return super().encode(value, **options)


def _version_of(codec: Codec, strategy: VersionStrategy, state: VersionState) -> VersionRecord:
    document = {"title": "t", "data": {"lore": "x" * 50_000, "hp": 9}}
    version, _ = make_version(
        codec=codec,
        policy=VersionPolicy(strategy=strategy),
        context_id="c",
        branch="main",
        number=2,
        state=state,
        document=document,
        view=(),
        turn_count=0,
        revision=2,
        request=VersionRequest("dm"),
        now=1,
    )
    return version


def test_a_version_compresses_only_the_payload_it_stores() -> None:
    """Choosing between a patch and a snapshot compares plain sizes: the whole document is
    not compressed (inside the write lock) only to be thrown away."""
    pending = [{"op": "replace", "path": "/data/hp", "value": 9}]
    known = VersionState(head="v1", pending=pending, changes_since=1)
    codec = RecordingCodec()
    version = _version_of(codec, VersionStrategy.HYBRID, known)
    assert version.kind == "delta"
    assert codec.encoded == [pending]
    unknown = VersionState(head="v1", pending=None, changes_since=1)
    codec = RecordingCodec()
    assert _version_of(codec, VersionStrategy.HYBRID, unknown).kind == "snapshot"
    assert len(codec.encoded) == 1
    codec = RecordingCodec()
    assert _version_of(codec, VersionStrategy.FULL, known).kind == "snapshot"
    assert len(codec.encoded) == 1


async def test_merged_messages_count_against_the_size_limit_as_appended_ones(
    db_url: str,
) -> None:
    """A merge adds the source's messages at the size an append counts them (their JSON),
    not at the size of their compact rows: a branch is no way around CONTEXT_MAX_SIZE_MB."""
    async with ContextManager(database_url=db_url, max_size_mb=0.01) as cm:  # 10 KB
        chat = await cm.create_context(ConversationContext(title="t"))
        await cm.append_messages(chat, [{"role": "user", "content": "a" * 3000}])
        await cm.create_branch(chat, "side")
        for _ in range(2):
            await cm.append_messages(chat, [{"role": "user", "content": "m" * 3000}])
            await cm.append_messages(chat, [{"role": "user", "content": "b" * 3000}], branch="side")
        with pytest.raises(PayloadTooLarge):
            await cm.merge_branch(chat, "side", "main", strategy="source")
        assert (await cm.get_context(chat)).message_count == 3
