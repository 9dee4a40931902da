"""A stand-in for the Anthropic, OpenAI and Gemini APIs on a loopback port: the official SDK
clients, pointed at it with ``base_url``, get answers in each provider's own wire format
(JSON, and server-sent events exactly as each streams them), or the failures a test asks
for: an HTTP error in the provider's error shape, or a connection dropped mid-stream.

    stand_in = StandIn.start()
    stand_in.script("anthropic", Failure(529), Answer("Roll for initiative."))
    client = stand_in.anthropic()           # anthropic.AsyncAnthropic(base_url=...)

It serves from a thread of its own (its own event loop), HTTP/1.1 with keep-alive, so a
test's event loop and the SDKs' connection pools behave as against the real thing.
Requests are kept in `requests` as (provider, path, JSON body). The docs' examples use it
too (tests/test_docs.py runs them with this folder on the import path).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import re
import threading
from collections import deque
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

PROVIDERS = ("anthropic", "openai", "google")
_REASONS = {200: "OK", 400: "Bad Request", 401: "Unauthorized", 429: "Too Many Requests"}
_REASONS |= {500: "Internal Server Error", 503: "Service Unavailable", 529: "Overloaded"}


@dataclass(frozen=True)
class Answer:
    """What the stand-in answers: text, and optionally a tool call, thinking (with its
    signature) and the model it says answered (default: the one asked for)."""

    text: str = "As you wish."
    tool_call: tuple[str, dict[str, Any]] | None = None
    thinking: tuple[str, str] | None = None
    model: str | None = None
    input_tokens: int = 12
    cache_read: int = 0
    cache_write: int = 0
    reasoning: int = 0
    delay: float = 0.0
    """Seconds the stand-in waits before it answers (a call in flight)."""

    @property
    def output_tokens(self) -> int:
        return len(self.text.split()) + self.reasoning + (3 if self.tool_call else 0)

    def pieces(self) -> list[str]:
        """The text as a stream sends it: a word at a time."""
        words = self.text.split(" ")
        return [words[0], *(f" {word}" for word in words[1:])]


@dataclass(frozen=True)
class Failure:
    """An HTTP error in the provider's error shape."""

    status: int


@dataclass(frozen=True)
class Drop:
    """A stream cut off after `after` events (the connection closed, no end); for a
    request that is not streamed, the connection closed with no answer at all."""

    after: int = 3
    answer: Answer = field(default_factory=Answer)


Behavior = Answer | Failure | Drop


def numbered(text: str) -> str:
    """`text` with the stand-in's ids (``..._stand_in_<n>``, numbered per request) made
    alike, to compare what two requests got."""
    return re.sub(r"stand[_-]in[_-]\d+", "stand_in_n", text)


@dataclass(frozen=True)
class Seen:
    provider: str
    path: str
    body: dict[str, Any]


class StandIn:
    """The three providers on ``http://127.0.0.1:<port>``."""

    def __init__(self) -> None:
        self.requests: list[Seen] = []
        self._clients: list[Any] = []
        self._scripts: dict[str, deque[Behavior]] = {name: deque() for name in PROVIDERS}
        self._ids = itertools.count(1)
        self._loop = asyncio.new_event_loop()
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name="provider-stand-in", daemon=True)
        self.port = 0

    @classmethod
    def start(cls) -> StandIn:
        stand_in = cls()
        stand_in._thread.start()
        if not stand_in._ready.wait(10):
            raise RuntimeError("the provider stand-in did not start")
        return stand_in

    def stop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def script(self, provider: str, *behaviors: Behavior) -> None:
        """What the next requests to `provider` get, in order; then the default answer."""
        self._scripts[provider].extend(behaviors)

    # -- the SDKs' clients, pointed here -------------------------------------------------

    def anthropic(self, **options: Any) -> Any:
        import anthropic

        return self._made(
            anthropic.AsyncAnthropic(
                base_url=self.url, api_key="stand-in", max_retries=0, **options
            )
        )

    def openai(self, **options: Any) -> Any:
        import openai

        return self._made(
            openai.AsyncOpenAI(
                base_url=f"{self.url}/v1", api_key="stand-in", max_retries=0, **options
            )
        )

    def gemini(self, *, transport: str = "httpx") -> Any:
        """A ``genai.Client``; its async calls go through an httpx client (the SDK's own
        choice, aiohttp, with ``transport="aiohttp"``)."""
        import httpx
        from google import genai
        from google.genai import types

        options = types.HttpOptions(base_url=self.url, api_version="v1beta")
        if transport == "httpx":
            options.httpx_async_client = self._made(httpx.AsyncClient(timeout=30))
        return self._made(genai.Client(api_key="stand-in", http_options=options))

    def _made(self, client: Any) -> Any:
        self._clients.append(client)
        return client

    async def close_clients(self) -> None:
        """Close the clients made here (their connections)."""
        for client in reversed(self._clients):
            if hasattr(client, "aio"):
                await client.aio.aclose()
                client.close()
            elif hasattr(client, "aclose"):
                await client.aclose()
            else:
                await client.close()
        self._clients.clear()

    # -- serving -------------------------------------------------------------------------

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._server = self._loop.run_until_complete(
            asyncio.start_server(self._connection, "127.0.0.1", 0)
        )
        self.port = self._server.sockets[0].getsockname()[1]
        self._ready.set()
        try:
            self._loop.run_forever()
        finally:
            self._server.close()
            for writer in self._writers:  # each connection reads its end and finishes
                writer.transport.abort()
            connections = asyncio.all_tasks(self._loop)
            self._loop.run_until_complete(asyncio.gather(*connections, return_exceptions=True))
            self._loop.close()

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        try:
            while await self._exchange(reader, writer):
                pass
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            self._writers.discard(writer)
            writer.close()

    async def _exchange(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        """One request and its answer; whether the connection stays open."""
        line = await reader.readline()
        if not line:
            return False
        _, target, _ = line.decode().split(" ", 2)
        headers = {}
        while (header := await reader.readline()) not in (b"\r\n", b"\n", b""):
            name, value = header.decode().split(":", 1)
            headers[name.strip().lower()] = value.strip()
        body = json.loads(
            await reader.readexactly(int(headers.get("content-length", "0"))) or b"{}"
        )
        path = target.split("?", 1)[0]
        provider, streamed = _route(path, body, target)
        self.requests.append(Seen(provider, path, body))
        script = self._scripts[provider]
        behavior = script.popleft() if script else Answer()
        reply = _Reply(provider, path, body, next(self._ids))
        if isinstance(behavior, Answer) and behavior.delay:
            await asyncio.sleep(behavior.delay)
        match behavior:
            case Failure(status):
                await _send_json(writer, status, reply.error(status), reply.headers())
                return True
            case Drop(after, answer) if streamed:
                await _send_events(writer, reply.events(answer)[:after], reply.headers())
                writer.transport.abort()
                return False
            case Drop():
                writer.transport.abort()
                return False
            case Answer() as answer if streamed:
                await _send_events(writer, reply.events(answer), reply.headers())
                await _end_chunks(writer)
                return True
            case Answer() as answer:
                await _send_json(writer, 200, reply.whole(answer), reply.headers())
                return True
        raise AssertionError(behavior)


def _route(path: str, body: dict[str, Any], target: str) -> tuple[str, bool]:
    """The provider a path belongs to, and whether the answer is streamed."""
    if path == "/v1/messages":
        return "anthropic", bool(body.get("stream"))
    if path in ("/v1/chat/completions", "/v1/responses"):
        return "openai", bool(body.get("stream"))
    if path.startswith("/v1beta/models/"):
        return "google", path.endswith(":streamGenerateContent")
    raise AssertionError(f"the stand-in has no {target}")


async def _send_json(
    writer: asyncio.StreamWriter, status: int, payload: Any, headers: dict[str, str]
) -> None:
    data = json.dumps(payload).encode()
    head = {"content-type": "application/json", "content-length": str(len(data)), **headers}
    writer.write(_head(status, head) + data)
    await writer.drain()


async def _send_events(
    writer: asyncio.StreamWriter, events: list[str], headers: dict[str, str]
) -> None:
    head = {"content-type": "text/event-stream", "transfer-encoding": "chunked", **headers}
    writer.write(_head(200, head))
    for event in events:
        data = event.encode()
        writer.write(b"%x\r\n%s\r\n" % (len(data), data))
        await writer.drain()


async def _end_chunks(writer: asyncio.StreamWriter) -> None:
    writer.write(b"0\r\n\r\n")
    await writer.drain()


def _head(status: int, headers: dict[str, str]) -> bytes:
    lines = [f"HTTP/1.1 {status} {_REASONS.get(status, 'Error')}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def _sse(data: Any, event: str | None = None) -> str:
    named = f"event: {event}\n" if event else ""
    return f"{named}data: {json.dumps(data)}\n\n"


class _Reply:
    """One answer of a provider, in its own shapes."""

    def __init__(self, provider: str, path: str, body: dict[str, Any], number: int) -> None:
        self.provider = provider
        self.path = path
        self.body = body
        self.number = number
        model = body.get("model") or path.split("/models/", 1)[-1].split(":", 1)[0]
        self.model = str(model)

    def headers(self) -> dict[str, str]:
        if self.provider == "anthropic":
            return {"request-id": f"req_stand_in_{self.number}"}
        if self.provider == "openai":
            return {"x-request-id": f"req_stand_in_{self.number}"}
        return {}

    def error(self, status: int) -> dict[str, Any]:
        if self.provider == "anthropic":
            kind = {400: "invalid_request_error", 401: "authentication_error"}.get(status)
            kind = kind or {429: "rate_limit_error", 500: "api_error"}.get(
                status, "overloaded_error"
            )
            return {"type": "error", "error": {"type": kind, "message": f"stand-in {status}"}}
        if self.provider == "openai":
            return {
                "error": {
                    "message": f"stand-in {status}",
                    "type": "requests" if status == 429 else "server_error",
                    "param": None,
                    "code": "rate_limit_exceeded" if status == 429 else None,
                }
            }
        statuses = {400: "INVALID_ARGUMENT", 429: "RESOURCE_EXHAUSTED", 500: "INTERNAL"}
        return {
            "error": {
                "code": status,
                "message": f"stand-in {status}",
                "status": statuses.get(status, "UNAVAILABLE"),
            }
        }

    def whole(self, answer: Answer) -> dict[str, Any]:
        if self.provider == "anthropic":
            return _anthropic_message(self, answer)
        if self.path.endswith("/responses"):
            return _openai_response(self, answer, "completed")
        if self.provider == "openai":
            return _openai_completion(self, answer)
        return _gemini_response(self, answer, answer.text, final=True)

    def events(self, answer: Answer) -> list[str]:
        if self.provider == "anthropic":
            return list(_anthropic_events(self, answer))
        if self.path.endswith("/responses"):
            return list(_responses_events(self, answer))
        if self.provider == "openai":
            return [*_chat_events(self, answer), "data: [DONE]\n\n"]
        return [f"data: {json.dumps(chunk)}\r\n\r\n" for chunk in _gemini_chunks(self, answer)]


# -- Anthropic ----------------------------------------------------------------------------


def _anthropic_usage(answer: Answer, output_tokens: int) -> dict[str, Any]:
    return {
        "input_tokens": answer.input_tokens,
        "cache_creation_input_tokens": answer.cache_write,
        "cache_read_input_tokens": answer.cache_read,
        "output_tokens": output_tokens,
        "service_tier": "standard",
    }


def _anthropic_blocks(reply: _Reply, answer: Answer) -> list[dict[str, Any]]:
    blocks: list[dict[str, Any]] = []
    if answer.thinking:
        text, signature = answer.thinking
        blocks.append({"type": "thinking", "thinking": text, "signature": signature})
    blocks.append({"type": "text", "text": answer.text})
    if answer.tool_call:
        name, arguments = answer.tool_call
        blocks.append(
            {
                "type": "tool_use",
                "id": f"toolu_stand_in_{reply.number}",
                "name": name,
                "input": arguments,
            }
        )
    return blocks


def _anthropic_message(reply: _Reply, answer: Answer) -> dict[str, Any]:
    return {
        "id": f"msg_stand_in_{reply.number}",
        "type": "message",
        "role": "assistant",
        "model": answer.model or reply.model,
        "content": _anthropic_blocks(reply, answer),
        "stop_reason": "tool_use" if answer.tool_call else "end_turn",
        "stop_sequence": None,
        "usage": _anthropic_usage(answer, answer.output_tokens),
    }


def _anthropic_events(reply: _Reply, answer: Answer) -> Iterator[str]:
    start = {**_anthropic_message(reply, answer), "content": [], "stop_reason": None}
    start["usage"] = _anthropic_usage(answer, 1)
    yield _sse({"type": "message_start", "message": start}, "message_start")
    for index, block in enumerate(_anthropic_blocks(reply, answer)):
        yield from _anthropic_block(index, block, answer)
    delta = {"stop_reason": "tool_use" if answer.tool_call else "end_turn", "stop_sequence": None}
    usage = {"output_tokens": answer.output_tokens}
    yield _sse({"type": "message_delta", "delta": delta, "usage": usage}, "message_delta")
    yield _sse({"type": "message_stop"}, "message_stop")


def _anthropic_block(index: int, block: dict[str, Any], answer: Answer) -> Iterator[str]:
    def delta(body: dict[str, Any]) -> str:
        return _sse(
            {"type": "content_block_delta", "index": index, "delta": body}, "content_block_delta"
        )

    kind = block["type"]
    empty = {"text": {"text": ""}, "thinking": {"thinking": ""}}.get(kind, {})
    opened = {**{k: v for k, v in block.items() if k in ("type", "id", "name")}, **empty}
    if kind == "tool_use":
        opened["input"] = {}
    yield _sse(
        {"type": "content_block_start", "index": index, "content_block": opened},
        "content_block_start",
    )
    if index == 0:
        yield _sse({"type": "ping"}, "ping")
    if kind == "text":
        for piece in answer.pieces():
            yield delta({"type": "text_delta", "text": piece})
    elif kind == "thinking":
        yield delta({"type": "thinking_delta", "thinking": block["thinking"]})
        yield delta({"type": "signature_delta", "signature": block["signature"]})
    else:
        arguments = json.dumps(block["input"])
        middle = len(arguments) // 2
        for part in ("", arguments[:middle], arguments[middle:]):
            yield delta({"type": "input_json_delta", "partial_json": part})
    yield _sse({"type": "content_block_stop", "index": index}, "content_block_stop")


# -- OpenAI Chat Completions ------------------------------------------------------------


def _openai_usage(answer: Answer) -> dict[str, Any]:
    return {
        "prompt_tokens": answer.input_tokens,
        "completion_tokens": answer.output_tokens,
        "total_tokens": answer.input_tokens + answer.output_tokens,
        "prompt_tokens_details": {"cached_tokens": answer.cache_read, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": answer.reasoning,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


def _tool_calls(reply: _Reply, answer: Answer) -> list[dict[str, Any]]:
    if not answer.tool_call:
        return []
    name, arguments = answer.tool_call
    return [
        {
            "id": f"call_stand_in_{reply.number}",
            "type": "function",
            "function": {"name": name, "arguments": json.dumps(arguments)},
        }
    ]


def _openai_completion(reply: _Reply, answer: Answer) -> dict[str, Any]:
    message: dict[str, Any] = {
        "role": "assistant",
        "content": answer.text,
        "refusal": None,
        "annotations": [],
    }
    if answer.tool_call:
        message["tool_calls"] = _tool_calls(reply, answer)
    return {
        "id": f"chatcmpl-stand-in-{reply.number}",
        "object": "chat.completion",
        "created": 1_760_000_000,
        "model": answer.model or reply.model,
        "choices": [
            {
                "index": 0,
                "message": message,
                "logprobs": None,
                "finish_reason": "tool_calls" if answer.tool_call else "stop",
            }
        ],
        "usage": _openai_usage(answer),
        "service_tier": "default",
        "system_fingerprint": "fp_stand_in",
    }


def _chat_events(reply: _Reply, answer: Answer) -> Iterator[str]:
    with_usage = bool((reply.body.get("stream_options") or {}).get("include_usage"))
    base = {
        "id": f"chatcmpl-stand-in-{reply.number}",
        "object": "chat.completion.chunk",
        "created": 1_760_000_000,
        "model": answer.model or reply.model,
        "service_tier": "default",
        "system_fingerprint": "fp_stand_in",
    }
    if with_usage:
        base["usage"] = None

    def chunk(delta: dict[str, Any], finish: str | None = None) -> str:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
        return f"data: {json.dumps({**base, 'choices': [choice]})}\n\n"

    yield chunk({"role": "assistant", "content": "", "refusal": None})
    for piece in answer.pieces():
        yield chunk({"content": piece})
    for index, call in enumerate(_tool_calls(reply, answer)):
        arguments = call["function"]["arguments"]
        opened = {**call, "function": {"name": call["function"]["name"], "arguments": ""}}
        yield chunk({"tool_calls": [{"index": index, **opened}]})
        for part in (arguments[: len(arguments) // 2], arguments[len(arguments) // 2 :]):
            yield chunk({"tool_calls": [{"index": index, "function": {"arguments": part}}]})
    yield chunk({}, "tool_calls" if answer.tool_call else "stop")
    if with_usage:
        yield f"data: {json.dumps({**base, 'choices': [], 'usage': _openai_usage(answer)})}\n\n"


# -- OpenAI Responses ---------------------------------------------------------------------


def _response_output(reply: _Reply, answer: Answer) -> list[dict[str, Any]]:
    output: list[dict[str, Any]] = [
        {
            "id": f"msg_stand_in_{reply.number}",
            "type": "message",
            "status": "completed",
            "role": "assistant",
            "content": [
                {"type": "output_text", "annotations": [], "logprobs": [], "text": answer.text}
            ],
        }
    ]
    for call in _tool_calls(reply, answer):
        output.append(
            {
                "id": f"fc_stand_in_{reply.number}",
                "type": "function_call",
                "status": "completed",
                "call_id": call["id"],
                "name": call["function"]["name"],
                "arguments": call["function"]["arguments"],
            }
        )
    return output


def _openai_response(reply: _Reply, answer: Answer, status: str) -> dict[str, Any]:
    done = status == "completed"
    return {
        "id": f"resp_stand_in_{reply.number}",
        "object": "response",
        "created_at": 1_760_000_000,
        "status": status,
        "background": False,
        "error": None,
        "incomplete_details": None,
        "instructions": reply.body.get("instructions"),
        "max_output_tokens": reply.body.get("max_output_tokens"),
        "model": answer.model or reply.model,
        "output": _response_output(reply, answer) if done else [],
        "parallel_tool_calls": True,
        "previous_response_id": reply.body.get("previous_response_id"),
        "reasoning": {"effort": None, "summary": None},
        "service_tier": "default",
        "store": True,
        "temperature": 1.0,
        "text": {"format": {"type": "text"}, "verbosity": "medium"},
        "tool_choice": "auto",
        "tools": [],
        "top_p": 1.0,
        "truncation": "disabled",
        "usage": {
            "input_tokens": answer.input_tokens,
            "input_tokens_details": {"cached_tokens": answer.cache_read},
            "output_tokens": answer.output_tokens,
            "output_tokens_details": {"reasoning_tokens": answer.reasoning},
            "total_tokens": answer.input_tokens + answer.output_tokens,
        }
        if done
        else None,
        "user": None,
        "metadata": {},
    }


def _responses_events(reply: _Reply, answer: Answer) -> Iterator[str]:
    numbers = itertools.count()

    def event(kind: str, **fields: Any) -> str:
        return _sse({"type": kind, "sequence_number": next(numbers), **fields}, kind)

    started = _openai_response(reply, answer, "in_progress")
    yield event("response.created", response=started)
    yield event("response.in_progress", response=started)
    message, *calls = _response_output(reply, answer)
    item_id = message["id"]
    yield event(
        "response.output_item.added",
        output_index=0,
        item={**message, "status": "in_progress", "content": []},
    )
    empty = {"type": "output_text", "annotations": [], "logprobs": [], "text": ""}
    yield event(
        "response.content_part.added", item_id=item_id, output_index=0, content_index=0, part=empty
    )
    for piece in answer.pieces():
        yield event(
            "response.output_text.delta",
            item_id=item_id,
            output_index=0,
            content_index=0,
            delta=piece,
            logprobs=[],
        )
    yield event(
        "response.output_text.done",
        item_id=item_id,
        output_index=0,
        content_index=0,
        text=answer.text,
        logprobs=[],
    )
    yield event(
        "response.content_part.done",
        item_id=item_id,
        output_index=0,
        content_index=0,
        part=message["content"][0],
    )
    yield event("response.output_item.done", output_index=0, item=message)
    for index, call in enumerate(calls, start=1):
        yield event(
            "response.output_item.added",
            output_index=index,
            item={**call, "status": "in_progress", "arguments": ""},
        )
        yield event(
            "response.function_call_arguments.done",
            item_id=call["id"],
            output_index=index,
            arguments=call["arguments"],
        )
        yield event("response.output_item.done", output_index=index, item=call)
    yield event("response.completed", response=_openai_response(reply, answer, "completed"))


# -- Gemini -------------------------------------------------------------------------------


def _gemini_usage(answer: Answer) -> dict[str, Any]:
    usage = {
        "promptTokenCount": answer.input_tokens,
        "candidatesTokenCount": answer.output_tokens - answer.reasoning,
        "totalTokenCount": answer.input_tokens + answer.output_tokens,
        "promptTokensDetails": [{"modality": "TEXT", "tokenCount": answer.input_tokens}],
    }
    if answer.reasoning:
        usage["thoughtsTokenCount"] = answer.reasoning
    if answer.cache_read:
        usage["cachedContentTokenCount"] = answer.cache_read
    return usage


def _gemini_response(
    reply: _Reply, answer: Answer, text: str, *, final: bool, first: bool = True
) -> dict[str, Any]:
    parts: list[dict[str, Any]] = []
    if answer.thinking and first:
        parts.append({"text": answer.thinking[0], "thought": True})
    parts.append({"text": text})
    if answer.tool_call and final:
        name, arguments = answer.tool_call
        call: dict[str, Any] = {"functionCall": {"name": name, "args": arguments}}
        if answer.thinking:
            call["thoughtSignature"] = answer.thinking[1]
        parts.append(call)
    candidate: dict[str, Any] = {"content": {"parts": parts, "role": "model"}, "index": 0}
    if final:
        candidate["finishReason"] = "STOP"
    response: dict[str, Any] = {
        "candidates": [candidate],
        "modelVersion": answer.model or reply.model,
        "responseId": f"stand-in-{reply.number}",
    }
    if final:
        response["usageMetadata"] = _gemini_usage(answer)
    return response


def _gemini_chunks(reply: _Reply, answer: Answer) -> Iterator[dict[str, Any]]:
    pieces = answer.pieces()
    for index, piece in enumerate(pieces):
        final = index == len(pieces) - 1
        yield _gemini_response(reply, answer, piece, final=final, first=index == 0)


@pytest.fixture
async def stand_in() -> AsyncIterator[StandIn]:
    """The providers' stand-in, for one test (import it into a test module); the clients
    it made are closed after the test."""
    server = StandIn.start()
    try:
        yield server
    finally:
        await server.close_clients()
        server.stop()
