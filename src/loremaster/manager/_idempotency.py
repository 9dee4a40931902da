"""Idempotency keys kept in the database, so that whichever process of a server a retried
request reaches, it is answered as the first one was, and never written twice.

    claim -> None: the caller owns the key; it does the work, then `finish`es (or, having
             written nothing, `release`s) it
          -> StoredResponse: the first request's answer, to replay
          -> IdempotencyInProgress / IdempotencyMismatch
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .._storable import check_text, describe, pointer
from ..errors import IdempotencyInProgress, IdempotencyMismatch, Issue, ValidationFailed
from . import _arguments as arg
from ._opened import OnStorage

__all__ = ["KEY_SECONDS", "Idempotency", "StoredResponse"]

KEY_SECONDS = 86_400.0
"""How long a key lasts after its claim."""
_KEY = re.compile(r"[\x20-\x7e]{1,255}")
_LONGEST_AGE = 100 * 366 * 86_400.0


@dataclass(frozen=True, slots=True)
class StoredResponse:
    """The answer to replay for a request that already ran."""

    status: int
    body: bytes
    headers: dict[str, str]


class Idempotency(OnStorage):
    """Idempotency keys, per user, shared by every process on the database."""

    async def claim(self, user_id: str, key: str, fingerprint: str) -> StoredResponse | None:
        """None: the caller owns the key now and must `finish` or `release` it.
        A StoredResponse: the first request's answer, to replay.
        Raises IdempotencyInProgress (409) while another request holds the key unfinished,
        IdempotencyMismatch (422) when the key was used with a different fingerprint."""
        user_id, key = _owned(user_id, key)
        arg.text(fingerprint, "fingerprint")
        found = await self._storage.claim_idempotency_key(
            user_id, key, fingerprint, ttl=KEY_SECONDS
        )
        if found.claimed:
            return None
        if found.fingerprint != fingerprint:
            raise IdempotencyMismatch(key)
        if found.status is None:
            raise IdempotencyInProgress(key)
        return StoredResponse(found.status, found.body, found.headers)

    async def finish(self, user_id: str, key: str, response: StoredResponse) -> None:
        """Keep `response` as the key's answer until the key expires. Only a claim not yet
        finished takes one: a second `finish` (or one after `release`) changes nothing."""
        user_id, key = _owned(user_id, key)
        _check_response(response)
        await self._storage.finish_idempotency_key(
            user_id,
            key,
            status=response.status,
            body=response.body,
            headers=response.headers,
        )

    async def release(self, user_id: str, key: str) -> None:
        """Forget an unfinished claim (the request failed without writing), so a retry runs.
        A finished key keeps its answer."""
        await self._storage.release_idempotency_key(*_owned(user_id, key))

    async def purge(self, older_than_seconds: float = KEY_SECONDS) -> int:
        """Delete the keys claimed more than `older_than_seconds` ago, finished or not;
        how many. Retention does this for expired keys on every pass."""
        return await self._storage.purge_idempotency_keys(_age(older_than_seconds), dry_run=False)


def _owned(user_id: Any, key: Any) -> tuple[str, str]:
    """A user's key: a named user, and 1 to 255 printable ASCII characters."""
    if not isinstance(key, str) or not _KEY.fullmatch(key):
        raise ValidationFailed(
            "an idempotency key is 1 to 255 printable ASCII characters",
            [Issue("/key", describe(key))],
        )
    return arg.member(user_id), key


def _check_response(response: Any) -> None:
    if not isinstance(response, StoredResponse):
        raise ValidationFailed(
            "response is a StoredResponse", [Issue("/response", describe(response))]
        )
    arg.count(response.status, "status", lowest=100, highest=599)
    if not isinstance(response.body, bytes):
        raise ValidationFailed("body is bytes", [Issue("/body", describe(response.body))])
    if not isinstance(response.headers, Mapping):
        raise ValidationFailed(
            "headers map names to values", [Issue("/headers", describe(response.headers))]
        )
    for name, value in response.headers.items():
        check_text(name, "/headers")
        check_text(value, pointer("/headers", name))


def _age(value: Any) -> float:
    """A number of seconds, from 0 to a century."""
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    if not number or not 0 <= value <= _LONGEST_AGE:
        raise ValidationFailed(
            "older_than_seconds is a number of seconds from 0 to a century",
            [Issue("/older_than_seconds", describe(value))],
        )
    return float(value)
