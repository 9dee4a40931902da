"""OpenAI's SDK: ``AsyncOpenAI.chat.completions`` and ``AsyncOpenAI.responses`` recorded,
and the calls `complete` makes (Chat Completions).

A streamed chat completion sends its usage only when asked (``stream_options``
``include_usage``): the recorded client asks, and keeps the extra usage-only chunk from
an application that did not. A Responses API conversation is recorded as the Chat
Completions messages it amounts to (reasoning items are not kept)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Any

import openai
from openai.resources.chat.completions import AsyncCompletions
from openai.resources.responses import AsyncResponses

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

PROVIDER = ProviderType.OPENAI
_OMITTED = (openai.NotGiven, openai.Omit)
_SAMPLING = ("temperature", "top_p")
_CHAT_READ = (
    "model",
    "stream",
    "stream_options",
    "max_tokens",
    "max_completion_tokens",
    *_SAMPLING,
)
_RESPONSES_READ = (
    "model",
    "input",
    "instructions",
    "stream",
    "previous_response_id",
    "conversation",
    "max_output_tokens",
    *_SAMPLING,
)
"""The fields of a request a record reads (tools, say, are not kept)."""


def check(client: Any) -> None:
    """Refuse what is not an `openai.AsyncOpenAI` (the synchronous client above all)."""
    if isinstance(client, openai.OpenAI):
        raise _refused("openai.OpenAI is synchronous: use an openai.AsyncOpenAI")
    if not isinstance(client, openai.AsyncOpenAI):
        raise _refused(f"{type(client).__name__} is not an openai.AsyncOpenAI")


def wrap(client: Any, recorder: CallRecorder) -> Any:
    check(client)
    recorder.sent = SentMessages(WireJson(_OMITTED))
    json = recorder.sent.json
    copy = client.copy
    wrapped = copy()
    completions = AsyncCompletions(wrapped)
    vars(completions)["_post"] = recording_post(
        recorder, wrapped.post, {"/chat/completions": _ChatCompletions(json)}
    )
    responses = AsyncResponses(wrapped)
    vars(responses)["_post"] = recording_post(
        recorder, wrapped.post, {"/responses": _Responses(json)}
    )
    vars(wrapped.chat)["completions"] = completions
    vars(wrapped).update(responses=responses, loremaster=recorder)
    rewrapping_copy(wrapped, copy, lambda fresh: wrap(fresh, recorder))
    return wrapped


def _refused(why: str) -> ValidationFailed:
    return ValidationFailed(why, [Issue("/client", why, "client.unsupported")])


def _settings(body: Mapping[str, Any], tokens: str) -> dict[str, Any]:
    settings = {name: body[name] for name in _SAMPLING if body.get(name) is not None}
    if body.get(tokens) is not None:
        settings["max_tokens"] = body[tokens]
    return settings


def _usage_only(chunk: Any) -> bool:
    return not chunk.choices and chunk.usage is not None


# -- Chat Completions -------------------------------------------------------------------


class _ChatCompletions:
    request_id_header = "x-request-id"

    def __init__(self, json: WireJson) -> None:
        self._json = json

    def outgoing(self, body: Mapping[str, Any]) -> Outgoing:
        body = listed(body, "messages", "tools")
        plain = self._json({key: body[key] for key in _CHAT_READ if key in body})
        stream = plain.get("stream") is True
        tokens = "max_completion_tokens" if "max_completion_tokens" in plain else "max_tokens"
        request = Request(
            PROVIDER,
            "chat",
            str(plain["model"]),
            {"messages": body["messages"]},
            stream,
            _settings(plain, tokens),
            separable=True,
        )
        options = plain.get("stream_options") or {}
        if not stream or options.get("include_usage"):
            return Outgoing(request, body)
        asked = {**body, "stream_options": {**options, "include_usage": True}}
        return Outgoing(request, asked, _usage_only)

    def read(self, response: Any) -> tuple[Reply, str | None]:
        if not isinstance(response, openai.types.chat.ChatCompletion):
            raise TypeError(f"not a chat completion: {type(response).__name__}")
        data = response.model_dump(mode="json", exclude_none=True)
        choices = data.get("choices") or []
        turn = choices[0]["message"] if choices else {"role": "assistant", "content": None}
        reply = Reply(
            turn=turn,
            response_model=data.get("model"),
            response_id=data.get("id"),
            finish_reasons=[c["finish_reason"] for c in choices if c.get("finish_reason")],
            usage=_chat_usage(data.get("usage")),
        )
        return reply, getattr(response, "_request_id", None)

    def read_stream(self, items: list[Any]) -> Reply:
        return read_stream(items)


def _chat_usage(usage: Mapping[str, Any] | None) -> Usage | None:
    if usage is None:
        return None
    cached = (usage.get("prompt_tokens_details") or {}).get("cached_tokens")
    reasoning = (usage.get("completion_tokens_details") or {}).get("reasoning_tokens")
    return Usage(
        input_tokens=usage.get("prompt_tokens") or 0,
        output_tokens=usage.get("completion_tokens") or 0,
        cache_read=cached,
        reasoning=reasoning,
    )


def read_stream(chunks: list[Any]) -> Reply:
    """The message a chat completion stream's chunks make (its first choice)."""
    texts: list[str] = []
    refusals: list[str] = []
    calls: dict[int, dict[str, Any]] = {}
    arguments: dict[int, list[str]] = {}
    reasons: list[str] = []
    usage = model = response_id = None
    for chunk in chunks:
        model, response_id = chunk.model, chunk.id
        if chunk.usage is not None:
            usage = chunk.usage.model_dump(mode="json", exclude_none=True)
        for choice in chunk.choices:
            if choice.index != 0:
                continue
            delta = choice.delta
            if delta.content:
                texts.append(delta.content)
            if delta.refusal:
                refusals.append(delta.refusal)
            for call in delta.tool_calls or ():
                entry = calls.setdefault(
                    call.index, {"id": "", "type": "function", "function": {"name": ""}}
                )
                entry["id"] = call.id or entry["id"]
                if call.function is not None:
                    entry["function"]["name"] += call.function.name or ""
                    arguments.setdefault(call.index, []).append(call.function.arguments or "")
            if choice.finish_reason:
                reasons.append(choice.finish_reason)
    turn: dict[str, Any] = {"role": "assistant", "content": "".join(texts) or None}
    if refusals:
        turn["refusal"] = "".join(refusals)
    if calls:
        for index, call in calls.items():
            call["function"]["arguments"] = "".join(arguments.get(index, ()))
        turn["tool_calls"] = [calls[index] for index in sorted(calls)]
    return Reply(
        turn=turn,
        response_model=model,
        response_id=response_id,
        finish_reasons=reasons,
        usage=_chat_usage(usage),
        complete=bool(reasons),
    )


# -- Responses --------------------------------------------------------------------------


class _Responses:
    request_id_header = "x-request-id"

    def __init__(self, json: WireJson) -> None:
        self._json = json

    def outgoing(self, body: Mapping[str, Any]) -> Outgoing:
        body = listed(body, "input", "tools")
        plain = self._json({key: body[key] for key in _RESPONSES_READ if key in body})
        request = Request(
            PROVIDER,
            "chat",
            str(plain["model"]),
            {"messages": _conversation(plain)},
            bool(plain.get("stream")),
            _settings(plain, "max_output_tokens"),
            continues=bool(plain.get("previous_response_id") or plain.get("conversation")),
        )
        return Outgoing(request, body)

    def read(self, response: Any) -> tuple[Reply, str | None]:
        if not isinstance(response, openai.types.responses.Response):
            raise TypeError(f"not a response: {type(response).__name__}")
        reply = _response_reply(response.model_dump(mode="json", exclude_none=True))
        return reply, getattr(response, "_request_id", None)

    def read_stream(self, items: list[Any]) -> Reply:
        """The final response an event carries; if none came, the output items done and
        the text of those under way."""
        for event in reversed(items):
            if event.type in ("response.completed", "response.incomplete", "response.failed"):
                return _response_reply(event.response.model_dump(mode="json", exclude_none=True))
        done = [
            event.item.model_dump(mode="json", exclude_none=True)
            for event in items
            if event.type == "response.output_item.done"
        ]
        finished = {item.get("id") for item in done}
        texts: dict[str, list[str]] = {}
        for event in items:
            if event.type == "response.output_text.delta" and event.item_id not in finished:
                texts.setdefault(event.item_id, []).append(event.delta)
        under_way = [
            {
                "type": "message",
                "role": "assistant",
                "content": [{"type": "output_text", "text": "".join(t)}],
            }
            for t in texts.values()
        ]
        started = next((e.response for e in items if e.type == "response.created"), None)
        return Reply(
            turn=_assistant_turn([*done, *under_way]),
            response_model=None if started is None else started.model,
            response_id=None if started is None else started.id,
            complete=False,
        )


def _response_reply(response: Mapping[str, Any]) -> Reply:
    usage = response.get("usage")
    status = response.get("status")
    return Reply(
        turn=_assistant_turn(response.get("output") or []),
        response_model=response.get("model"),
        response_id=response.get("id"),
        finish_reasons=[status] if status else [],
        usage=None if usage is None else _responses_usage(usage),
    )


def _responses_usage(usage: Mapping[str, Any]) -> Usage:
    return Usage(
        input_tokens=usage.get("input_tokens") or 0,
        output_tokens=usage.get("output_tokens") or 0,
        cache_read=(usage.get("input_tokens_details") or {}).get("cached_tokens"),
        reasoning=(usage.get("output_tokens_details") or {}).get("reasoning_tokens"),
    )


def _assistant_turn(output: list[Any]) -> dict[str, Any]:
    """A response's output as one Chat Completions assistant message."""
    turns = _messages(output)
    return turns[-1] if turns else {"role": "assistant", "content": []}


def _conversation(body: Mapping[str, Any]) -> list[dict[str, Any]]:
    """A Responses API request's ``instructions`` and ``input`` as Chat Completions
    messages."""
    messages: list[dict[str, Any]] = []
    if body.get("instructions"):
        messages.append({"role": "system", "content": body["instructions"]})
    given = body.get("input")
    if isinstance(given, str):
        return [*messages, {"role": "user", "content": given}]
    return [*messages, *_messages(given or [])]


def _messages(items: list[Any]) -> list[dict[str, Any]]:
    """Responses API items as Chat Completions messages: an assistant's messages and
    function calls in a row make one assistant message, as a chat completion's would."""
    messages: list[dict[str, Any]] = []
    for item in items:
        kind = item.get("type", "message")
        if kind == "message":
            content = item["content"]
            parts = (
                [{"type": "text", "text": content}] if isinstance(content, str) else _parts(content)
            )
            role = "system" if item["role"] == "developer" else item["role"]
            _add(messages, {"role": role, "content": parts})
        elif kind == "function_call":
            call = {
                "id": item["call_id"],
                "type": "function",
                "function": {"name": item["name"], "arguments": item["arguments"]},
            }
            _add(messages, {"role": "assistant", "content": [], "tool_calls": [call]})
        elif kind == "function_call_output":
            output = item["output"]
            content = output if isinstance(output, str) else _parts(output)
            messages.append({"role": "tool", "tool_call_id": item["call_id"], "content": content})
    return messages


def _add(messages: list[dict[str, Any]], message: dict[str, Any]) -> None:
    last = messages[-1] if messages else None
    if message["role"] != "assistant" or last is None or last["role"] != "assistant":
        messages.append(message)
        return
    last["content"] = [*last["content"], *message["content"]]
    if message.get("tool_calls"):
        last["tool_calls"] = [*last.get("tool_calls", []), *message["tool_calls"]]


def _parts(content: list[Mapping[str, Any]]) -> list[dict[str, Any]]:
    parts: list[dict[str, Any]] = []
    for part in content:
        match part.get("type"):
            case "input_text" | "output_text":
                parts.append({"type": "text", "text": part["text"]})
            case "refusal":
                parts.append({"type": "text", "text": part["refusal"]})
            case "input_image" if part.get("image_url"):
                image = {"url": part["image_url"]}
                if part.get("detail") not in (None, "auto"):
                    image["detail"] = part["detail"]
                parts.append({"type": "image_url", "image_url": image})
            case "input_file" if part.get("file_data"):
                file = {"file_data": part["file_data"]}
                if part.get("filename"):
                    file["filename"] = part["filename"]
                parts.append({"type": "file", "file": file})
    return parts


# -- complete ---------------------------------------------------------------------------


def request_body(
    fragment: Mapping[str, Any], model: str, options: Mapping[str, Any], max_output: int
) -> dict[str, Any]:
    """The arguments of ``chat.completions.create`` for a conversation's body fragment,
    streamed with its usage; OpenAI requires no token limit, so none is set unless given."""
    body: dict[str, Any] = {**fragment, "model": model, "stream_options": {"include_usage": True}}
    if "max_tokens" in options:
        body["max_completion_tokens"] = options["max_tokens"]
    if "stop_sequences" in options:
        body["stop"] = options["stop_sequences"]
    body |= {key: options[key] for key in ("temperature", "top_p") if key in options}
    return body


async def open_stream(
    client: Any, body: Mapping[str, Any]
) -> tuple[AsyncIterator[Any], str | None]:
    stream = await client.chat.completions.create(**body, stream=True)
    return stream, stream.response.headers.get("x-request-id")


def is_transient(error: BaseException) -> bool:
    return transient(error, (openai.APIConnectionError,))
