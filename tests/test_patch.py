from __future__ import annotations

import copy
from typing import Any

import jsonpatch
import pytest
from hypothesis import given
from hypothesis import strategies as st

from loremaster import ValidationFailed
from loremaster.patch import (
    apply_changes,
    merge_patch_to_json_patch,
    same_json,
    top_level_fields,
)

keys = st.sampled_from(["a", "b", "c", "x/y", "t~1", ""])
scalars = st.none() | st.booleans() | st.integers(-5, 5) | st.text(max_size=3)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(keys, inner, max_size=3),
    max_leaves=10,
)
documents = st.dictionaries(keys, json_values.filter(lambda v: v is not None), max_size=4)
merge_patches = st.dictionaries(keys, json_values, max_size=4)


def rfc7396(target: Any, patch: Any) -> Any:
    """The merge algorithm exactly as RFC 7396 section 2 writes it."""
    if not isinstance(patch, dict):
        return patch
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = rfc7396(result.get(key), value)
    return result


@given(documents, merge_patches)
def test_merge_patch_and_its_json_patch_agree_with_rfc7396(
    doc: dict[str, Any], patch: dict[str, Any]
) -> None:
    expected = rfc7396(doc, patch)
    ops = merge_patch_to_json_patch(doc, patch)
    assert jsonpatch.apply_patch(doc, ops) == expected
    result, recorded = apply_changes(doc, patch)
    assert result == expected
    assert recorded == ops


@given(documents, merge_patches)
def test_recorded_patch_is_empty_exactly_when_nothing_changes(
    doc: dict[str, Any], patch: dict[str, Any]
) -> None:
    ops = merge_patch_to_json_patch(doc, patch)
    assert (ops == []) == same_json(rfc7396(doc, patch), doc)


def test_merge_patch_keeps_sibling_keys() -> None:
    doc = {"shared_state": {"quest": "Dragon's Lair", "gold": 10}}
    result, ops = apply_changes(doc, {"shared_state": {"level": 5, "gold": None}})
    assert result == {"shared_state": {"quest": "Dragon's Lair", "level": 5}}
    assert ops == [
        {"op": "add", "path": "/shared_state/level", "value": 5},
        {"op": "remove", "path": "/shared_state/gold"},
    ]


def test_json_patch_operations_apply_and_are_recorded_as_given() -> None:
    ops = [
        {"op": "test", "path": "/hp", "value": 10},
        {"op": "replace", "path": "/hp", "value": 7},
        {"op": "add", "path": "/inventory/-", "value": "rope"},
    ]
    result, recorded = apply_changes({"hp": 10, "inventory": []}, ops)
    assert result == {"hp": 7, "inventory": ["rope"]}
    assert recorded == ops


@pytest.mark.parametrize(
    "changes",
    [
        [{"op": "replace", "path": "/missing/deep", "value": 1}],
        [{"op": "test", "path": "/hp", "value": 99}],
        [{"op": "explode", "path": "/hp"}],
        [{"path": "/hp"}],
        ["not an op"],
        [{"op": "add", "value": 1}],
        "a string",
        42,
    ],
)
def test_bad_patches_raise_validation_failed_and_leave_the_document(changes: Any) -> None:
    doc = {"hp": 10}
    with pytest.raises(ValidationFailed):
        apply_changes(doc, changes)
    assert doc == {"hp": 10}


def test_top_level_fields_reads_paths_and_from() -> None:
    ops = [
        {"op": "move", "from": "/data/a", "path": "/metadata/b"},
        {"op": "add", "path": "/x~1y/z", "value": 1},
    ]
    assert top_level_fields(ops) == {"data", "metadata", "x/y"}


def test_json_equality_keeps_types_apart() -> None:
    assert same_json({"a": [1, {"b": None}]}, {"a": [1, {"b": None}]})
    assert not same_json(1, True)
    assert not same_json(1, 1.0)
    assert not same_json({"a": 0}, {"a": False})
    assert not same_json([1], [1, 2])


@pytest.mark.parametrize(
    "ops",
    [
        [{"op": "replace", "path": "/data/party/0/hp", "value": 1}],
        [{"op": "add", "path": "/data/party/-", "value": {"hp": 3}}],
        [{"op": "remove", "path": "/data/party/1"}],
        [{"op": "move", "from": "/data/party/0", "path": "/data/fallen"}],
        [
            {"op": "copy", "from": "/data/party", "path": "/data/backup"},
            {"op": "replace", "path": "/data/backup/0/hp", "value": 0},
        ],
        [
            {"op": "add", "path": "/data/new", "value": {"a": {"b": 1}}},
            {"op": "replace", "path": "/data/new/a/b", "value": 2},
        ],
    ],
)
def test_applying_changes_never_touches_the_document_patched(ops: list[dict[str, Any]]) -> None:
    """Only the containers an operation changes are copied; the original, which the new
    document shares everything else with, stays as it was."""
    document = {"title": "t", "data": {"party": [{"hp": 7}, {"hp": 9}], "gold": {"coins": 5}}}
    before = copy.deepcopy(document)
    given = copy.deepcopy(ops)
    result, applied = apply_changes(document, ops)
    assert document == before
    assert ops == given
    assert applied == ops
    if all(op["op"] != "move" for op in ops):  # a move works on a copy of the whole
        assert result["data"]["gold"] is document["data"]["gold"]  # untouched: shared
    assert result == jsonpatch.apply_patch(before, given)


def test_a_move_inside_a_list_leaves_the_document_patched_alone() -> None:
    """A move's removal shifts the indexes under the path it adds to: the copy it works on
    must not share what it changes with the document (a shared row stayed changed while
    the update, seen as "no change", was never written)."""
    document = {"data": {"l": [1, [], []]}}
    ops = [
        {"op": "move", "from": "/data/l/0", "path": "/data/l/1/0"},
        {"op": "add", "path": "/data/l/0", "value": 1},
    ]
    result, applied = apply_changes(document, ops)
    assert document == {"data": {"l": [1, [], []]}}
    assert result == {"data": {"l": [1, [], [1]]}} == jsonpatch.apply_patch(document, ops)
    assert applied == ops


def test_what_a_copy_places_is_checked_where_it_lands_before_later_operations_move_it() -> None:
    deep: dict[str, Any] = {}
    node = deep
    for _ in range(98):
        node["a"] = {}
        node = node["a"]
    document = {"data": {"deep": deep, "l": [0]}}
    ops = [
        {"op": "copy", "from": "/data/deep", "path": "/data/l/0"},
        {"op": "add", "path": "/data/l/0", "value": 0},  # shifts the copy to /data/l/1
    ]
    with pytest.raises(ValidationFailed, match="nested deeper") as caught:
        apply_changes(document, ops)
    assert caught.value.issues[0].path.startswith("/data/l/0/a/a")
