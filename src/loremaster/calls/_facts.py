"""What a call to a provider was: its request, its reply, its timing, and the record made
of them (a reply's ``metadata["call"]``), named after the OpenTelemetry GenAI semantic
conventions where they name the thing."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..models import Message, ProviderType, RecordedCall
from ._wire import status_of

__all__ = [
    "Finished",
    "Reply",
    "Request",
    "Timing",
    "Usage",
    "call_attributes",
    "call_record",
    "describe_error",
]

_OTEL_PROVIDERS = {
    ProviderType.ANTHROPIC.value: "anthropic",
    ProviderType.OPENAI.value: "openai",
    ProviderType.GOOGLE.value: "gcp.gemini",
}
_MESSAGE_LIMIT = 500
"""Characters of an error's message a record keeps."""


@dataclass(slots=True)
class Usage:
    """Tokens of one call, as OpenTelemetry counts them: `input_tokens` includes the
    tokens read from and written to the prompt cache, `output_tokens` the reasoning
    tokens. The breakdowns are None where the provider does not report them."""

    input_tokens: int = 0
    output_tokens: int = 0
    cache_read: int | None = None
    cache_creation: int | None = None
    reasoning: int | None = None

    def to_json(self) -> dict[str, int]:
        """Keyed by the attribute names after ``gen_ai.usage.``."""
        figures = {"input_tokens": self.input_tokens, "output_tokens": self.output_tokens}
        for name, value in (
            ("cache_read.input_tokens", self.cache_read),
            ("cache_creation.input_tokens", self.cache_creation),
            ("reasoning.output_tokens", self.reasoning),
        ):
            if value is not None:
                figures[name] = value
        return figures


@dataclass(frozen=True, slots=True)
class Request:
    """One request as sent: the conversation as the provider's body fragment
    (``{"system", "messages"}``, ``{"messages"}``, ``{"system_instruction", "contents"}``)
    and the parameters OpenTelemetry names (``max_tokens``, ``temperature``, ``top_p``).
    The fragment is plain JSON, but a `separable` one's system and messages: those are as
    the application gave them (see `SentMessages`).

    `continues`: the messages follow on from the stored history whatever it holds (a
    Responses API request naming its ``previous_response_id`` sends only the new ones).
    `separable`: each message of the fragment reads on its own (Anthropic's and Chat
    Completions' do; Gemini pairs function responses with earlier calls).
    """

    provider: ProviderType
    operation: str
    model: str
    fragment: dict[str, Any]
    stream: bool
    settings: dict[str, Any] = field(default_factory=dict)
    continues: bool = False
    separable: bool = False


@dataclass(slots=True)
class Reply:
    """What a provider answered (or had answered when its stream stopped): the
    assistant's turn in the provider's own shape and what the response says of itself."""

    turn: dict[str, Any]
    response_model: str | None = None
    response_id: str | None = None
    finish_reasons: list[str] = field(default_factory=list)
    usage: Usage | None = None
    complete: bool = True
    """Whether the answer was whole: a stream read to its stop reason."""


@dataclass(frozen=True, slots=True)
class Timing:
    """`time.perf_counter()` readings: the call sent, its first streamed chunk, its end."""

    started: float
    ended: float
    first_chunk: float | None = None

    @property
    def latency_ms(self) -> float:
        return round((self.ended - self.started) * 1000, 3)

    @property
    def ttft_ms(self) -> float | None:
        if self.first_chunk is None:
            return None
        return round((self.first_chunk - self.started) * 1000, 3)


@dataclass(frozen=True, slots=True)
class Finished:
    """A call that ended: answered (`reply`), failed before answering (`error` and no
    reply), or a stream that stopped early (`partial`, with what arrived and the error
    that broke it, if any)."""

    request: Request
    timing: Timing
    reply: Reply | None = None
    error: BaseException | None = None
    partial: bool = False
    request_id: str | None = None


def describe_error(error: BaseException) -> dict[str, Any]:
    """An error as a record keeps it: its type, the HTTP status if there was one, its
    message (cut)."""
    described: dict[str, Any] = {"type": type(error).__name__}
    status = status_of(error)
    if status is not None:
        described["status"] = status
    message = str(error)
    if message:
        described["message"] = message[:_MESSAGE_LIMIT]
    return described


def call_record(finished: Finished, cost_usd: float | None) -> dict[str, Any]:
    """The record of a call, as the reply's ``metadata["call"]`` holds it."""
    request, reply = finished.request, finished.reply
    record: dict[str, Any] = {
        "provider": request.provider.value,
        "operation": request.operation,
        "model": {"request": request.model},
        "stream": request.stream,
        "latency_ms": finished.timing.latency_ms,
    }
    if request.settings:
        record["request"] = dict(request.settings)
    if finished.timing.ttft_ms is not None:
        record["ttft_ms"] = finished.timing.ttft_ms
    if finished.request_id is not None:
        record["request_id"] = finished.request_id
    if reply is not None:
        if reply.response_model is not None:
            record["model"]["response"] = reply.response_model
        if reply.response_id is not None:
            record["response_id"] = reply.response_id
        if reply.finish_reasons:
            record["finish_reasons"] = list(reply.finish_reasons)
        if reply.usage is not None:
            record["usage"] = reply.usage.to_json()
    if cost_usd is not None:
        record["cost_usd"] = cost_usd
    if finished.partial:
        record["partial"] = True
    if finished.error is not None:
        record["error"] = describe_error(finished.error)
    return record


def call_attributes(
    call: Mapping[str, Any] | Message | RecordedCall, context_id: str | None = None
) -> dict[str, str | int | float | bool | Sequence[str]]:
    """The OpenTelemetry GenAI attributes of a recorded call, exactly those the
    conventions define (``gen_ai.*`` and ``error.type``), for a tracer's span:
    ``span.set_attributes(call_attributes(reply))``.

    `call` is a reply's ``metadata["call"]``, the reply itself or a `RecordedCall`;
    `context_id` (a `RecordedCall`'s own by default) becomes ``gen_ai.conversation.id``.
    """
    if isinstance(call, RecordedCall):
        context_id = context_id or call.context_id
        call = call.call
    elif isinstance(call, Message):
        call = call.metadata.get("call") or {}
    attributes: dict[str, str | int | float | bool | Sequence[str]] = {}
    if not call:
        return attributes
    attributes["gen_ai.operation.name"] = call["operation"]
    attributes["gen_ai.provider.name"] = _OTEL_PROVIDERS.get(call["provider"], call["provider"])
    for key in ("request", "response"):
        if key in call["model"]:
            attributes[f"gen_ai.{key}.model"] = call["model"][key]
    for name, value in call.get("request", {}).items():
        attributes[f"gen_ai.request.{name}"] = value
    if "response_id" in call:
        attributes["gen_ai.response.id"] = call["response_id"]
    if "finish_reasons" in call:
        attributes["gen_ai.response.finish_reasons"] = list(call["finish_reasons"])
    for name, value in call.get("usage", {}).items():
        attributes[f"gen_ai.usage.{name}"] = value
    if context_id is not None:
        attributes["gen_ai.conversation.id"] = context_id
    if "error" in call:
        attributes["error.type"] = call["error"]["type"]
    return attributes
