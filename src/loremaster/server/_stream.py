"""Server-sent events: ``GET /v1/contexts/{id}/events/stream``, one context's changes as
they are committed, resumable after ``Last-Event-ID`` (docs/protocol.md)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Header, Query
from starlette.responses import StreamingResponse

from ..errors import LoremasterError
from ..models import ContextEvent
from ._feed import Ended, Feed, ended_by, event_fields, open_feed, starting_revision
from ._metrics import EVENTS_DELIVERED, SSE_CONNECTIONS
from ._problems import ApiError
from ._service import CallerDep, Service, ServiceDep

__all__ = ["router"]

router = APIRouter(prefix="/v1", tags=["events"])

EVENT_STREAM = "text/event-stream"
CHANGE = "change"
"""The SSE event name of every committed change (its op is in the data)."""
END = "end"
"""The SSE event name of the last message of a stream the server ends."""
KEEP_ALIVE = b": keep-alive\n\n"

_STREAM_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "an endless stream of `change` events, then an `end` event",
        "content": {EVENT_STREAM: {"schema": {"type": "string"}}},
    }
}


def _change(event: ContextEvent) -> bytes:
    data = orjson.dumps(event_fields(event))
    return b"id: %d\nevent: %s\ndata: %s\n\n" % (event.revision, CHANGE.encode(), data)


def _end(reason: str) -> bytes:
    return b"event: %s\ndata: %s\n\n" % (END.encode(), orjson.dumps({"reason": reason}))


def _resume_point(last_event_id: str | None, since_revision: int | None) -> int | None:
    """Where a stream resumes: after ``Last-Event-ID`` (a reconnect), else
    ``since_revision``, else from now (None)."""
    if last_event_id is None:
        return since_revision
    value = last_event_id.strip()
    if not value.isascii() or not value.isdigit() or len(value) > 18:
        raise ApiError(400, "bad_last_event_id", "Last-Event-ID must be a revision")
    return int(value)


@router.get(
    "/contexts/{context_id}/events/stream",
    response_class=StreamingResponse,
    responses=_STREAM_RESPONSES,
)
async def stream_events(
    context_id: str,
    service: ServiceDep,
    caller: CallerDep,
    since_revision: Annotated[int | None, Query(ge=0)] = None,
    last_event_id: Annotated[str | None, Header()] = None,
) -> StreamingResponse:
    """The context's changes as server-sent events: each one ``id: <revision>``,
    ``event: change``, ``data: <event JSON>``, every revision exactly once and in order.
    It starts after ``Last-Event-ID`` (sent by a reconnecting client), else after
    ``since_revision``, else from now; where the event log was trimmed, one ``snapshot``
    event holds the whole context. A comment line keeps the connection alive; the server
    ends the stream with an ``end`` event (``{"reason": ...}``) when the caller loses read
    access or the server shuts down."""
    start = _resume_point(last_event_id, since_revision)
    context_id, after = await starting_revision(service.manager, context_id, caller.user_id, start)
    body = _changes(service, context_id, caller.user_id, after)
    headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    return StreamingResponse(body, media_type=EVENT_STREAM, headers=headers)


async def _changes(
    service: Service, context_id: str, user_id: str | None, after: int
) -> AsyncIterator[bytes]:
    SSE_CONNECTIONS.inc()
    try:
        try:
            feed = await open_feed(service.manager, context_id, user_id, after)
        except LoremasterError as exc:  # the context went away since the request was read
            yield _end(ended_by(exc, context_id).reason)
            return
        try:
            async for chunk in _follow(feed, service.closing, service.settings.sse_keepalive):
                yield chunk
        finally:
            await feed.close()
    finally:
        SSE_CONNECTIONS.dec()


async def _follow(feed: Feed, closing: asyncio.Event, keepalive: float) -> AsyncIterator[bytes]:
    """The feed as SSE messages, a keep-alive comment after `keepalive` quiet seconds,
    until the feed or the server ends."""
    shutdown: asyncio.Future[Any] = asyncio.ensure_future(closing.wait())
    upcoming: asyncio.Future[Any] | None = None
    try:
        while True:
            upcoming = upcoming or asyncio.ensure_future(feed.next())
            done, _ = await asyncio.wait(
                {upcoming, shutdown}, timeout=keepalive, return_when=asyncio.FIRST_COMPLETED
            )
            if upcoming in done:
                try:
                    event = upcoming.result()
                except Ended as end:
                    yield _end(end.reason)
                    return
                upcoming = None
                yield _change(event)
                EVENTS_DELIVERED.labels(transport="sse").inc()
            elif shutdown in done:
                yield _end("shutdown")
                return
            else:
                yield KEEP_ALIVE
    finally:
        for waiting in (upcoming, shutdown):
            if waiting is not None:
                waiting.cancel()
                with contextlib.suppress(asyncio.CancelledError, Ended):
                    await waiting
