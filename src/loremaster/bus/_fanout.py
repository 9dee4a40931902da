"""The subscribers of each context in this process: one mailbox per subscription."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from ..errors import UsageError
from ..models import ContextEvent
from ._subscription import Gap, Mailbox, Subscription

__all__ = ["ALL", "Fanout"]

ALL = "*"
"""Subscribing to this context id receives the events of every context."""


class Fanout:
    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise UsageError("max_pending must be at least 1")
        self._capacity = capacity
        self.mailboxes: dict[str, set[Mailbox]] = {}
        self.closed = False

    def add(
        self, context_id: str, on_close: Callable[[Mailbox], Awaitable[None]]
    ) -> tuple[Subscription, Mailbox]:
        if self.closed:
            raise UsageError("the event bus is closed")
        mailbox = Mailbox(context_id, self._capacity)
        self.mailboxes.setdefault(context_id, set()).add(mailbox)
        return Subscription(mailbox, on_close), mailbox

    def remove(self, mailbox: Mailbox) -> bool:
        """Forget `mailbox`; True when it was its context's last."""
        others = self.mailboxes.get(mailbox.context_id, set())
        others.discard(mailbox)
        if others:
            return False
        self.mailboxes.pop(mailbox.context_id, None)
        return True

    def deliver(self, context_id: str, item: ContextEvent | Gap) -> None:
        for mailbox in self.mailboxes.get(context_id, ()):
            mailbox.put(item)

    def close(self) -> None:
        self.closed = True
        for mailboxes in self.mailboxes.values():
            for mailbox in mailboxes:
                mailbox.close()
        self.mailboxes.clear()
