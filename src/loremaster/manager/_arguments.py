"""Checking a caller's arguments before anything is read or written: each bad one is a
`ValidationFailed` naming it."""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping, Sequence
from typing import Any

from pydantic import ValidationError as PydanticValidationError

from .._storable import check_json, check_text, describe, pointer
from ..document import canonical_id, validation_failed
from ..errors import Issue, ValidationFailed
from ..models import UpdateOrigin
from ..storage import search_words

__all__ = [
    "LONGEST_LOCK",
    "branch_name",
    "count",
    "listed",
    "lock_token",
    "lock_tokens",
    "member",
    "origin",
    "search_text",
    "seconds",
    "text",
    "user",
]

LONGEST_LOCK = 366 * 24 * 3600.0
_BRANCH_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/-]{0,99}")
# A search's bounds. Each word is one more condition to match: 500 took SQLite 17 seconds,
# and near 100,000 PostgreSQL's query parser runs out of stack.
_SEARCH_MAX_CHARS = 1000
_SEARCH_MAX_WORDS = 32
_LARGEST = 2**62


def count(value: Any, name: str, *, lowest: int = 0, highest: int = _LARGEST - 1) -> int:
    """`value` if it is a whole number storage can hold, from `lowest` to `highest`."""
    if isinstance(value, bool) or not isinstance(value, int) or not lowest <= value <= highest:
        bound = f"from {lowest}" if highest == _LARGEST - 1 else f"between {lowest} and {highest}"
        raise ValidationFailed(
            f"{name} must be a whole number {bound}", [Issue(f"/{name}", describe(value))]
        )
    return value


def text(value: Any, name: str) -> str:
    """`value` if it is text every backend stores as given (see `check_text`)."""
    return check_text(value, f"/{name}")


def user(user_id: Any) -> str | None:
    """A user id is None (trusted) or text."""
    return None if user_id is None else check_text(user_id, "/user_id")


def member(user_id: Any) -> str:
    """A named user (who joins a room, or holds a lock): non-empty text."""
    if not isinstance(user_id, str) or not user_id:
        raise ValidationFailed(
            "a user id is a non-empty text", [Issue("/user_id", describe(user_id))]
        )
    return check_text(user_id, "/user_id")


def lock_token(value: Any, user_id: str | None) -> int | None:
    """A fencing token (None: none given), given with the user who holds the lock."""
    if value is None:
        return None
    token = count(value, "lock_token")
    _holder_named(user_id, "lock_token")
    return token


def lock_tokens(value: Any, user_id: str | None, context_ids: Collection[str]) -> dict[str, int]:
    """Fencing tokens by context (None: none given), each context one of `context_ids`."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ValidationFailed(
            "lock_tokens maps context ids to tokens", [Issue("/lock_tokens", describe(value))]
        )
    tokens: dict[str, int] = {}
    for given_id, token in value.items():
        context_id = canonical_id(given_id)
        if context_id not in context_ids:
            raise ValidationFailed(
                "lock_tokens names a context the batch does not write",
                [Issue(pointer("/lock_tokens", context_id), "not in the batch")],
            )
        tokens[context_id] = count(token, f"lock_tokens/{context_id}")
    if tokens:
        _holder_named(user_id, "lock_tokens")
    return tokens


def _holder_named(user_id: str | None, name: str) -> None:
    """A token is the lock holder's: refused without a user."""
    if user_id is None:
        raise ValidationFailed(
            f"{name} is given with the user_id of the lock's holder",
            [Issue(f"/{name}", "given without a user_id")],
        )


def listed(value: Any, name: str) -> tuple[str, ...]:
    """A list of texts, without repeats, in order."""
    if isinstance(value, str) or not isinstance(value, Sequence):
        raise ValidationFailed(f"{name} is a list of texts", [Issue(f"/{name}", describe(value))])
    return tuple(dict.fromkeys(text(item, name) for item in value))


def seconds(value: Any, name: str) -> float:
    """A number of seconds above 0, at most a year."""
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    if not number or not 0 < value <= LONGEST_LOCK:
        raise ValidationFailed(
            f"{name} is a number of seconds above 0, at most a year",
            [Issue(f"/{name}", describe(value))],
        )
    return float(value)


def branch_name(name: Any) -> str:
    if name == "main" or not _BRANCH_NAME.fullmatch(text(name, "name")):
        raise ValidationFailed(
            "a branch name is 1-100 letters, digits, '.', '_', '/' or '-', not main",
            [Issue("/branch", name, "branch_name")],
        )
    return str(name)


def search_text(value: Any) -> str:
    """Search text is not stored: any characters go (only its words count), within bounds."""
    if (
        not isinstance(value, str)
        or len(value) > _SEARCH_MAX_CHARS
        or len(search_words(value)) > _SEARCH_MAX_WORDS
    ):
        raise ValidationFailed(
            f"a search is a text of at most {_SEARCH_MAX_CHARS} characters and "
            f"{_SEARCH_MAX_WORDS} words",
            [Issue("/text", describe(value))],
        )
    return value


def origin(given: UpdateOrigin | Mapping[str, Any] | None, user_id: str | None) -> UpdateOrigin:
    if isinstance(given, UpdateOrigin):
        return given
    if given is not None and not isinstance(given, Mapping):
        raise ValidationFailed(
            "origin is an UpdateOrigin or a dict", [Issue("/origin", describe(given))]
        )
    try:
        parsed = UpdateOrigin.model_validate({"user_id": user_id or "system", **(given or {})})
    except PydanticValidationError as exc:
        raise validation_failed("invalid origin", exc) from exc
    check_json(parsed, "/origin")
    return parsed
