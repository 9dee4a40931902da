"""The event bus between processes: Redis Pub/Sub, one channel per context.

Pub/Sub keeps nothing: a message sent while a subscriber is cut off is lost to it. That
is the contract of every bus (the events table is the truth), so the bus only has to say
when it happens: after every reconnect, each subscription receives a `Gap`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from dataclasses import dataclass, field
from typing import Any

from redis.asyncio import ConnectionPool, Redis
from redis.asyncio.connection import AbstractConnection
from redis.asyncio.retry import Retry
from redis.backoff import EqualJitterBackoff, NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from ..errors import BackendUnavailable, UsageError
from ..models import ContextEvent
from ._fanout import ALL, Fanout
from ._subscription import Gap, GapReason, Mailbox, Subscription
from ._wire import pack_event, pack_quiet, unpack_message

__all__ = ["RedisBus", "redis_client"]

log = logging.getLogger("loremaster.bus")

_LOST = (RedisConnectionError, RedisTimeoutError, OSError)


def redis_client(url: str, *, timeout: float, client_name: str | None = None) -> Redis:
    """A client for commands: `timeout` bounds each operation, lost connections are
    retried three times with short jittered backoff. A timeout is not retried: a server
    that did not answer in time (a frozen one) would only take that long again."""
    return Redis.from_url(
        url,
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        client_name=client_name,
        retry=Retry(
            EqualJitterBackoff(cap=0.5, base=0.02), 3, supported_errors=(RedisConnectionError,)
        ),
    )


@dataclass
class _Channel:
    confirmed: bool = False
    waiters: list[asyncio.Future[None]] = field(default_factory=list)
    owed: set[Mailbox] = field(default_factory=set)
    """Mailboxes owed a `Gap` once the channel is subscribed (again)."""


class RedisBus:
    """Delivers events to subscribers in every process connected to the same Redis.

    Channels are ``{prefix}events:{context_id}``; Pub/Sub channels are server-wide, not
    per database, so `prefix` is what keeps deployments sharing a server apart. One
    connection per bus carries every subscription of the process. It reconnects with
    jittered exponential backoff (up to `max_backoff` seconds) and pings after
    `health_interval` seconds of silence, so a dead peer is noticed within twice that.
    Events packed larger than `max_event_bytes` travel as notices (`Gap` of reason
    NOT_SHIPPED with the revision). `timeout` bounds a publish and the wait for a new
    subscription to be confirmed.
    """

    def __init__(
        self,
        url: str,
        *,
        prefix: str = "loremaster:",
        max_pending: int = 1000,
        max_event_bytes: int = 64 * 1024,
        timeout: float = 5.0,
        health_interval: float = 5.0,
        max_backoff: float = 5.0,
        client_name: str = "loremaster-bus",
    ) -> None:
        self._channel_prefix = f"{prefix}events:"
        self._max_event_bytes = max_event_bytes
        self._timeout = timeout
        self._health_interval = health_interval
        self._max_backoff = max_backoff
        self._fanout = Fanout(max_pending)
        self._client = redis_client(url, timeout=timeout, client_name=client_name)
        self._listen_pool: ConnectionPool = ConnectionPool.from_url(
            url,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            client_name=client_name,
            retry=Retry(NoBackoff(), 0),
        )
        self._channels: dict[str, _Channel] = {}
        self._connection: AbstractConnection | None = None
        self._down = False
        self._epoch = 0
        self._listener: asyncio.Task[None] | None = None

    @property
    def connected(self) -> bool:
        """Whether the subscriber connection is up (False before the first subscription)."""
        return self._connection is not None

    @property
    def epoch(self) -> int:
        """How many times the subscriber connection has been lost: a subscriber that has
        handled the `Gap` of the latest loss has heard everything since."""
        return self._epoch

    async def publish(self, event: ContextEvent) -> None:
        await self._publish(event.context_id, pack_event(event, self._max_event_bytes))

    async def publish_quiet(self, context_id: str, revision: int | None) -> None:
        await self._publish(context_id, pack_quiet(revision))

    async def _publish(self, context_id: str, payload: bytes) -> None:
        if self._fanout.closed:
            raise UsageError("the event bus is closed")
        try:
            async with asyncio.timeout(self._timeout):
                await self._client.publish(self._name(context_id), payload)
        except (RedisError, TimeoutError) as exc:
            reason = str(exc) or f"no answer within {self._timeout:g} s"
            raise BackendUnavailable(f"Redis did not take the event: {reason}") from exc

    async def subscribe(self, context_id: str) -> Subscription:
        subscription, mailbox = self._fanout.add(context_id, self._forget)
        channel = self._channels.get(context_id)
        if channel is None:
            channel = self._channels[context_id] = _Channel()
            await self._send(_SUBSCRIBE[context_id == ALL], self._name(context_id))
        if channel.confirmed:
            return subscription
        if self._listener is None:
            self._listener = asyncio.get_running_loop().create_task(self._listen())
        if self._down:
            channel.owed.add(mailbox)
            return subscription
        waiter = asyncio.get_running_loop().create_future()
        channel.waiters.append(waiter)
        try:
            async with asyncio.timeout(self._timeout):
                await waiter
        except TimeoutError:
            channel.owed.add(mailbox)
        except asyncio.CancelledError:
            await subscription.close()
            raise
        return subscription

    async def close(self) -> None:
        if self._fanout.closed:
            return
        self._fanout.close()
        for channel in self._channels.values():
            _release(channel)
        self._channels.clear()
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._listener
        await self._client.aclose()
        await self._listen_pool.disconnect()

    def _name(self, context_id: str) -> str:
        return self._channel_prefix + context_id

    async def _send(self, *command: str) -> None:
        """Send on the subscriber connection, if it is up; if it is not (or breaks), the
        listener subscribes every channel again when it reconnects."""
        connection = self._connection
        if connection is not None:
            with contextlib.suppress(*_LOST):
                await connection.send_command(*command, check_health=False)

    async def _forget(self, mailbox: Mailbox) -> None:
        channel = self._channels.get(mailbox.context_id)
        if channel is not None:
            channel.owed.discard(mailbox)
        if self._fanout.remove(mailbox) and not self._fanout.closed:
            self._channels.pop(mailbox.context_id, None)
            command = "PUNSUBSCRIBE" if mailbox.context_id == ALL else "UNSUBSCRIBE"
            await self._send(command, self._name(mailbox.context_id))

    async def _listen(self) -> None:
        failures = 0
        # Python 3.11's asyncio.wait_for, which redis-py sends with, can swallow the
        # cancellation from `close` (as a frozen server wakes up): the loops check too.
        while not self._fanout.closed:
            connection = self._listen_pool.connection_class(**self._listen_pool.connection_kwargs)
            try:
                await connection.connect()  # type: ignore[no-untyped-call]  # unannotated upstream
                self._connection, self._down = connection, False
                names = [
                    self._name(context_id) for context_id in self._channels if context_id != ALL
                ]
                if names:
                    await connection.send_command("SUBSCRIBE", *names, check_health=False)
                if ALL in self._channels:
                    await connection.send_command("PSUBSCRIBE", self._name(ALL), check_health=False)
                pinged = False
                while not self._fanout.closed:
                    response = await connection.read_response(timeout=self._health_interval)
                    if response is None:
                        if pinged:
                            raise RedisTimeoutError("no answer to PING")
                        await connection.send_command("PING", check_health=False)
                        pinged = True
                    else:
                        pinged, failures = False, 0
                        self._dispatch(response)
            except (RedisError, OSError) as exc:
                log.warning("event bus connection lost (%s); reconnecting", exc)
            except Exception:
                log.exception("event bus listener failed; reconnecting")
            finally:
                self._lost()
                await connection.disconnect(nowait=True)
            failures += 1
            delay = min(self._max_backoff, 0.05 * 2**failures)
            await asyncio.sleep(delay * random.uniform(0.5, 1.0))

    def _lost(self) -> None:
        self._connection, self._down = None, True
        self._epoch += 1
        for context_id, channel in self._channels.items():
            channel.confirmed = False
            channel.owed.update(self._fanout.mailboxes.get(context_id, ()))
            _release(channel)

    def _dispatch(self, response: Any) -> None:
        if not isinstance(response, list) or len(response) < 3:
            return  # the answer to a PING
        kind, name = response[0], response[1].decode()
        if not name.startswith(self._channel_prefix):
            return
        context_id = name.removeprefix(self._channel_prefix)
        if kind == b"pmessage" and len(response) == 4:
            published = response[2].decode().removeprefix(self._channel_prefix)
            self._fanout.deliver(ALL, unpack_message(published, response[3]))
        elif kind == b"message" and context_id in self._fanout.mailboxes:
            item = unpack_message(context_id, response[2])
            if not (isinstance(item, Gap) and item.reason is GapReason.QUIET):
                self._fanout.deliver(context_id, item)
        elif kind in (b"subscribe", b"psubscribe"):
            channel = self._channels.get(context_id)
            if channel is not None:
                channel.confirmed = True
                _release(channel)
                for mailbox in channel.owed:
                    mailbox.put(Gap(context_id, GapReason.RECONNECT))
                channel.owed.clear()


_SUBSCRIBE = {False: "SUBSCRIBE", True: "PSUBSCRIBE"}


def _release(channel: _Channel) -> None:
    for waiter in channel.waiters:
        if not waiter.done():
            waiter.set_result(None)
    channel.waiters.clear()
