"""Presence: who is connected to a context, when they were last seen, what they view and
whether they are typing. Ephemeral by design: heartbeats with a time to live, outside
the revision sequence and the events table."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

from ..errors import UsageError

__all__ = ["MemoryPresence", "PresenceEntry", "PresenceTracker", "check_ttl"]


@dataclass(frozen=True)
class PresenceEntry:
    """One user present in one context until `expires_at`, unless a heartbeat extends it."""

    user_id: str
    last_seen: datetime
    expires_at: datetime
    viewing: str | None = None
    typing: bool = False


class PresenceTracker(Protocol):
    """Presence of users per context. Every entry expires `ttl` seconds after its last
    heartbeat; a client sends one every third of that, and on every change of what it
    views or whether it types."""

    async def heartbeat(
        self,
        context_id: str,
        user_id: str,
        *,
        viewing: str | None = None,
        typing: bool = False,
        ttl: float | None = None,
    ) -> PresenceEntry:
        """Mark `user_id` present (again) with what they view and whether they type;
        `ttl` overrides the tracker's default for this heartbeat."""

    async def leave(self, context_id: str, user_id: str) -> bool:
        """Forget `user_id` at once; whether they were present."""

    async def members(self, context_id: str) -> list[PresenceEntry]:
        """Everyone present now, by user id."""

    async def close(self) -> None: ...


def check_ttl(ttl: float) -> float:
    if ttl <= 0:
        raise UsageError(f"a presence ttl must be positive, not {ttl}")
    return ttl


class MemoryPresence:
    """Presence kept in this process (the embedded default)."""

    def __init__(self, *, ttl: float = 30.0) -> None:
        self._ttl = check_ttl(ttl)
        self._contexts: dict[str, dict[str, PresenceEntry]] = {}
        self._swept = time.time()

    async def heartbeat(
        self,
        context_id: str,
        user_id: str,
        *,
        viewing: str | None = None,
        typing: bool = False,
        ttl: float | None = None,
    ) -> PresenceEntry:
        now = time.time()
        expires = now + check_ttl(self._ttl if ttl is None else ttl)
        entry = PresenceEntry(user_id, _at(now), _at(expires), viewing, typing)
        self._contexts.setdefault(context_id, {})[user_id] = entry
        if now - self._swept > self._ttl:
            self._swept = now
            for other in list(self._contexts):
                self._prune(other)
        return entry

    async def leave(self, context_id: str, user_id: str) -> bool:
        self._prune(context_id)
        return self._contexts.get(context_id, {}).pop(user_id, None) is not None

    async def members(self, context_id: str) -> list[PresenceEntry]:
        self._prune(context_id)
        return sorted(self._contexts.get(context_id, {}).values(), key=lambda e: e.user_id)

    async def close(self) -> None:
        self._contexts.clear()

    def _prune(self, context_id: str) -> None:
        entries = self._contexts.get(context_id)
        if entries is None:
            return
        now = _at(time.time())
        for user_id in [u for u, e in entries.items() if e.expires_at <= now]:
            del entries[user_id]
        if not entries:
            del self._contexts[context_id]


def _at(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)
