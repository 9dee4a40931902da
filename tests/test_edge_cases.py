"""Edge cases found in review, on every backend."""

from __future__ import annotations

import asyncio

import pytest

from loremaster import (
    Context,
    ContextManager,
    ContextNotFound,
    ConversationContext,
    ValidationFailed,
)

from conftest import table_counts


async def test_a_recreated_context_is_not_served_from_a_stale_cache(db_url: str) -> None:
    async with ContextManager(database_url=db_url) as a, ContextManager(database_url=db_url) as b:
        context_id = await a.create_context(
            ConversationContext(title="alice's", messages=[{"role": "user", "content": "mine"}]),
            user_id="alice",
        )
        assert [m.text for m in await a.get_messages(context_id, user_id="alice")] == ["mine"]
        await b.delete_context(context_id, hard_delete=True)
        await b.create_context(
            ConversationContext(
                context_id=context_id,
                title="bob's",
                messages=[{"role": "user", "content": "secret"}],
            ),
            user_id="bob",
        )
        with pytest.raises(ContextNotFound):
            await a.get_messages(context_id, user_id="alice")


async def test_creating_the_same_id_at_once_reports_it_exists(db_url: str) -> None:
    async with ContextManager(database_url=db_url) as a, ContextManager(database_url=db_url) as b:
        context = Context(title="twin")
        outcomes = await asyncio.gather(
            *(m.create_context(context) for m in (a, b, a, b)), return_exceptions=True
        )
        errors = [o for o in outcomes if isinstance(o, Exception)]
        assert len(errors) == 3
        assert all(isinstance(e, ValidationFailed) and "exists" in str(e) for e in errors)


async def test_any_spelling_of_an_id_is_the_same_context(db_url: str) -> None:
    async with ContextManager(database_url=db_url) as cm:
        context_id = await cm.create_context(ConversationContext(title="t"))
        upper = context_id.upper()
        await cm.update_context(upper, {"data": {"a": 1}})
        await cm.append_messages(upper, {"role": "user", "content": "hi"})
        assert (await cm.get_context(upper)).revision == 3
        assert (await cm.get_context(context_id)).data == {"a": 1}
        with pytest.raises(ValidationFailed, match="twice"):
            await cm.append_messages_batch(
                {
                    context_id: {"role": "user", "content": "a"},
                    upper: {"role": "user", "content": "b"},
                }
            )
        assert (await cm.get_context(context_id)).revision == 3


async def test_nul_characters_are_refused_everywhere(db_url: str) -> None:
    async with ContextManager(database_url=db_url) as cm:
        with pytest.raises(ValidationFailed, match="NUL"):
            await cm.create_context(Context(title="bad\x00title"))
        context_id = await cm.create_context(ConversationContext(title="ok"))
        with pytest.raises(ValidationFailed, match="NUL"):
            await cm.update_context(context_id, {"data": {"k": "a\x00b"}})
        with pytest.raises(ValidationFailed, match="NUL"):
            await cm.append_messages(context_id, {"role": "user", "content": "\x00"})
        await cm.append_messages(context_id, {"role": "user", "content": r"a literal \u0000"})
        assert await table_counts(db_url) == {"contexts": 1, "messages": 1, "events": 2}


async def test_metadata_matching_means_equality_on_every_backend(db_url: str) -> None:
    async with ContextManager(database_url=db_url) as cm:
        null = await cm.create_context(Context(title="null", metadata={"k": None, "n": 1.0}))
        one = await cm.create_context(Context(title="one", metadata={"b": 1, "o": {}}))
        true = await cm.create_context(Context(title="true", metadata={"b": True, "tags": ["a"]}))

        async def ids(match: dict[str, object]) -> set[str]:
            return {c.context_id for c in await cm.query_contexts(metadata_match=match)}

        assert await ids({"k": None}) == {null}
        assert await ids({"b": True}) == {true}
        assert await ids({"b": 1}) == {one}
        assert await ids({"n": 1}) == {null}  # numbers compare as numbers
        for unsupported in ({"tags": ["a"]}, {"o": {}}, {'say "hi"': 1}):
            with pytest.raises(ValidationFailed, match="invalid query"):
                await cm.query_contexts(metadata_match=unsupported)


async def test_patches_changing_only_a_type_are_changes(db_url: str) -> None:
    async with ContextManager(database_url=db_url) as cm:
        context_id = await cm.create_context(Context(title="t", data={"flag": 1, "n": 0}))
        await cm.update_context(
            context_id, [{"op": "replace", "path": "/data/flag", "value": True}]
        )
        updated = await cm.update_context(context_id, {"data": {"n": False}})
        assert updated.data == {"flag": True, "n": False}
        assert updated.revision == 3


async def test_paging_limits(db_url: str) -> None:
    async with ContextManager(database_url=db_url) as cm:
        context_id = await cm.create_context(
            ConversationContext(title="t", messages=[{"role": "user", "content": "x"}])
        )
        assert await cm.get_messages(context_id, before_seq=0) == []
        assert await cm.get_messages(context_id, before_seq=1) == []
        with pytest.raises(ValidationFailed):
            await cm.get_events(context_id, limit=0)
        with pytest.raises(ContextNotFound):
            await cm.get_messages("not-a-uuid", before_seq=0)


async def test_retention_survives_a_context_over_a_lowered_size_limit(db_url: str) -> None:
    async with ContextManager(database_url=db_url) as cm:
        big = await cm.create_context(Context(title="big", data={"blob": "x" * 50_000}))
    async with ContextManager(
        database_url=db_url, max_size_mb=0.01, auto_archive_days=1e-6, deleted_retention_days=1e-6
    ) as cm:
        small = await cm.create_context(Context(title="small"))
        await cm.delete_context(small)
        await asyncio.sleep(0.2)
        report = await cm.run_cleanup()
        assert report.archived == [big]
        assert report.purged == [small]
