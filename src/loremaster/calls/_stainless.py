"""Recording the calls of the SDKs Anthropic and OpenAI generate alike: each resource posts
through ``self._post``; the recorded resource posts through a function that records the
calls to the endpoints it knows and passes every other request on untouched."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from ._facts import Reply, Request
from ._recorder import CallRecorder, record_failure, record_plain, record_stream

__all__ = ["Outgoing", "Route", "recording_post", "rewrapping_copy"]

_RAW_RESPONSE_HEADER = "X-Stainless-Raw-Response"

Post = Callable[..., Awaitable[Any]]


@dataclass(frozen=True, slots=True)
class Outgoing:
    """A request about to be sent: as recorded, the body to send (the application's, or
    changed: OpenAI streams are asked for their usage), and which of the stream's items
    the application did not ask for and is not shown."""

    request: Request
    body: Mapping[str, Any]
    hidden: Callable[[Any], bool] | None = None


class Route(Protocol):
    """One recorded endpoint: how its requests, responses and streams read."""

    request_id_header: str

    def outgoing(self, body: Mapping[str, Any]) -> Outgoing: ...

    def read(self, response: Any) -> tuple[Reply, str | None]:
        """The reply and the request id of a whole response."""

    def read_stream(self, items: list[Any]) -> Reply:
        """The reply that a stream's items (all, or those that came) make."""


def recording_post(recorder: CallRecorder, post: Post, routes: Mapping[str, Route]) -> Post:
    """`post`, recording the calls to the paths of `routes`. A request for the raw HTTP
    response (``with_raw_response``) is passed on unrecorded."""

    async def recorded_post(
        path: str, *, body: Any = None, stream: bool = False, **rest: Any
    ) -> Any:
        route = routes.get(path)
        if route is None or not isinstance(body, Mapping) or _raw(rest.get("options")):
            return await post(path, body=body, stream=stream, **rest)
        outgoing = route.outgoing(body)

        def send() -> Awaitable[Any]:
            return post(path, body=outgoing.body, stream=stream, **rest)

        if not stream:
            return await record_plain(recorder, outgoing.request, send, route.read)
        return await _record_streamed(recorder, route, outgoing, send)

    return recorded_post


def _raw(options: Any) -> bool:
    headers = options.get("headers") if isinstance(options, Mapping) else None
    return isinstance(headers, Mapping) and bool(headers.get(_RAW_RESPONSE_HEADER))


async def _record_streamed(
    recorder: CallRecorder, route: Route, outgoing: Outgoing, send: Callable[[], Awaitable[Any]]
) -> Any:
    """Open the stream and watch it (its iterator and its ``close``): the SDK's own
    stream object goes back to the application."""
    started = time.perf_counter()
    try:
        stream = await send()
    except Exception as exc:
        await record_failure(recorder, outgoing.request, started, exc)
        raise
    tap, watched = record_stream(
        recorder,
        outgoing.request,
        started,
        stream._iterator,
        route.read_stream,
        request_id=stream.response.headers.get(route.request_id_header),
        hidden=outgoing.hidden,
    )
    close = stream.close

    async def closing() -> None:
        await tap.end(None, partial=True)
        await close()

    vars(stream).update(_iterator=watched, close=closing)
    return stream


class _Copying(Protocol):
    def copy(self, **options: Any) -> Any: ...


def rewrapping_copy(client: _Copying, copy: Callable[..., Any], wrap: Callable[[Any], Any]) -> None:
    """Make the recorded client's ``copy`` and ``with_options`` give recorded clients too
    (the SDK's would make fresh resources that record nothing)."""

    def recorded_copy(**options: Any) -> Any:
        return wrap(copy(**options))

    vars(client).update(copy=recorded_copy, with_options=recorded_copy)
