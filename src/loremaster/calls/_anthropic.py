"""Anthropic's SDK: ``AsyncAnthropic.messages`` recorded (``create``, plain and streamed,
``stream`` and ``parse`` all post to ``/v1/messages``), and the calls `complete` makes."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import AsyncIterator, Mapping
from typing import Any

import anthropic
import orjson
from anthropic.resources.messages import AsyncMessages

from ..errors import Issue, ValidationFailed
from ..models import ProviderType
from ._facts import Reply, Request, Usage
from ._recorder import CallRecorder
from ._stainless import Outgoing, recording_post, rewrapping_copy
from ._store import SentMessages
from ._wire import WireJson, listed, transient

__all__ = [
    "PROVIDER",
    "check",
    "is_transient",
    "open_stream",
    "read_stream",
    "request_body",
    "wrap",
]

PROVIDER = ProviderType.ANTHROPIC
_OMITTED = (anthropic.NotGiven, anthropic.Omit)
_SETTINGS = {
    "max_tokens": "max_tokens",
    "temperature": "temperature",
    "top_p": "top_p",
    "top_k": "top_k",
    "stop_sequences": "stop_sequences",
}


def check(client: Any) -> None:
    """Refuse what is not an `anthropic.AsyncAnthropic` (the synchronous client above all)."""
    if isinstance(client, anthropic.Anthropic):
        raise _refused("anthropic.Anthropic is synchronous: use an anthropic.AsyncAnthropic")
    if not isinstance(client, anthropic.AsyncAnthropic):
        raise _refused(f"{type(client).__name__} is not an anthropic.AsyncAnthropic")


def wrap(client: Any, recorder: CallRecorder) -> Any:
    check(client)
    recorder.sent = SentMessages(WireJson(_OMITTED))
    copy = client.copy
    wrapped = copy()
    messages = AsyncMessages(wrapped)
    route = _Messages(recorder.sent.json)
    vars(messages)["_post"] = recording_post(recorder, wrapped.post, {"/v1/messages": route})
    vars(wrapped).update(messages=messages, loremaster=recorder)
    rewrapping_copy(wrapped, copy, lambda fresh: wrap(fresh, recorder))
    return wrapped


def _refused(why: str) -> ValidationFailed:
    return ValidationFailed(why, [Issue("/client", why, "client.unsupported")])


class _Messages:
    request_id_header = "request-id"

    def __init__(self, json: WireJson) -> None:
        self._json = json

    def outgoing(self, body: Mapping[str, Any]) -> Outgoing:
        body = listed(body, "messages", "system", "tools", "stop_sequences")
        settings = self._json({key: body[key] for key in _SETTINGS if key in body})
        fragment = {"messages": body["messages"]}
        system = body.get("system")
        if system is not None and not isinstance(system, _OMITTED):
            fragment["system"] = system
        model, stream = str(body["model"]), body.get("stream") is True
        return Outgoing(request_of(model, fragment, stream, settings), body)

    def read(self, response: Any) -> tuple[Reply, str | None]:
        if not isinstance(response, anthropic.types.Message):
            raise TypeError(f"not a message: {type(response).__name__}")
        return message_reply(response.model_dump(mode="json", exclude_none=True)), getattr(
            response, "_request_id", None
        )

    def read_stream(self, items: list[Any]) -> Reply:
        return read_stream(items)


def request_of(
    model: str, fragment: dict[str, Any], stream: bool, body: Mapping[str, Any]
) -> Request:
    """A Messages request: its conversation (as given), and the settings `body` holds."""
    settings = {name: body[key] for key, name in _SETTINGS.items() if body.get(key) is not None}
    return Request(PROVIDER, "chat", model, fragment, stream, settings, separable=True)


def message_reply(message: Mapping[str, Any]) -> Reply:
    stop = message.get("stop_reason")
    return Reply(
        turn={"role": "assistant", "content": message.get("content", [])},
        response_model=message.get("model"),
        response_id=message.get("id"),
        finish_reasons=[stop] if stop else [],
        usage=_usage(message.get("usage") or {}),
        complete=stop is not None,
    )


def _usage(usage: Mapping[str, Any]) -> Usage:
    read, written = usage.get("cache_read_input_tokens"), usage.get("cache_creation_input_tokens")
    details = usage.get("output_tokens_details") or {}
    return Usage(
        input_tokens=(usage.get("input_tokens") or 0) + (read or 0) + (written or 0),
        output_tokens=usage.get("output_tokens") or 0,
        cache_read=read,
        cache_creation=written,
        reasoning=details.get("thinking_tokens"),
    )


def read_stream(events: list[Any]) -> Reply:
    """The message a stream's events make: as the SDK's own accumulator builds it, from
    the events kept (nothing is done per event while the stream runs)."""
    message: dict[str, Any] = {}
    usage: dict[str, Any] = {}
    blocks: dict[int, dict[str, Any]] = {}
    pieces: defaultdict[tuple[int, str], list[str]] = defaultdict(list)
    for event in events:
        kind = event.type
        if kind == "content_block_delta":
            _delta(event.index, event.delta, blocks, pieces)
        elif kind == "content_block_start":
            blocks[event.index] = event.content_block.model_dump(mode="json", exclude_none=True)
        elif kind == "message_start":
            message = event.message.model_dump(mode="json", exclude_none=True)
            usage = message.get("usage") or {}
        elif kind == "message_delta":
            message["stop_reason"] = event.delta.stop_reason
            usage |= event.usage.model_dump(mode="json", exclude_none=True)  # running totals
    for (index, name), texts in pieces.items():
        joined = "".join(texts)
        if name == "input":
            blocks[index]["input"] = _json_object(joined)
        else:
            blocks[index][name] = blocks[index].get(name, "") + joined
    message["content"] = [blocks[index] for index in sorted(blocks)]
    message["usage"] = usage
    return message_reply(message)


def _delta(
    index: int,
    delta: Any,
    blocks: dict[int, dict[str, Any]],
    pieces: defaultdict[tuple[int, str], list[str]],
) -> None:
    match delta.type:
        case "text_delta":
            pieces[index, "text"].append(delta.text)
        case "thinking_delta":
            pieces[index, "thinking"].append(delta.thinking)
        case "input_json_delta":
            pieces[index, "input"].append(delta.partial_json)
        case "signature_delta":
            blocks[index]["signature"] = delta.signature
        case "citations_delta":
            citation = delta.citation.model_dump(mode="json", exclude_none=True)
            blocks[index].setdefault("citations", []).append(citation)


def _json_object(text: str) -> Any:
    """A tool call's arguments from their streamed JSON; {} while they are incomplete."""
    try:
        return orjson.loads(text) if text else {}
    except orjson.JSONDecodeError:
        return {}


# -- complete ---------------------------------------------------------------------------


def request_body(
    fragment: Mapping[str, Any], model: str, options: Mapping[str, Any], max_output: int
) -> dict[str, Any]:
    """The arguments of ``messages.create`` for a conversation's body fragment: the
    portable options, and ``max_tokens`` (which Anthropic requires) from the model's
    longest answer unless given. The SDK's ``create`` no longer names ``temperature`` and
    ``top_p``: they go in ``extra_body``, as the API still takes them."""
    body = {**fragment, "model": model, "max_tokens": options.get("max_tokens", max_output)}
    if "stop_sequences" in options:
        body["stop_sequences"] = options["stop_sequences"]
    sampling = {key: options[key] for key in ("temperature", "top_p") if key in options}
    if sampling:
        body["extra_body"] = sampling
    return body


async def open_stream(
    client: Any, body: Mapping[str, Any]
) -> tuple[AsyncIterator[Any], str | None]:
    stream = await client.messages.create(**body, stream=True)
    return stream, stream.response.headers.get("request-id")


def is_transient(error: BaseException) -> bool:
    return transient(error, (anthropic.APIConnectionError,))
