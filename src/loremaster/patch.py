"""Changes to JSON documents: RFC 7396 merge patches and RFC 6902 JSON Patches.

Every change loremaster commits is recorded as the RFC 6902 JSON Patch it applied (readable
by the ``jsonpatch`` library); a merge patch is first turned into the equivalent JSON Patch.
Pure functions, no I/O.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import Any

import jsonpatch
import jsonpointer
import orjson

from ._storable import check_json, describe
from .errors import DataCorrupted, Issue, ValidationFailed

__all__ = [
    "JsonPatch",
    "apply_changes",
    "apply_stored_patch",
    "check_changes",
    "escape_pointer",
    "merge_patch_to_json_patch",
    "same_document",
    "same_json",
    "top_level_fields",
]

JsonPatch = list[dict[str, Any]]

_OPS = {"add", "remove", "replace", "move", "copy", "test"}


def escape_pointer(key: str) -> str:
    return key.replace("~", "~0").replace("/", "~1")


def same_json(a: Any, b: Any) -> bool:
    """JSON equality: unlike ==, true is not 1 and 1.0 is not 1 (they serialize apart).
    Subtrees two documents share (the same object) are equal without a look inside."""
    if a is b:
        return True
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same_json(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(same_json(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


def same_document(a: Any, b: Any) -> bool:
    """`same_json`, compared as serialized JSON where it can be (far faster on large
    documents that share nothing)."""
    try:
        return orjson.dumps(a, option=orjson.OPT_SORT_KEYS) == orjson.dumps(
            b, option=orjson.OPT_SORT_KEYS
        )
    except TypeError:  # beyond what orjson writes (a 65-bit integer): compare in Python
        return same_json(a, b)


def _without_nulls(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _without_nulls(v) for k, v in value.items() if v is not None}
    return value


def merge_patch_to_json_patch(
    target: Mapping[str, Any], patch: Mapping[str, Any], prefix: str = ""
) -> JsonPatch:
    """The JSON Patch that does what merge patch `patch` does to `target`.

    No-op entries (removing a missing key, setting a value it already has) produce no
    operation, so an empty result means the merge patch changes nothing.
    """
    ops: JsonPatch = []
    for key, value in patch.items():
        path = f"{prefix}/{escape_pointer(key)}"
        present = key in target
        if value is None:
            if present:
                ops.append({"op": "remove", "path": path})
        elif isinstance(value, Mapping) and present and isinstance(target[key], Mapping):
            ops.extend(merge_patch_to_json_patch(target[key], value, path))
        else:
            new = _without_nulls(value)
            if not present:
                ops.append({"op": "add", "path": path, "value": new})
            elif not same_json(target[key], new):
                ops.append({"op": "replace", "path": path, "value": new})
    return ops


def _check_operations(ops: Sequence[Any]) -> JsonPatch:
    checked: JsonPatch = []
    for index, op in enumerate(ops):
        if not isinstance(op, Mapping) or op.get("op") not in _OPS:
            raise ValidationFailed(
                "invalid JSON Patch",
                [Issue(f"/{index}", f"not an operation with op in {sorted(_OPS)}: {describe(op)}")],
            )
        if not isinstance(op.get("path"), str):
            raise ValidationFailed("invalid JSON Patch", [Issue(f"/{index}/path", "missing")])
        checked.append(dict(op))
    return checked


_NOT_CHANGES = "changes must be a merge patch (dict) or a JSON Patch (list of operations)"


def check_changes(changes: Any) -> None:
    """Refuse (`ValidationFailed`) what is not a merge patch or a JSON Patch of storable
    JSON (see `check_json`). A JSON Patch value is checked at the depth its path puts it
    in the document, so that neither kind of change can nest deeper than the other."""
    if isinstance(changes, Mapping):
        check_json(dict(changes))
    elif isinstance(changes, (list, tuple)):
        for index, op in enumerate(_check_operations(changes)):
            check_json({key: v for key, v in op.items() if key != "value"}, f"/{index}")
            if "value" in op:
                check_json(op["value"], f"/{index}/value", depth=op["path"].count("/"))
    else:
        raise ValidationFailed(_NOT_CHANGES, [Issue("", f"got {describe(changes)}")])


def apply_changes(
    document: dict[str, Any], changes: Mapping[str, Any] | Sequence[Any]
) -> tuple[dict[str, Any], JsonPatch]:
    """Apply a merge patch (a mapping) or a JSON Patch (a list) to a copy of `document`.

    Returns the new document and the JSON Patch that was applied; the patch is empty when
    nothing changed (a merge patch setting what is already there, a replace with the same
    value).
    """
    if isinstance(changes, Mapping):
        ops = merge_patch_to_json_patch(document, changes)
    elif isinstance(changes, Sequence) and not isinstance(changes, (str, bytes)):
        ops = _check_operations(changes)
    else:
        raise ValidationFailed(_NOT_CHANGES)
    if not ops:
        return document, ops
    # Only the containers an operation changes are copied (the rest stays shared with
    # `document`), except for a move: its removal shifts list indexes under the path it
    # adds to, so a patch with one works on a copy of the whole.
    moving = any(op["op"] == "move" for op in ops)
    result: Any = copy.deepcopy(document) if moving else dict(document)
    copied = {id(result)}
    try:
        for op in ops:
            if not moving:
                _copy_parents(result, op["path"], copied)
            result = jsonpatch.JsonPatch([op]).apply(result, in_place=True)
            if op["op"] in ("copy", "move"):
                _check_placed(result, op["path"])
    except (
        jsonpatch.JsonPatchException,
        jsonpointer.JsonPointerException,
        KeyError,
        TypeError,
        ValueError,
    ) as exc:
        raise ValidationFailed("the patch does not apply", [Issue("", str(exc))]) from exc
    if not isinstance(result, dict):
        raise ValidationFailed("the patch must leave an object", [Issue("", "root replaced")])
    if same_json(result, document):
        return document, []  # a patch that changes nothing is no change
    return result, ops


def _check_placed(document: Any, path: str) -> None:
    """Refuse (`ValidationFailed`) unless what a copy or a move just put at `path` is
    storable JSON at the depth it now sits: it may nest deeper than anything the
    operations held (their values are checked with `check_changes`)."""
    tokens = jsonpointer.JsonPointer(path).parts
    node: Any = document
    for token in tokens:
        if isinstance(node, list):
            node = node[-1] if token == "-" else node[int(token)]
        else:
            node = node[token]
    check_json(node, path, depth=len(tokens))


def _copy_parents(document: Any, path: str, copied: set[int]) -> None:
    """Copy the containers on the way to `path`'s parent, so that applying the operation
    in place changes the copies and never `document`'s originals (which it shares with
    the document patched): only what an operation touches is copied, not the whole."""
    node = document
    for token in jsonpointer.JsonPointer(path).parts[:-1]:
        if isinstance(node, dict) and token in node:
            key: Any = token
        elif isinstance(node, list) and token.isdigit() and int(token) < len(node):
            key = int(token)
        else:
            return  # the operation fails on its own, with jsonpatch's message
        child = node[key]
        if isinstance(child, (dict, list)) and id(child) not in copied:
            child = dict(child) if isinstance(child, dict) else list(child)
            node[key] = child
            copied.add(id(child))
        node = child


def top_level_fields(ops: JsonPatch) -> set[str]:
    """The top-level keys that a JSON Patch reads from or writes to ("" for the root)."""
    fields: set[str] = set()
    for op in ops:
        for pointer in (op["path"], op.get("from")):
            if isinstance(pointer, str):
                first = pointer.split("/", 2)[1] if pointer.startswith("/") else ""
                fields.add(first.replace("~1", "/").replace("~0", "~"))
    return fields


def apply_stored_patch(document: dict[str, Any], patch: JsonPatch) -> dict[str, Any]:
    """A stored patch (a version's, an event's) applied to `document`, which it may change
    in place; one that does not apply means the stored data is damaged."""
    try:
        result = jsonpatch.JsonPatch(patch).apply(document, in_place=True)
    except (jsonpatch.JsonPatchException, jsonpatch.JsonPointerException) as exc:
        raise DataCorrupted(f"a stored patch does not apply: {exc}") from exc
    if not isinstance(result, dict):
        raise DataCorrupted("a stored patch does not yield a document")
    return result
