"""What a recorded client records into, and how one call is timed, read and handed over:
the part every provider's wrapper shares."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractContextManager
from typing import Any, Literal, Protocol, TypeVar

from ..errors import CallNotRecorded, Issue, ValidationFailed
from ..models import RecordedCall
from ._facts import Finished, Reply, Request, Timing, call_record
from ._ports import Translator
from ._store import SentMessages
from ._tap import StreamTap

__all__ = [
    "FAILED",
    "CallRecorder",
    "CallSink",
    "OnRecordError",
    "check_on_record_error",
    "cost_of",
    "record_failure",
    "record_plain",
    "record_stream",
]

log = logging.getLogger("loremaster.calls")

R = TypeVar("R")
OnRecordError = Literal["log", "raise"]


class CallSink(Protocol):
    """Stores what a call brought (the manager): the request's new messages and the reply
    in one change, or a failed call's record alone."""

    async def record(
        self, recorder: CallRecorder, finished: Finished, call: dict[str, Any]
    ) -> RecordedCall: ...


class CallRecorder:
    """Where a recorded client's calls go: a context, a branch, a user. `branch` follows
    the calls: after a request whose history departed from the stored one, it names the
    new branch that call started. `last` is the latest call's outcome."""

    def __init__(
        self,
        sink: CallSink,
        translator: Translator,
        measure: Callable[[str], AbstractContextManager[None]],
        context_id: str,
        *,
        user_id: str | None,
        branch: str,
        on_record_error: OnRecordError,
    ) -> None:
        self.context_id = context_id
        self.user_id = user_id
        self.branch = branch
        self.on_record_error: OnRecordError = on_record_error
        self.last: RecordedCall | None = None
        self.sent = SentMessages()
        """Its requests' messages, read (see `SentMessages`)."""
        self._sink = sink
        self._translator = translator
        self._measure = measure
        self._lock = asyncio.Lock()  # one call recorded at a time: each sees the one before

    async def finished(
        self, request: Request, build: Callable[[], Finished], response: Any = None
    ) -> None:
        """Record a call that ended (`build` reads it); a failure to record is logged and
        counted (operation ``record_call`` of the statistics), or raised as
        `CallNotRecorded` with ``on_record_error="raise"`` — never for a call that failed
        itself, whose own error the caller gets."""
        async with self._lock:
            try:
                with self._measure("record_call"):
                    finished = build()
                    call = call_record(finished, cost_of(finished, self._translator))
                    self.last = await self._sink.record(self, finished, call)
            except Exception as exc:
                self._not_recorded(request, exc)
                if self.on_record_error == "raise" and response is not FAILED:
                    raise CallNotRecorded(
                        f"the call was answered but not recorded: {exc}", response
                    ) from exc
                return
            self.branch = self.last.branch

    def _not_recorded(self, request: Request, error: Exception) -> None:
        log.warning(
            "a %s call was not recorded into context %s: %s",
            request.provider.value,
            self.context_id,
            error,
        )
        self.last = RecordedCall(
            context_id=self.context_id,
            branch=self.branch,
            provider=request.provider,
            model=request.model,
            call={},
            recorded=False,
            record_error=f"{type(error).__name__}: {error}",
        )


FAILED: Any = object()
"""The response of a call that failed: recording it never raises."""


def cost_of(finished: Finished, translator: Translator) -> float | None:
    """What the call cost at the registry's prices (None: no usage, or no price)."""
    reply = finished.reply
    if reply is None or reply.usage is None:
        return None
    model = translator.model(finished.request.provider, finished.request.model)
    if not model.known:
        return None
    usage = reply.usage
    return model.cost_usd(
        usage.input_tokens, usage.output_tokens, usage.cache_read or 0, usage.cache_creation or 0
    )


def check_on_record_error(value: Any) -> OnRecordError:
    if value not in ("log", "raise"):
        raise ValidationFailed(
            'on_record_error is "log" or "raise"', [Issue("/on_record_error", repr(value))]
        )
    return value  # type: ignore[no-any-return]


async def record_failure(
    recorder: CallRecorder, request: Request, started: float, error: BaseException
) -> None:
    """Record a call that failed before anything of its answer came."""
    failed = Finished(
        request, Timing(started, time.perf_counter()), error=error, request_id=_request_id(error)
    )
    await recorder.finished(request, lambda: failed, FAILED)


async def record_plain(
    recorder: CallRecorder,
    request: Request,
    send: Callable[[], Awaitable[R]],
    read: Callable[[R], tuple[Reply, str | None]],
) -> R:
    """Send a request whose response comes whole, record it, return the response. `read`
    gives the reply and the provider's request id."""
    started = time.perf_counter()
    try:
        response = await send()
    except Exception as exc:
        await record_failure(recorder, request, started, exc)
        raise
    timing = Timing(started, time.perf_counter())

    def answered() -> Finished:
        reply, request_id = read(response)
        return Finished(request, timing, reply, request_id=request_id)

    await recorder.finished(request, answered, response)
    return response


def record_stream(
    recorder: CallRecorder,
    request: Request,
    started: float,
    source: AsyncIterator[Any],
    read: Callable[[list[Any]], Reply],
    *,
    request_id: str | None = None,
    hidden: Callable[[Any], bool] | None = None,
) -> tuple[StreamTap, AsyncIterator[Any]]:
    """Watch a stream; once it ends, record what arrived. Returns the tap and the stream
    to hand the caller in place of `source`."""

    async def ended(tap: StreamTap, error: BaseException | None, partial: bool) -> None:
        if error is not None and not tap.items:  # nothing came: the call failed
            await record_failure(recorder, request, started, error)
            return
        timing = Timing(started, time.perf_counter(), tap.first_at)

        def arrived() -> Finished:
            reply = read(tap.items)
            cut = partial and not reply.complete
            return Finished(request, timing, reply, error, cut, request_id)

        await recorder.finished(request, arrived)

    tap = StreamTap(ended, hidden)
    return tap, tap.watch(source)


def _request_id(error: BaseException) -> str | None:
    found = getattr(error, "request_id", None)
    return found if isinstance(found, str) else None
