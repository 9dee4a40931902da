"""The in-process event bus: the embedded default, and what tests use."""

from __future__ import annotations

from ..errors import UsageError
from ..models import ContextEvent
from ._fanout import ALL, Fanout
from ._subscription import Mailbox, Subscription

__all__ = ["MemoryBus"]


class MemoryBus:
    """Delivers events to the subscribers of this process only.

    Each subscription queues at most `max_pending` items; a subscriber that falls further
    behind gets a `Gap` (reason OVERFLOW) in place of what was queued, so a slow consumer
    never grows memory without limit.
    """

    def __init__(self, *, max_pending: int = 1000) -> None:
        self._fanout = Fanout(max_pending)

    async def publish(self, event: ContextEvent) -> None:
        if self._fanout.closed:
            raise UsageError("the event bus is closed")
        self._fanout.deliver(event.context_id, event)
        self._fanout.deliver(ALL, event)

    async def publish_quiet(self, context_id: str, revision: int | None) -> None:
        """Nothing to do: a process's own caches see its own writes."""
        if self._fanout.closed:
            raise UsageError("the event bus is closed")

    async def subscribe(self, context_id: str) -> Subscription:
        subscription, _ = self._fanout.add(context_id, self._forget)
        return subscription

    async def _forget(self, mailbox: Mailbox) -> None:
        self._fanout.remove(mailbox)

    async def close(self) -> None:
        self._fanout.close()
