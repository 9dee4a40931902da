"""Three-way merge on leaf paths, lists merged by identity, and the conflict strategies."""

from __future__ import annotations

import copy
from typing import Any

import pydantic
import pytest
from hypothesis import given
from hypothesis import strategies as st

from loremaster import DataCorrupted, RevisionConflict, ValidationFailed
from loremaster.patch import same_json
from loremaster.sync import (
    MISSING,
    ConflictPolicy,
    ConflictStrategy,
    PathChange,
    PendingConflict,
    Resolved,
    ThreeWayConflict,
    UpdateOrigin,
    apply_choices,
    resolve_update,
    three_way_merge,
)

# -- merge: examples ------------------------------------------------------------------------


def test_different_paths_merge_and_equal_values_do_not_conflict() -> None:
    base = {"quest": "Dragon's Lair", "party": {"level": 4, "gold": 10}}
    ours = {"quest": "Dragon's Lair", "party": {"level": 5, "gold": 10}, "map": "north"}
    theirs = {"quest": "Dragon's Lair", "party": {"level": 5, "gold": 25}}
    result = three_way_merge(base, ours, theirs)
    assert result.clean
    assert result.merged == {
        "quest": "Dragon's Lair",
        "party": {"level": 5, "gold": 25},
        "map": "north",
    }


def test_different_values_on_one_path_conflict_and_keep_ours() -> None:
    result = three_way_merge({"hp": 10, "mp": 1}, {"hp": 8, "mp": 1}, {"hp": 12, "mp": 2})
    assert result.merged == {"hp": 8, "mp": 2}
    assert result.conflicts == (ThreeWayConflict("/hp", 10, 8, 12),)


def test_removal_against_change_conflicts_with_missing_sides() -> None:
    result = three_way_merge({"a": {"b": 1}}, {}, {"a": {"b": 2}})
    assert result.merged == {}
    [conflict] = result.conflicts
    assert conflict.path == "/a"
    assert conflict.ours is MISSING
    assert conflict.value("theirs") == {"b": 2}
    added = three_way_merge({}, {"x": 1}, {"x": 2}).conflicts[0]
    assert added.base is MISSING


def test_both_removing_a_key_removes_it() -> None:
    assert three_way_merge({"a": 1, "b": 2}, {"b": 2}, {"b": 3}).merged == {"b": 3}


def test_paths_are_escaped_json_pointers() -> None:
    result = three_way_merge({"a/b": {"c~d": 1}}, {"a/b": {"c~d": 2}}, {"a/b": {"c~d": 3}})
    assert [c.path for c in result.conflicts] == ["/a~1b/c~0d"]


def test_json_types_stay_apart() -> None:
    result = three_way_merge({"v": 0}, {"v": 1}, {"v": True})
    assert [c.path for c in result.conflicts] == ["/v"]
    assert three_way_merge({"v": 1}, {"v": 1.0}, {"v": 1}).merged["v"] == 1.0


def test_new_objects_on_both_sides_merge_by_key() -> None:
    result = three_way_merge({}, {"notes": {"a": 1}}, {"notes": {"b": 2}})
    assert result.clean
    assert result.merged == {"notes": {"a": 1, "b": 2}}


def test_lists_of_values_are_leaves() -> None:
    base = {"tags": ["a"]}
    result = three_way_merge(base, {"tags": ["a", "b"]}, {"tags": ["a", "c"]})
    assert result.conflicts == (ThreeWayConflict("/tags", ["a"], ["a", "b"], ["a", "c"]),)
    assert result.merged == {"tags": ["a", "b"]}


def _p(pid: str, **fields: Any) -> dict[str, Any]:
    return {"id": pid, **fields}


def test_lists_with_identity_merge_by_id_never_by_index() -> None:
    base = {"party": [_p("ann", hp=10), _p("bob", hp=7), _p("cy", hp=5)]}
    ours = {"party": [_p("ann", hp=9), _p("bob", hp=7), _p("cy", hp=5), _p("dee", hp=3)]}
    theirs = {"party": [_p("eve", hp=1), _p("ann", hp=10), _p("cy", hp=2)]}
    result = three_way_merge(base, ours, theirs)
    assert result.clean
    assert result.merged == {
        "party": [_p("eve", hp=1), _p("ann", hp=9), _p("cy", hp=2), _p("dee", hp=3)]
    }


def test_conflicts_inside_identity_lists_are_addressed_by_id() -> None:
    base = {"party": [_p("ann", hp=10), _p("bob", hp=7)]}
    ours = {"party": [_p("bob", hp=6), _p("ann", hp=10)]}
    theirs = {"party": [_p("ann", hp=10), _p("bob", hp=4)]}
    result = three_way_merge(base, ours, theirs)
    assert [(c.path, c.ours, c.theirs) for c in result.conflicts] == [("/party/bob/hp", 6, 4)]
    assert result.merged == {"party": [_p("bob", hp=6), _p("ann", hp=10)]}


def test_item_removed_on_one_side_and_changed_on_the_other_conflicts() -> None:
    base = {"party": [_p("ann", hp=10), _p("bob", hp=7)]}
    result = three_way_merge(
        base, {"party": [_p("ann", hp=10)]}, {"party": [*base["party"][:1], _p("bob", hp=1)]}
    )
    [conflict] = result.conflicts
    assert conflict.path == "/party/bob"
    assert conflict.ours is MISSING
    assert result.merged == {"party": [_p("ann", hp=10)]}


def test_integer_ids_and_a_custom_identity_key() -> None:
    base = {"rolls": [{"n": 1, "d": 6}]}
    ours = {"rolls": [{"n": 1, "d": 6}, {"n": 2, "d": 20}]}
    theirs = {"rolls": [{"n": 1, "d": 8}]}
    assert three_way_merge(base, ours, theirs).conflicts  # no "id": the list is a leaf
    result = three_way_merge(base, ours, theirs, identity_key="n")
    assert result.clean
    assert result.merged == {"rolls": [{"n": 1, "d": 8}, {"n": 2, "d": 20}]}


def test_duplicate_or_missing_ids_make_a_list_a_leaf() -> None:
    duplicated = [_p("a"), _p("a")]
    assert three_way_merge([], [_p("a")], duplicated).conflicts
    assert three_way_merge([], [_p("a")], [{"name": "x"}]).conflicts
    assert three_way_merge([], [_p("a")], [_p("b")]).merged == [_p("a"), _p("b")]


# -- merge: laws ----------------------------------------------------------------------------

keys = st.sampled_from(["a", "b", "c", "x/y", "t~1"])
scalars = st.none() | st.booleans() | st.integers(-3, 3) | st.text(max_size=2)
items = st.builds(
    lambda ident, value: {"id": ident, "v": value}, st.sampled_from(["p", "q", "r", "s"]), scalars
)
identity_lists = st.lists(items, max_size=4, unique_by=lambda item: item["id"])
json_values = st.recursive(
    scalars | identity_lists,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(keys, inner, max_size=3),
    max_leaves=12,
)
documents = st.dictionaries(keys, json_values, max_size=4)


@given(documents, documents)
def test_merging_with_an_unchanged_side_takes_the_other(base: Any, x: Any) -> None:
    for result in (three_way_merge(base, base, x), three_way_merge(base, x, base)):
        assert result.clean
        assert same_json(result.merged, x)
    assert same_json(three_way_merge(base, x, x).merged, x)


@given(documents, documents, documents)
def test_conflicts_are_symmetric(base: Any, ours: Any, theirs: Any) -> None:
    forward = three_way_merge(base, ours, theirs)
    backward = three_way_merge(base, theirs, ours)
    assert {c.path for c in forward.conflicts} == {c.path for c in backward.conflicts}
    swapped = {c.path: (c.theirs, c.ours) for c in backward.conflicts}
    for conflict in forward.conflicts:
        assert same_json((conflict.ours, conflict.theirs), swapped[conflict.path])


def _normalized(value: Any) -> Any:
    """Identity lists sorted by id: choices append items a merge would have placed."""
    if isinstance(value, dict):
        return {k: _normalized(v) for k, v in value.items()}
    if isinstance(value, list):
        items = [_normalized(v) for v in value]
        if all(isinstance(v, dict) and "id" in v for v in items):
            return sorted(items, key=lambda v: str(v["id"]))
        return items
    return value


@given(documents, documents, documents)
def test_choosing_a_side_everywhere_gives_the_merge_that_prefers_it(
    base: Any, ours: Any, theirs: Any
) -> None:
    result = three_way_merge(base, ours, theirs)
    paths = [c.path for c in result.conflicts]
    kept = apply_choices(result.merged, result.conflicts, dict.fromkeys(paths, "ours"))
    assert same_json(kept, result.merged)
    preferring_theirs = three_way_merge(base, theirs, ours).merged
    chosen = apply_choices(result.merged, result.conflicts, dict.fromkeys(paths, "theirs"))
    assert same_json(_normalized(chosen), _normalized(preferring_theirs))


edits = st.dictionaries(keys, json_values | st.just(MISSING), max_size=3)


@given(documents, edits, edits)
def test_disjoint_edits_both_land(base: dict[str, Any], ours_edit: Any, theirs_edit: Any) -> None:
    theirs_edit = {k: v for k, v in theirs_edit.items() if k not in ours_edit}

    def edited(edit: dict[str, Any]) -> dict[str, Any]:
        doc = copy.deepcopy(base)
        for key, value in edit.items():
            if value is MISSING:
                doc.pop(key, None)
            else:
                doc[key] = value
        return doc

    result = three_way_merge(base, edited(ours_edit), edited(theirs_edit))
    assert result.clean
    assert same_json(result.merged, edited({**ours_edit, **theirs_edit}))


@given(identity_lists, st.data())
def test_disjoint_item_edits_of_an_identity_list_both_land(
    base: list[Any], data: st.DataObject
) -> None:
    ids = [item["id"] for item in base]
    changed = set(data.draw(st.sets(st.sampled_from(ids)))) if ids else set()
    rest = [i for i in ids if i not in changed]
    removed = set(data.draw(st.sets(st.sampled_from(rest)))) if rest else set()
    ours = [{**item, "v": "ours"} if item["id"] in changed else item for item in base]
    theirs = [item for item in base if item["id"] not in removed] + [{"id": "new", "v": 1}]
    result = three_way_merge({"l": base}, {"l": ours}, {"l": theirs})
    assert result.clean
    assert [item["id"] for item in result.merged["l"]] == [
        *(i for i in ids if i not in removed),
        "new",
    ]
    for item in result.merged["l"]:
        assert item["v"] == (
            "ours" if item["id"] in changed else 1 if item["id"] == "new" else item["v"]
        )


# -- strategies -----------------------------------------------------------------------------

BASE = {"title": "Room", "shared_state": {"quest": "Lair", "level": 4, "gold": 10}}
CURRENT = {"title": "Room", "shared_state": {"quest": "Lair", "level": 5, "gold": 12}}
INCOMING = {"title": "Room!", "shared_state": {"quest": "Lair", "level": 6, "gold": 10}}
ALICE = UpdateOrigin(user_id="alice")
CLAUDE = UpdateOrigin(user_id="bob", provider="anthropic")
GPT = UpdateOrigin(provider="openai")


def decide(policy: ConflictPolicy, **kwargs: Any) -> Resolved | PendingConflict:
    arguments: dict[str, Any] = {
        "origin": ALICE,
        "context_id": "c1",
        "base_revision": 3,
        "current_revision": 4,
    }
    return resolve_update(BASE, CURRENT, INCOMING, policy=policy, **(arguments | kwargs))


def test_strategy_names_are_the_specs_and_their_values_are_stable() -> None:
    assert {s.name: s.value for s in ConflictStrategy} == {
        "LATEST_WINS": "latest_wins",
        "MANUAL_MERGE": "manual_merge",
        "PROVIDER_PRIORITY": "provider_priority",
        "USER_CHOICE": "user_choice",
        "AUTOMATIC_MERGE": "automatic_merge",
    }


def test_without_overlap_every_strategy_merges() -> None:
    incoming = {**BASE, "title": "Room!"}
    for strategy in ConflictStrategy:
        outcome = resolve_update(
            BASE,
            CURRENT,
            incoming,
            policy=ConflictPolicy(strategy=strategy),
            origin=ALICE,
            context_id="c1",
            base_revision=3,
            current_revision=4,
        )
        assert outcome == Resolved({**CURRENT, "title": "Room!"}, strategy)


def test_latest_wins_takes_the_incoming_value_on_overlaps_only() -> None:
    outcome = decide(ConflictPolicy(strategy=ConflictStrategy.LATEST_WINS))
    assert isinstance(outcome, Resolved)
    assert outcome.document == {
        "title": "Room!",
        "shared_state": {"quest": "Lair", "level": 6, "gold": 12},
    }
    assert outcome.decisions == {"/shared_state/level": "theirs"}
    assert [c.path for c in outcome.conflicts] == ["/shared_state/level"]


def test_automatic_merge_refuses_overlaps_without_a_fallback() -> None:
    with pytest.raises(RevisionConflict) as raised:
        decide(ConflictPolicy())
    assert (raised.value.expected_revision, raised.value.actual_revision) == (3, 4)
    outcome = decide(ConflictPolicy(fallback=ConflictStrategy.LATEST_WINS))
    assert isinstance(outcome, Resolved)
    assert outcome.document["shared_state"]["level"] == 6


def test_manual_merge_commits_the_rest_and_records_the_overlaps() -> None:
    outcome = decide(ConflictPolicy(strategy=ConflictStrategy.MANUAL_MERGE))
    assert isinstance(outcome, PendingConflict)
    assert outcome.strategy is ConflictStrategy.MANUAL_MERGE
    assert outcome.resolver is None
    assert outcome.document == {
        "title": "Room!",
        "shared_state": {"quest": "Lair", "level": 5, "gold": 12},
    }
    assert outcome.conflicts == (ThreeWayConflict("/shared_state/level", 4, 5, 6),)
    resolved = apply_choices(outcome.document, outcome.conflicts, {"/shared_state/level": "base"})
    assert resolved["shared_state"]["level"] == 4


def test_user_choice_names_who_chooses() -> None:
    policy = ConflictPolicy(strategy=ConflictStrategy.USER_CHOICE)
    outcome = decide(policy)
    assert isinstance(outcome, PendingConflict)
    assert (outcome.strategy, outcome.resolver) == (ConflictStrategy.USER_CHOICE, "alice")
    outcome = decide(policy.model_copy(update={"chooser": "dm"}), origin=GPT)
    assert isinstance(outcome, PendingConflict)
    assert outcome.resolver == "dm"
    fallback = decide(ConflictPolicy(fallback=ConflictStrategy.USER_CHOICE))
    assert isinstance(fallback, PendingConflict)
    assert (fallback.strategy, fallback.resolver) == (ConflictStrategy.USER_CHOICE, "alice")


def test_provider_priority_ranks_the_writers_of_each_conflicting_path() -> None:
    base = {"hp": 10, "mood": "calm", "note": ""}
    current = {"hp": 8, "mood": "angry", "note": ""}
    incoming = {"hp": 9, "mood": "sad", "note": "x"}
    since_base = [
        PathChange(ALICE, [{"op": "replace", "path": "/hp", "value": 8}]),
        PathChange(CLAUDE, [{"op": "replace", "path": "/mood", "value": "angry"}]),
    ]
    policy = ConflictPolicy(
        strategy=ConflictStrategy.PROVIDER_PRIORITY, provider_ranking=("user", "anthropic")
    )

    def run(origin: UpdateOrigin, policy: ConflictPolicy = policy) -> Resolved | PendingConflict:
        return resolve_update(
            base,
            current,
            incoming,
            policy=policy,
            origin=origin,
            since_base=since_base,
            context_id="c1",
            base_revision=1,
            current_revision=3,
        )

    from_gpt = run(GPT)  # unlisted: ranks last, loses everywhere
    assert isinstance(from_gpt, Resolved)
    assert from_gpt.document == {"hp": 8, "mood": "angry", "note": "x"}
    assert from_gpt.decisions == {"/hp": "ours", "/mood": "ours"}
    with pytest.raises(RevisionConflict):
        run(UpdateOrigin(user_id="carol"))  # a person beats Claude, ties with alice
    tie_to_manual = run(
        UpdateOrigin(user_id="carol"),
        policy.model_copy(update={"fallback": ConflictStrategy.MANUAL_MERGE}),
    )
    assert isinstance(tie_to_manual, PendingConflict)
    assert tie_to_manual.decisions == {"/mood": "theirs"}
    assert [c.path for c in tie_to_manual.conflicts] == ["/hp"]
    assert tie_to_manual.document == {"hp": 8, "mood": "sad", "note": "x"}


def test_provider_priority_finds_writers_through_lists_and_parents() -> None:
    base = {"party": [_p("ann", hp=10)], "state": {"a": {"b": 1}}}
    current = {"party": [_p("ann", hp=9)], "state": {"a": {"b": 2}}}
    incoming = {"party": [_p("ann", hp=8)], "state": {"a": {"b": 3}}}
    since_base = [
        PathChange(CLAUDE, [{"op": "replace", "path": "/party/0/hp", "value": 9}]),
        PathChange(GPT, [{"op": "replace", "path": "/state", "value": {"a": {"b": 2}}}]),
    ]
    outcome = resolve_update(
        base,
        current,
        incoming,
        policy=ConflictPolicy(
            strategy=ConflictStrategy.PROVIDER_PRIORITY,
            provider_ranking=("anthropic", "user", "openai"),
        ),
        origin=ALICE,
        since_base=since_base,
        context_id="c1",
        base_revision=1,
        current_revision=3,
    )
    assert isinstance(outcome, Resolved)
    assert outcome.decisions == {"/party/ann/hp": "ours", "/state/a/b": "theirs"}


def test_pending_conflicts_round_trip_as_json() -> None:
    pending = PendingConflict(
        document={"x": 1},
        strategy=ConflictStrategy.USER_CHOICE,
        conflicts=(ThreeWayConflict("/a", MISSING, 1, 2), ThreeWayConflict("/b", 0, MISSING, None)),
        origin=CLAUDE,
        base_revision=2,
        current_revision=5,
        resolver="dm",
        decisions={"/c": "theirs"},
    )
    record = pending.to_dict()
    assert record == {  # a stored format: this literal must keep loading
        "v": 1,
        "strategy": "user_choice",
        "origin": {"user_id": "bob", "provider": "anthropic"},
        "base_revision": 2,
        "current_revision": 5,
        "resolver": "dm",
        "decisions": {"/c": "theirs"},
        "conflicts": [
            {"path": "/a", "ours": 1, "theirs": 2},
            {"path": "/b", "base": 0, "theirs": None},
        ],
    }
    assert PendingConflict.from_dict(record, {"x": 1}) == pending
    with pytest.raises(DataCorrupted):
        PendingConflict.from_dict({**record, "v": 2}, {})


def test_policies_and_origins_are_checked() -> None:
    with pytest.raises(pydantic.ValidationError, match="fallback"):
        ConflictPolicy(fallback=ConflictStrategy.AUTOMATIC_MERGE)
    with pytest.raises(pydantic.ValidationError, match="user_id, a provider"):
        UpdateOrigin()
    policy = ConflictPolicy.model_validate(
        {"strategy": "provider_priority", "provider_ranking": ["openai"], "fallback": None}
    )
    assert policy.rank(GPT) == 0
    assert policy.rank(ALICE) == policy.rank(None) == 1


def test_choices_must_match_the_conflicts() -> None:
    conflicts = [ThreeWayConflict("/a", 1, 2, 3), ThreeWayConflict("/l/x/v", 1, 2, MISSING)]
    document = {"a": 2, "l": [{"id": "x", "v": 2}]}
    assert apply_choices(document, conflicts, {"/a": "theirs", "/l/x/v": "theirs"}) == {
        "a": 3,
        "l": [{"id": "x"}],
    }
    with pytest.raises(ValidationFailed) as raised:
        apply_choices(document, conflicts, {"/a": "mine", "/z": "ours"})
    assert {i.path for i in raised.value.issues} == {"/a", "/z", "/l/x/v"}
    with pytest.raises(ValidationFailed, match="no longer exists"):
        apply_choices({"a": 2, "l": []}, conflicts, {"/a": "ours", "/l/x/v": "theirs"})


def test_an_item_chosen_back_is_appended() -> None:
    conflicts = [ThreeWayConflict("/l/x", {"id": "x", "v": 1}, MISSING, {"id": "x", "v": 2})]
    document = {"l": [{"id": "y"}]}
    assert apply_choices(document, conflicts, {"/l/x": "theirs"}) == {
        "l": [{"id": "y"}, {"id": "x", "v": 2}]
    }
