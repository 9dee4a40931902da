"""`ContextTranslator`: neutral messages to and from Anthropic, OpenAI and Gemini payloads."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

from pydantic import TypeAdapter, ValidationError

from ..config import Settings
from ..errors import Issue, ValidationFailed
from ..models import Message, ProviderType, read_messages
from . import _anthropic, _google, _openai
from ._adapt import adapt
from ._common import ORIGIN_KEY, identify
from ._registry import ModelInfo, ModelRegistry
from ._report import TranslationReport, TranslationResult
from ._tokens import TokenCount, count_messages
from ._validate import validate_payload
from ._window import FitStrategy, Summarizer, WindowFit, fit

__all__ = ["ContextTranslator", "MessagesIn", "ProviderIn"]

MessagesIn = Sequence[Message | Mapping[str, Any]]
"""Messages, or their dict forms (``{"role": "user", "content": "..."}`` included)."""
ProviderIn = ProviderType | str

_MESSAGES: TypeAdapter[list[Message]] = TypeAdapter(list[Message])
_SIGNATURES = frozenset({"signature", "data", "thought_signature"})


class _Format(NamedTuple):
    encode: Callable[[Sequence[Message]], dict[str, Any]]
    decode: Callable[[Mapping[str, Any]], list[dict[str, Any]]]


_FORMATS = {
    ProviderType.ANTHROPIC: _Format(_anthropic.encode, _anthropic.decode),
    ProviderType.OPENAI: _Format(_openai.encode, _openai.decode),
    ProviderType.GOOGLE: _Format(_google.encode, _google.decode),
}


def _pointer(location: Sequence[int | str]) -> str:
    return "".join(f"/{part}" for part in location)


def _as_messages(messages: MessagesIn) -> list[Message]:
    given = [message for message in messages if isinstance(message, Message)]
    if len(given) == len(messages):
        return given
    read = read_messages(list(messages))  # provider-shaped ones: one may be several
    try:
        return _MESSAGES.validate_python(
            [m.model_dump() if isinstance(m, Message) else m for m in read]
        )
    except ValidationError as exc:
        issues = [Issue(_pointer(e["loc"]), e["msg"], "message.invalid") for e in exc.errors()]
        raise ValidationFailed("not valid messages", issues) from exc


def _record_origin(messages: list[dict[str, Any]], provider: ProviderType, model: str) -> None:
    """Name the model on every part that carries its signature."""
    for message in messages:
        for part in message["parts"]:
            own = part.get("provider_data", {}).get(provider.value, {})
            if _SIGNATURES & own.keys():
                own[ORIGIN_KEY] = model


class ContextTranslator:
    """Translates conversations between the neutral model and each provider's request
    format, counts their tokens and fits them into a model's window. Pure: no I/O.

    ``settings`` (default: the ``CONTEXT_*`` environment) gives the models of
    ``CONTEXT_MODELS`` on top of the built-in registry; or pass a `ModelRegistry`.
    """

    def __init__(
        self, settings: Settings | None = None, *, registry: ModelRegistry | None = None
    ) -> None:
        self.registry = registry or ModelRegistry.from_settings(settings or Settings())

    def model(self, provider: ProviderIn, model: str | None = None) -> ModelInfo:
        """The registry's entry for the model (the provider's default when None)."""
        return self.registry.get(provider, model)

    def to_provider(
        self, messages: MessagesIn, provider: ProviderIn, model: str | None = None
    ) -> TranslationResult:
        """The provider's request body fragment for `messages`, what was changed on the
        way (`report`), and the payload read back into the neutral model (`messages`)."""
        provider = ProviderType(provider)
        info = self.registry.get(provider, model)

        def may_sign(origin: str) -> bool:
            return model is None or self.registry.same_model(provider, origin, model)

        adapted, changes = adapt(_as_messages(messages), provider, info, may_sign)
        payload = _FORMATS[provider].encode(adapted)
        warnings = self._model_warnings(provider, model)
        report = TranslationReport(provider, model, tuple(changes), warnings)
        return TranslationResult(payload, report, adapted)

    def _model_warnings(self, provider: ProviderType, model: str | None) -> tuple[str, ...]:
        if model is None or self.registry.get(provider, model).known:
            return ()
        default = self.registry.get(provider)
        limits = f"{provider.value}'s default limits ({default.context_window:,} tokens) apply"
        owner = self.registry.provider_of(model)
        if owner is not None:
            return (f"{model!r} is a model of {owner.value}, not of {provider.value}: {limits}",)
        return (f"{model!r} is a model loremaster does not know: {limits}",)

    def from_provider(
        self, payload: Mapping[str, Any], provider: ProviderIn, *, model: str | None = None
    ) -> list[Message]:
        """The messages of a provider's request body fragment. With `model`, the parts
        that carry its signatures remember it, so they go back only to that model."""
        provider = ProviderType(provider)
        try:
            decoded = _FORMATS[provider].decode(payload)
            if model is not None:
                _record_origin(decoded, provider, model)
            identify(decoded)
            return _MESSAGES.validate_python(decoded)
        except (LookupError, TypeError, AttributeError, ValueError) as exc:
            validate_payload(payload, provider)
            issue = Issue("", f"{type(exc).__name__}: {exc}", "payload.unreadable")
            raise ValidationFailed(f"cannot read the {provider.value} payload", [issue]) from exc

    def count_tokens(
        self,
        messages: MessagesIn,
        provider: ProviderIn,
        model: str | None = None,
        *,
        tools: Sequence[Mapping[str, Any]] = (),
    ) -> TokenCount:
        """Tokens of a request with these messages (and tool definitions) for the model."""
        return count_messages(_as_messages(messages), self.registry.get(provider, model), tools)

    def fit_to_window(
        self,
        messages: MessagesIn,
        provider: ProviderIn,
        model: str | None = None,
        *,
        reserve_output: int | None = None,
        strategy: FitStrategy | str = FitStrategy.KEEP_SYSTEM_AND_RECENT,
        summarizer: Summarizer | None = None,
        tools: Sequence[Mapping[str, Any]] = (),
    ) -> WindowFit:
        """The messages that fit the model's window with `reserve_output` tokens (default:
        the model's longest answer) left for the answer. Never splits a tool call from its
        result, never drops the leading system prompt or the newest turn."""
        info = self.registry.get(provider, model)
        reserve = info.max_output if reserve_output is None else reserve_output
        return fit(
            _as_messages(messages),
            info,
            info.context_window - reserve,
            FitStrategy(strategy),
            summarizer=summarizer,
            tools=tools,
        )
