"""Three-way merge of JSON documents on leaf paths, and applying per-path choices (pure).

Paths are JSON Pointers. Inside a list merged by identity, a step names the item by its
identity (``/participants/alice/role``), not by its position: positions differ between
versions, identities do not.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal

from ..errors import Issue, ValidationFailed
from ..patch import escape_pointer, same_json

__all__ = [
    "MISSING",
    "Side",
    "ThreeWayConflict",
    "ThreeWayMerge",
    "apply_choices",
    "parse_pointer",
    "three_way_merge",
]

Side = Literal["base", "ours", "theirs"]


class _Missing:
    """The value at a path that does not exist in a version (added, or removed)."""

    def __repr__(self) -> str:
        return "MISSING"

    def __reduce__(self) -> str:
        return "MISSING"  # copy.deepcopy and pickle keep the one instance: tests use `is`


MISSING: Final[Any] = _Missing()


@dataclass(frozen=True)
class ThreeWayConflict:
    """Both sides changed the value at `path`, differently. A side is `MISSING` where that
    version has no value there (the key or item was removed, or never added)."""

    path: str
    base: Any
    ours: Any
    theirs: Any

    def value(self, side: Side) -> Any:
        value: Any = getattr(self, side)
        return value


@dataclass(frozen=True)
class ThreeWayMerge:
    """`merged` holds every change of both sides; at each conflicting path it holds ours."""

    merged: Any
    conflicts: tuple[ThreeWayConflict, ...]

    @property
    def clean(self) -> bool:
        return not self.conflicts


def three_way_merge(
    base: Any, ours: Any, theirs: Any, *, identity_key: str = "id"
) -> ThreeWayMerge:
    """Merge the changes `ours` and `theirs` each made to `base`.

    - A path only one side changed takes that side's value; both sides setting the same
      value is no conflict.
    - Objects merge key by key, recursively.
    - Lists whose items are all objects with a distinct `identity_key` (a string or an
      integer) merge item by item, matched by identity: added, removed and changed items
      of both sides land; order follows the side that reordered, the other side's new
      items placed after their predecessor.
    - Any other list, and any scalar, is a leaf: two different new values conflict.
    """
    merger = _Merger(identity_key)
    merged = merger.merge(base, ours, theirs, "")
    return ThreeWayMerge(merged, tuple(merger.conflicts))


class _Merger:
    def __init__(self, identity_key: str) -> None:
        self.key = identity_key
        self.conflicts: list[ThreeWayConflict] = []

    def merge(self, base: Any, ours: Any, theirs: Any, path: str) -> Any:
        if same_json(ours, theirs):
            return ours
        if same_json(ours, base):
            return theirs
        if same_json(theirs, base):
            return ours
        if isinstance(ours, dict) and isinstance(theirs, dict):
            return self._members(base if isinstance(base, dict) else {}, ours, theirs, path)
        if isinstance(ours, list) and isinstance(theirs, list):
            base_items = _identified(base, self.key) if isinstance(base, list) else {}
            ours_items, theirs_items = _identified(ours, self.key), _identified(theirs, self.key)
            if base_items is not None and ours_items is not None and theirs_items is not None:
                merged = self._members(base_items, ours_items, theirs_items, path)
                order = _order(list(base_items), list(ours_items), list(theirs_items), merged)
                return [merged[token] for token in order]
        self.conflicts.append(ThreeWayConflict(path, base, ours, theirs))
        return ours

    def _members(
        self, base: dict[str, Any], ours: dict[str, Any], theirs: dict[str, Any], path: str
    ) -> dict[str, Any]:
        """Object members, or list items by identity: merged one by one, removed ones left
        out."""
        merged: dict[str, Any] = {}
        for name in [*ours, *(k for k in theirs if k not in ours)]:
            value = self.merge(
                base.get(name, MISSING),
                ours.get(name, MISSING),
                theirs.get(name, MISSING),
                f"{path}/{escape_pointer(name)}",
            )
            if value is not MISSING:
                merged[name] = value
        return merged


def _identified(items: list[Any], key: str) -> dict[str, Any] | None:
    """Items by identity token, in list order; None unless every item has a distinct one."""
    by_id: dict[str, Any] = {}
    for item in items:
        if not isinstance(item, dict) or key not in item:
            return None
        identity = item[key]
        if isinstance(identity, bool) or not isinstance(identity, (str, int)):
            return None
        token = str(identity)
        if token in by_id:
            return None
        by_id[token] = item
    return by_id


def _order(
    base: list[str], ours: list[str], theirs: list[str], present: dict[str, Any]
) -> list[str]:
    """Item order: that of the side that changed the order or the items (ours when both
    did), with the other side's new items each placed after its predecessor there, and
    after the first side's own new items at the same spot."""
    skeleton, other = (theirs, ours) if ours == base else (ours, theirs)
    order = [token for token in skeleton if token in present]
    placed, known = set(order), set(other)
    for index, token in enumerate(other):
        if token in present and token not in placed:
            position = next((order.index(p) + 1 for p in reversed(other[:index]) if p in placed), 0)
            while position < len(order) and order[position] not in known:
                position += 1
            order.insert(position, token)
            placed.add(token)
    return order


def parse_pointer(pointer: str) -> list[str]:
    """The reference tokens of a JSON Pointer ("" is the whole document)."""
    if pointer == "":
        return []
    if not pointer.startswith("/"):
        raise ValidationFailed("invalid JSON Pointer", [Issue(pointer, "must start with /")])
    return [t.replace("~1", "/").replace("~0", "~") for t in pointer[1:].split("/")]


def apply_choices(
    document: Any,
    conflicts: Sequence[ThreeWayConflict],
    choices: Mapping[str, Side],
    *,
    identity_key: str = "id",
) -> Any:
    """`document` with each conflicting path set to the value of the side chosen for it.

    Every conflict needs a choice and every choice a conflict. Choosing a side that has no
    value there removes the key or item; an item that comes back is appended to its list.
    Raises `ValidationFailed` when a choice is missing or unknown, or a path no longer
    leads anywhere in `document`.
    """
    paths = {conflict.path for conflict in conflicts}
    issues = [Issue(p, "no conflict at this path") for p in choices if p not in paths]
    issues += [Issue(p, "no side chosen") for p in sorted(paths - set(choices))]
    issues += [
        Issue(p, f"choose one of base, ours, theirs, not {side!r}")
        for p, side in choices.items()
        if side not in ("base", "ours", "theirs")
    ]
    if issues:
        raise ValidationFailed("the choices do not match the conflicts", issues)
    for conflict in conflicts:
        value = conflict.value(choices[conflict.path])
        document = _replace(
            document, parse_pointer(conflict.path), value, identity_key, conflict.path
        )
    return document


def _replace(node: Any, tokens: list[str], value: Any, key: str, path: str) -> Any:
    """A copy of `node` with the value at `tokens` replaced (MISSING: removed)."""
    if not tokens:
        return value
    head, rest = tokens[0], tokens[1:]
    if isinstance(node, dict):
        if head not in node and rest:
            raise _gone(path)
        copy = dict(node)
        child = _replace(node.get(head, MISSING), rest, value, key, path)
        if child is MISSING:
            copy.pop(head, None)
        else:
            copy[head] = child
        return copy
    if isinstance(node, list):
        index = next(
            (
                i
                for i, item in enumerate(node)
                if isinstance(item, dict) and key in item and str(item[key]) == head
            ),
            None,
        )
        if index is None:
            if rest:
                raise _gone(path)
            return node if value is MISSING else [*node, value]
        items = list(node)
        child = _replace(items[index], rest, value, key, path)
        if child is MISSING:
            del items[index]
        else:
            items[index] = child
        return items
    raise _gone(path)


def _gone(path: str) -> ValidationFailed:
    return ValidationFailed("the document changed", [Issue(path, "this path no longer exists")])
