"""What every event bus does."""

from __future__ import annotations

from typing import Protocol

from ..models import ContextEvent
from ._subscription import Subscription

__all__ = ["EventBus"]


class EventBus(Protocol):
    """Carries committed events between the writers and the subscribers of a context.

    A bus is transport, not storage: the events table is the truth, and a subscriber that
    receives a `Gap` refills from it. Within one subscription, the events of one
    publisher arrive in the order published.
    """

    async def publish(self, event: ContextEvent) -> None:
        """Send `event` to every subscriber of its context. Call it after the commit.
        Raises `BackendUnavailable` when the transport cannot take it; the event is
        committed all the same, and subscribers find it in the table."""

    async def publish_quiet(self, context_id: str, revision: int | None) -> None:
        """Tell the `ALL` subscribers of every process (their row caches) that a context
        changed at `revision` without its event being announced, or (None) is gone. Raises
        `BackendUnavailable` as `publish` does."""

    async def subscribe(self, context_id: str) -> Subscription:
        """Subscribe to the events of one context (of every context with `ALL`). When
        this returns, every event published afterwards reaches the subscription, or a
        `Gap` does."""

    async def close(self) -> None:
        """Stop: every subscription ends, and the bus cannot be used again."""
