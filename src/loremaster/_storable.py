"""Whether a caller's value can be stored as JSON, the same on every backend. Pure.

Every value that enters loremaster (a context, a change, a message, a query filter, an id)
is checked here first, so that what no backend could store (or would store as something
else) is refused with `ValidationFailed` naming its JSON pointer, before anything is
written. The walk is iterative: however deep the value, the check itself never recurses.
"""

from __future__ import annotations

import math
import reprlib
from datetime import datetime
from typing import Any

from pydantic import BaseModel

from .errors import Issue, ValidationFailed

__all__ = [
    "MAX_DEPTH",
    "MAX_INT",
    "MIN_INT",
    "check_json",
    "check_text",
    "describe",
    "pointer",
]

MAX_DEPTH = 100
"""Objects and arrays nest at most this deep, counted from the top of the value (a context's
``data`` is already one level inside the context)."""
MIN_INT = -(2**63)
MAX_INT = 2**63 - 1
"""Integers are signed 64-bit: what orjson, SQLite and every JSON reader in between hold."""

_SHORT = reprlib.Repr()
_SHORT.maxstring = _SHORT.maxother = 60


def describe(value: Any) -> str:
    """A short, printable repr of any value, for an error message (never recurses deeply:
    nested containers are cut off after a few levels)."""
    return _printable(_SHORT.repr(value))


def _printable(text: str) -> str:
    """`text` with lone surrogates (which no output can encode) and NUL written as escapes."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8").replace("\x00", "\\u0000")


def pointer(path: str, key: str | int) -> str:
    """The JSON pointer of `key` inside the value at `path` (printable, even for a key
    that is refused)."""
    return f"{path}/{_printable(str(key)).replace('~', '~0').replace('/', '~1')}"


def _refuse(path: str, problem: str, code: str) -> ValidationFailed:
    return ValidationFailed("the value cannot be stored", [Issue(path, problem, code)])


def _text_problem(text: str) -> tuple[str, str] | None:
    if "\x00" in text:
        return "contains a NUL character (\\u0000), which PostgreSQL cannot store", "json.nul"
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            return "contains a lone surrogate (not valid Unicode)", "json.surrogate"
    return None


def check_text(value: Any, path: str) -> str:
    """`value` if it is a string every backend stores as given: valid Unicode, no NUL."""
    if not isinstance(value, str):
        raise _refuse(path, f"must be a string, not {describe(value)}", "json.type")
    problem = _text_problem(value)
    if problem is not None:
        raise _refuse(path, *problem)
    return value


# Where a value sits: its key in its container and the container's place, up to the root
# (whose "key" is the path given). The pointer is only spelled out for an error.
_Where = tuple[Any, "_Where | None"]


def check_json(value: Any, path: str = "", *, depth: int = 0) -> None:
    """Refuse (`ValidationFailed`, with the offending value's JSON pointer) unless `value`
    is storable JSON: objects with string keys, arrays (lists or tuples), strings (valid
    Unicode, no NUL), signed 64-bit integers, finite floats, booleans and null, nested at
    most `MAX_DEPTH` deep. `depth` is how many levels already enclose `value` (where it
    goes in a larger document).

    A pydantic model counts as an object of its fields; a field may also hold a datetime
    (the model serializes it), which arbitrary data may not.
    """
    pending: list[tuple[Any, _Where, int]] = []
    _visit(value, (path, None), depth, pending)
    while pending:
        item, where, level = pending.pop()
        if isinstance(item, dict):
            for key, child in item.items():
                if not isinstance(key, str):
                    problem = f"an object key must be a string, not {describe(key)}"
                    raise _refuse(_pointer(where), problem, "json.key")
                _check_string(key, (key, where), "its key ")
                _visit(child, (key, where), level, pending)
        elif isinstance(item, BaseModel):
            for name in [*type(item).model_fields, *(item.model_extra or {})]:
                child = getattr(item, name)
                if not isinstance(child, datetime):
                    _visit(child, (name, where), level, pending)
        else:
            for index, child in enumerate(item):
                _visit(child, (index, where), level, pending)


_PLAIN = frozenset({str, int, float, bool, type(None), dict, list, tuple})
_BASES = (str, int, float, dict, list, tuple)


def _visit(item: Any, where: _Where, level: int, pending: list[tuple[Any, _Where, int]]) -> None:
    """Check a scalar now; queue a container (one level deeper) for its children."""
    kind: type = type(item)
    if kind not in _PLAIN:  # a subclass (a StrEnum, an IntEnum) is checked as its base
        kind = next((base for base in _BASES if isinstance(item, base)), kind)
    if kind is str:
        _check_string(item, where)
    elif kind is int:
        if not MIN_INT <= item <= MAX_INT:
            raise _refuse(_pointer(where), "an integer beyond signed 64 bits", "json.integer")
    elif kind is float:
        if not math.isfinite(item):
            raise _refuse(_pointer(where), f"{item} is not a finite number", "json.number")
    elif kind is bool or item is None:
        pass
    elif kind in (dict, list, tuple) or isinstance(item, BaseModel):
        if level >= MAX_DEPTH:
            raise _refuse(_pointer(where), f"nested deeper than {MAX_DEPTH} levels", "json.depth")
        pending.append((item, where, level + 1))
    else:
        raise _refuse(_pointer(where), f"{kind.__name__} is not a JSON value", "json.type")


def _check_string(text: str, where: _Where, subject: str = "") -> None:
    if "\x00" in text or not text.isascii():  # else it is fine: the common case, fast
        problem = _text_problem(text)
        if problem is not None:
            raise _refuse(_pointer(where), subject + problem[0], problem[1])


def _pointer(where: _Where) -> str:
    keys: list[Any] = []
    place: _Where | None = where
    while place is not None:
        keys.append(place[0])
        place = place[1]
    path = keys.pop()
    for key in reversed(keys):
        path = pointer(path, key)
    return str(path)
