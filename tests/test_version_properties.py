"""Property tests: for random edit sequences every version rebuilds exactly, under every
storage strategy and after cleanup; diffs apply; rollback keeps both states in history."""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path
from typing import Any

import jsonpatch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from loremaster import ContextManager, ConversationContext

KEYS = st.sampled_from(["hp", "gold", "notes", "party"])
TEXT = st.characters(blacklist_characters="\x00")  # NUL is refused on every write
VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 5) | st.text(TEXT, max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(KEYS, inner, max_size=3),
    max_leaves=6,
)
EDITS = st.lists(
    st.one_of(
        st.tuples(st.just("set"), KEYS, VALUES),
        st.tuples(st.just("remove"), KEYS, st.none()),
        st.tuples(st.just("title"), st.text(TEXT, min_size=1, max_size=8), st.none()),
        st.tuples(st.just("append"), st.text(TEXT, min_size=1, max_size=8), st.none()),
        st.tuples(st.just("version"), st.booleans(), st.none()),
        st.tuples(st.just("rollback"), st.integers(0, 50), st.none()),
    ),
    min_size=1,
    max_size=25,
)
POLICIES = st.fixed_dictionaries(
    {
        "version_strategy": st.sampled_from(["full", "incremental", "hybrid"]),
        "version_snapshot_every": st.integers(1, 5),
        "version_every_changes": st.integers(1, 3),
    }
)

_DB = Path(tempfile.mkdtemp(prefix="loremaster-properties-")) / "versions.db"


def _state(context: Any) -> dict[str, Any]:
    assert isinstance(context, ConversationContext)
    return {
        "fields": context.model_dump(mode="json", include={"title", "data", "state"}),
        "messages": [m.text for m in context.messages],
    }


async def _apply(cm: ContextManager, context_id: str, edit: tuple[Any, Any, Any]) -> str | None:
    """Make the edit; for a rollback, the id of the version rolled back to."""
    kind, arg, value = edit
    if kind == "set":
        await cm.update_context(context_id, [{"op": "add", "path": f"/data/{arg}", "value": value}])
    elif kind == "remove":
        await cm.update_context(context_id, {"data": {arg: None}})
    elif kind == "title":
        await cm.update_context(context_id, {"title": arg})
    elif kind == "append":
        await cm.append_messages(context_id, {"role": "user", "content": arg})
    elif kind == "version":
        await cm.create_version(context_id, user_id="dm", tags=["kept"] if arg else [])
    else:
        history = await cm.get_version_history(context_id, limit=1000)
        target = history[arg % len(history)].version_id
        await cm.rollback_to_version(context_id, target)
        return target
    return None


async def _scenario(policy: dict[str, Any], edits: list[tuple[Any, Any, Any]]) -> None:
    expected: dict[str, dict[str, Any]] = {}
    async with ContextManager(database_url=f"sqlite:///{_DB}", max_versions=10_000, **policy) as cm:
        context_id = await cm.create_context(ConversationContext(title="t"), user_id="dm")
        seen = 0
        for edit in [None, *edits]:
            before = _state(await cm.get_context(context_id))
            target = None if edit is None else await _apply(cm, context_id, edit)
            now = _state(await cm.get_context(context_id))
            history = await cm.get_version_history(context_id, limit=1000)
            for version in history[: len(history) - seen]:
                expected[version.version_id] = now
            seen = len(history)
            if target is not None:  # a rollback: the old state is back, the other kept
                assert now["fields"] == expected[target]["fields"]
                assert now["messages"] == expected[target]["messages"]
                assert expected[history[0].version_id] == now
                if policy["version_every_changes"] == 1:
                    assert before in [expected[v.version_id] for v in history[1:]]

        for version_id, state in expected.items():
            assert _state(await cm.get_version(context_id, version_id)) == state

        ids = list(expected)
        for a, b in zip(ids, reversed(ids), strict=True):
            diff = await cm.diff_versions(context_id, a, b)
            fields_a = (await cm.get_version(context_id, a)).model_dump(
                mode="json", include={"title", "data", "state"}
            )
            assert jsonpatch.apply_patch(fields_a, diff.patch) == expected[b]["fields"]
            kept = expected[a]["messages"][: len(expected[a]["messages"]) - diff.messages_removed]
            assert kept + [m.text for m in diff.messages_added] == expected[b]["messages"]

    limits = {"max_versions": 3, "max_checkpoints": 2}
    async with ContextManager(database_url=f"sqlite:///{_DB}", **limits, **policy) as cm:
        await cm.run_cleanup()
        history = await cm.get_version_history(context_id, limit=1000)
        assert sum(v.automatic for v in history) <= 3
        assert sum(not v.automatic and not v.tags for v in history) <= 2
        for version in history:
            assert (
                _state(await cm.get_version(context_id, version.version_id))
                == expected[version.version_id]
            )


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(policy=POLICIES, edits=EDITS)
def test_every_version_rebuilds_exactly_and_still_does_after_cleanup(
    policy: dict[str, Any], edits: list[tuple[Any, Any, Any]]
) -> None:
    asyncio.run(_scenario(policy, edits))
