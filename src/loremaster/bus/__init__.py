"""The event bus: committed events, from the process that wrote them to every subscriber.

    from loremaster.bus import MemoryBus

    bus = MemoryBus()                         # in-process; RedisBus(url) between processes
                                              # (WatchedBus: one SQLite file's processes)
    async with await bus.subscribe(context_id) as subscription:
        async for item in subscription:       # a ContextEvent, or a Gap: refill from the table
            ...

A bus is transport, not storage: `loremaster.sync.follow` turns a subscription plus the
events table into every revision exactly once, in order.
"""

from ._fanout import ALL
from ._protocol import EventBus
from ._subscription import Gap, GapReason, Subscription
from .memory import MemoryBus
from .redis import RedisBus, redis_client
from .watched import CommitFeed, LoadEvents, WatchedBus

__all__ = [
    "ALL",
    "CommitFeed",
    "EventBus",
    "Gap",
    "GapReason",
    "LoadEvents",
    "MemoryBus",
    "RedisBus",
    "Subscription",
    "WatchedBus",
    "redis_client",
]
