"""Google's SDK: ``genai.Client.aio.models`` recorded (``generate_content`` and
``generate_content_stream``; chats sent through ``client.aio.chats`` too), and the calls
`complete` makes. The client's synchronous ``models`` refuses to generate rather than
go unrecorded. Contents in any of the forms the SDK takes are read with the SDK's own
normalization."""

from __future__ import annotations

import copy
import time
from collections.abc import AsyncIterator, Mapping
from typing import Any, NoReturn

from google import genai
from google.genai import _transformers, types
from google.genai.models import AsyncModels, Models

from ..errors import Issue, ValidationFailed
from ..models import ProviderType
from ._facts import Reply, Request, Usage
from ._recorder import CallRecorder, record_failure, record_plain, record_stream
from ._wire import transient

__all__ = [
    "PROVIDER",
    "check",
    "is_transient",
    "open_stream",
    "read_stream",
    "request_body",
    "wrap",
]

PROVIDER = ProviderType.GOOGLE
_SETTINGS = {
    "max_output_tokens": "max_tokens",
    "temperature": "temperature",
    "top_p": "top_p",
    "top_k": "top_k",
    "stop_sequences": "stop_sequences",
}


def check(client: Any) -> None:
    """Refuse what is not a `google.genai.Client`."""
    if not isinstance(client, genai.Client):
        why = f"{type(client).__name__} is not a google.genai.Client"
        raise ValidationFailed(why, [Issue("/client", why, "client.unsupported")])


def wrap(client: Any, recorder: CallRecorder) -> Any:
    check(client)
    wrapped = _RecordedClient.__new__(_RecordedClient)
    vars(wrapped).update(vars(client))
    aio = copy.copy(client.aio)
    vars(aio)["_models"] = _RecordedModels(client._api_client, recorder)
    vars(wrapped).update(_aio=aio, _models=_SyncRefused(client._api_client), loremaster=recorder)
    return wrapped


class _RecordedClient(genai.Client):
    """A copy of the application's client (the same connections), recording."""

    def __del__(self) -> None:
        """The application's own client closes the connections it shares with this one."""


class _SyncRefused(Models):
    """The synchronous models of a recorded client: loremaster records async calls only."""

    def generate_content(self, *args: Any, **kwargs: Any) -> NoReturn:
        raise _sync_refused()

    def generate_content_stream(self, *args: Any, **kwargs: Any) -> NoReturn:
        raise _sync_refused()


def _sync_refused() -> ValidationFailed:
    why = "a recorded client records async calls only: use client.aio.models"
    return ValidationFailed(why, [Issue("/client", why, "client.unsupported")])


class _RecordedModels(AsyncModels):
    def __init__(self, api_client: Any, recorder: CallRecorder) -> None:
        super().__init__(api_client)
        self._recorder = recorder

    async def generate_content(
        self, *, model: str, contents: Any, config: Any = None
    ) -> types.GenerateContentResponse:
        request = request_of(model, contents, config, stream=False)
        send = AsyncModels.generate_content
        return await record_plain(
            self._recorder,
            request,
            lambda: send(self, model=model, contents=contents, config=config),
            _read,
        )

    async def generate_content_stream(
        self, *, model: str, contents: Any, config: Any = None
    ) -> AsyncIterator[types.GenerateContentResponse]:
        request = request_of(model, contents, config, stream=True)
        started = time.perf_counter()
        try:
            source = await AsyncModels.generate_content_stream(
                self, model=model, contents=contents, config=config
            )
        except Exception as exc:
            await record_failure(self._recorder, request, started, exc)
            raise
        return record_stream(self._recorder, request, started, source, read_stream)[1]


def request_of(model: str, contents: Any, config: Any, *, stream: bool) -> Request:
    fragment: dict[str, Any] = {
        "contents": [_dumped(c) for c in _transformers.t_contents(contents)]
    }
    settings: dict[str, Any] = {}
    if config is not None:
        given = (
            config
            if isinstance(config, types.GenerateContentConfig)
            else types.GenerateContentConfig.model_validate(config)
        )
        if given.system_instruction is not None:
            parts = [
                part
                for content in _transformers.t_contents(given.system_instruction)
                for part in _dumped(content).get("parts", [])
            ]
            fragment["system_instruction"] = {"parts": parts}
        for key, name in _SETTINGS.items():
            value = getattr(given, key)
            if value is not None:
                settings[name] = value
    return Request(PROVIDER, "generate_content", model, fragment, stream, settings)


def _dumped(value: Any) -> dict[str, Any]:
    dumped: dict[str, Any] = value.model_dump(mode="json", exclude_none=True)
    return dumped


def _read(response: types.GenerateContentResponse) -> tuple[Reply, str | None]:
    return _reply(response.model_dump(mode="json", exclude_none=True), complete=True), None


def _reply(response: Mapping[str, Any], *, complete: bool) -> Reply:
    candidates = response.get("candidates") or []
    content = (candidates[0].get("content") if candidates else None) or {}
    usage = response.get("usage_metadata")
    return Reply(
        turn={"role": "model", "parts": content.get("parts", [])},
        response_model=response.get("model_version"),
        response_id=response.get("response_id"),
        finish_reasons=[c["finish_reason"] for c in candidates if c.get("finish_reason")],
        usage=None if usage is None else _usage(usage),
        complete=complete,
    )


def _usage(usage: Mapping[str, Any]) -> Usage:
    thoughts = usage.get("thoughts_token_count")
    return Usage(
        input_tokens=usage.get("prompt_token_count") or 0,
        output_tokens=(usage.get("candidates_token_count") or 0) + (thoughts or 0),
        cache_read=usage.get("cached_content_token_count"),
        reasoning=thoughts,
    )


def read_stream(chunks: list[Any]) -> Reply:
    """The answer a stream's chunks make: their parts in order, the text of adjacent
    text parts of a kind (thought or not) joined, a thought signature kept on the part it
    came with; the last usage and finish reason."""
    parts: list[dict[str, Any]] = []
    last: dict[str, Any] = {}
    for chunk in chunks:
        data = chunk.model_dump(mode="json", exclude_none=True)
        candidates = data.get("candidates") or []
        for part in ((candidates[0].get("content") or {}) if candidates else {}).get("parts", []):
            _join(parts, part)
        last |= {
            key: data[key]
            for key in ("usage_metadata", "model_version", "response_id")
            if key in data
        }
        if candidates and candidates[0].get("finish_reason"):
            last["candidates"] = [{"finish_reason": candidates[0]["finish_reason"]}]
    reply = _reply(last, complete="candidates" in last)
    reply.turn["parts"] = parts
    return reply


def _join(parts: list[dict[str, Any]], part: dict[str, Any]) -> None:
    previous = parts[-1] if parts else None
    if (
        previous is not None
        and "text" in part
        and "text" in previous
        and bool(part.get("thought")) == bool(previous.get("thought"))
        and "thought_signature" not in previous
    ):
        previous["text"] += part["text"]
        if "thought_signature" in part:
            previous["thought_signature"] = part["thought_signature"]
        return
    parts.append(part)


# -- complete ---------------------------------------------------------------------------


def request_body(
    fragment: Mapping[str, Any], model: str, options: Mapping[str, Any], max_output: int
) -> dict[str, Any]:
    """The arguments of ``aio.models.generate_content_stream`` for a conversation's body
    fragment: the system instruction and the portable options go in its config."""
    config: dict[str, Any] = {}
    if "system_instruction" in fragment:
        config["system_instruction"] = fragment["system_instruction"]
    if "max_tokens" in options:
        config["max_output_tokens"] = options["max_tokens"]
    config |= {k: options[k] for k in ("temperature", "top_p", "stop_sequences") if k in options}
    return {"model": model, "contents": fragment["contents"], "config": config or None}


async def open_stream(
    client: Any, body: Mapping[str, Any]
) -> tuple[AsyncIterator[Any], str | None]:
    return await client.aio.models.generate_content_stream(**body), None


def is_transient(error: BaseException) -> bool:
    return transient(error, ())
