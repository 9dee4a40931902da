"""Models: their provider, context window, longest answer and how their tokens are counted."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass

from ..config import ModelLimits, Settings
from ..errors import ConfigurationError
from ..models import ProviderType

__all__ = ["BUILT_IN_MODELS", "PROVIDER_DEFAULTS", "ModelInfo", "ModelRegistry"]

CLAUDE_TOKEN_FACTOR = 1.2
GEMINI_TOKEN_FACTOR = 1.05


@dataclass(frozen=True, slots=True)
class ModelInfo:
    """One model. Tokens are counted with `encoding` (exact for OpenAI models) times
    `token_factor` (an estimate for the others).

    `known` is False for a provider's default standing in for a model not in the registry.
    """

    name: str
    provider: ProviderType
    context_window: int
    max_output: int
    encoding: str = "o200k_base"
    token_factor: float = 1.0
    mid_conversation_system: bool = False
    thought_signatures_required: bool = False
    known: bool = True
    input_per_mtok: float | None = None
    """US dollars per million input tokens not read from or written to a prompt cache."""
    output_per_mtok: float | None = None
    """US dollars per million output tokens (reasoning included)."""
    cache_read_per_mtok: float | None = None
    """Per million input tokens read from the prompt cache (None: the input price)."""
    cache_write_per_mtok: float | None = None
    """Per million input tokens written to the prompt cache (None: the input price)."""

    def cost_usd(
        self, input_tokens: int, output_tokens: int, cache_read: int = 0, cache_write: int = 0
    ) -> float | None:
        """What a call cost at the listed prices (None: the model has none). `input_tokens`
        counts the cached ones too, as the OpenTelemetry convention has it."""
        if self.input_per_mtok is None or self.output_per_mtok is None:
            return None
        read = self.input_per_mtok if self.cache_read_per_mtok is None else self.cache_read_per_mtok
        write = (
            self.input_per_mtok if self.cache_write_per_mtok is None else self.cache_write_per_mtok
        )
        uncached = max(0, input_tokens - cache_read - cache_write)
        dollars = (
            uncached * self.input_per_mtok
            + cache_read * read
            + cache_write * write
            + output_tokens * self.output_per_mtok
        )
        return round(dollars / 1_000_000, 9)


_Price = tuple[float, float, float | None, float | None]
"""Input, output, cache read and cache write, US dollars per million tokens."""


def _priced(info: ModelInfo, price: _Price) -> ModelInfo:
    given, answered, read, write = price
    return dataclasses.replace(
        info,
        input_per_mtok=given,
        output_per_mtok=answered,
        cache_read_per_mtok=read,
        cache_write_per_mtok=write,
    )


def _claude(
    name: str,
    window: int,
    output: int,
    *,
    mid_system: bool = False,
    price: tuple[float, float] | None = None,
    cache_read_share: float = 0.1,
) -> ModelInfo:
    """A Claude model; its prompt cache reads cost `cache_read_share` of the input price,
    and writes (five-minute) 1.25 times it."""
    info = ModelInfo(
        name,
        ProviderType.ANTHROPIC,
        window,
        output,
        token_factor=CLAUDE_TOKEN_FACTOR,
        mid_conversation_system=mid_system,
    )
    if price is None:
        return info
    given, answered = price
    return _priced(info, (given, answered, given * cache_read_share, given * 1.25))


def _gpt(
    name: str,
    window: int,
    output: int,
    encoding: str = "o200k_base",
    *,
    price: tuple[float, float, float | None] | None = None,
) -> ModelInfo:
    """An OpenAI model: cached input at its own price, no surcharge for writing it."""
    info = ModelInfo(name, ProviderType.OPENAI, window, output, encoding=encoding)
    return info if price is None else _priced(info, (*price, None))


def _gemini(
    name: str,
    output: int = 65_536,
    *,
    signatures: bool = False,
    price: tuple[float, float, float] | None = None,
) -> ModelInfo:
    """A Gemini model, priced at its tier for prompts up to 200k tokens."""
    info = ModelInfo(
        name,
        ProviderType.GOOGLE,
        1_048_576,
        output,
        token_factor=GEMINI_TOKEN_FACTOR,
        thought_signatures_required=signatures,
    )
    return info if price is None else _priced(info, (*price, None))


# The specification's windows, for a provider whose model is not given or not known.
PROVIDER_DEFAULTS: dict[ProviderType, ModelInfo] = {
    ProviderType.ANTHROPIC: _claude("claude", 100_000, 8_192),
    ProviderType.OPENAI: _gpt("gpt", 128_000, 16_384),
    ProviderType.GOOGLE: dataclasses.replace(_gemini("gemini", 8_192), context_window=1_000_000),
}

_MILLION = 1_000_000
# Prices as the providers published them in 2026, in US dollars per million tokens, the
# lowest tier where a price depends on the prompt's length; CONTEXT_MODELS overrides them.
# A model without one records calls without a cost.
BUILT_IN_MODELS: tuple[ModelInfo, ...] = (
    _claude("claude-opus-5-5", _MILLION, 128_000, mid_system=True),
    _claude("claude-opus-5", _MILLION, 128_000, mid_system=True, price=(5, 25)),
    _claude(
        "claude-sonnet-5-5",
        _MILLION,
        128_000,
        mid_system=True,
        price=(2, 10),
        cache_read_share=0.05,
    ),
    _claude("claude-sonnet-5", _MILLION, 128_000, mid_system=True, price=(2, 10)),
    _claude("claude-haiku-5-5", _MILLION, 128_000, mid_system=True),
    _claude("claude-opus-4-8", _MILLION, 128_000, mid_system=True, price=(5, 25)),
    _claude("claude-opus-4-7", _MILLION, 128_000, price=(5, 25)),
    _claude("claude-opus-4-6", _MILLION, 128_000, price=(5, 25)),
    _claude("claude-sonnet-4-6", _MILLION, 128_000, price=(3, 15)),
    _claude("claude-opus-4-5", 200_000, 64_000, price=(5, 25)),
    _claude("claude-sonnet-4-5", 200_000, 64_000, price=(3, 15)),
    _claude("claude-haiku-4-5", 200_000, 64_000, price=(1, 5)),
    _claude("claude-opus-4-1", 200_000, 32_000, price=(15, 75)),
    _claude("claude-sonnet-4", 200_000, 64_000, price=(3, 15)),
    _claude("claude-3-7-sonnet", 200_000, 64_000, price=(3, 15)),
    _gpt("gpt-5.2", 400_000, 128_000, price=(1.75, 14, 0.175)),
    _gpt("gpt-5.1", 400_000, 128_000, price=(1.25, 10, 0.125)),
    _gpt("gpt-5", 400_000, 128_000, price=(1.25, 10, 0.125)),
    _gpt("gpt-5-mini", 400_000, 128_000, price=(0.25, 2, 0.025)),
    _gpt("gpt-5-nano", 400_000, 128_000, price=(0.05, 0.4, 0.005)),
    _gpt("gpt-4.1", 1_047_576, 32_768, price=(2, 8, 0.5)),
    _gpt("gpt-4.1-mini", 1_047_576, 32_768, price=(0.4, 1.6, 0.1)),
    _gpt("gpt-4.1-nano", 1_047_576, 32_768, price=(0.1, 0.4, 0.025)),
    _gpt("gpt-4o", 128_000, 16_384, price=(2.5, 10, 1.25)),
    _gpt("gpt-4o-mini", 128_000, 16_384, price=(0.15, 0.6, 0.075)),
    _gpt("o1", 200_000, 100_000, price=(15, 60, 7.5)),
    _gpt("o3", 200_000, 100_000, price=(2, 8, 0.5)),
    _gpt("o3-mini", 200_000, 100_000, price=(1.1, 4.4, 0.55)),
    _gpt("o4-mini", 200_000, 100_000, price=(1.1, 4.4, 0.275)),
    _gpt("gpt-4-turbo", 128_000, 4_096, "cl100k_base", price=(10, 30, None)),
    _gpt("gpt-4", 8_192, 4_096, "cl100k_base", price=(30, 60, None)),
    _gpt("gpt-3.5-turbo", 16_385, 4_096, "cl100k_base", price=(0.5, 1.5, None)),
    _gemini("gemini-3.5-flash", signatures=True),
    _gemini("gemini-3.1-pro-preview", signatures=True),
    _gemini("gemini-3-pro-preview", signatures=True, price=(2, 12, 0.2)),
    _gemini("gemini-3-flash-preview", signatures=True, price=(0.5, 3, 0.05)),
    _gemini("gemini-2.5-pro", price=(1.25, 10, 0.125)),
    _gemini("gemini-2.5-flash", price=(0.3, 2.5, 0.03)),
    _gemini("gemini-2.5-flash-lite", price=(0.1, 0.4, 0.01)),
    _gemini("gemini-2.0-flash", 8_192, price=(0.1, 0.4, 0.025)),
)


def _bare(model: str) -> str:
    """`models/gemini-2.5-pro` and `openai/gpt-4o` name the models after the slash."""
    return model.rsplit("/", 1)[-1].lower()


class ModelRegistry:
    """The models translation knows, with entries of ``CONTEXT_MODELS`` on top.

    A dated or suffixed name finds its model by the longest registered prefix
    (``claude-sonnet-4-5-20250929`` is ``claude-sonnet-4-5``); an unknown name gets its
    provider's default limits (Anthropic 100k, OpenAI 128k, Gemini 1M).
    """

    def __init__(
        self,
        models: Iterable[ModelInfo] = BUILT_IN_MODELS,
        overrides: Mapping[str, ModelLimits] | None = None,
    ) -> None:
        self._models = {info.name: info for info in models}
        for name, limits in (overrides or {}).items():
            self._models[name] = self._overridden(name, limits)

    @classmethod
    def from_settings(cls, settings: Settings) -> ModelRegistry:
        return cls(overrides=settings.models)

    def _overridden(self, name: str, limits: ModelLimits) -> ModelInfo:
        base = self._models.get(name)
        given = limits.model_dump(exclude_none=True)
        if "provider" in given:
            given["provider"] = ProviderType(given["provider"])
        if base is None:
            if limits.provider is None:
                raise ConfigurationError(
                    f"CONTEXT_MODELS: {name!r} is a new model; give its provider"
                )
            base = dataclasses.replace(PROVIDER_DEFAULTS[ProviderType(limits.provider)], name=name)
        return dataclasses.replace(base, **given)

    def __iter__(self) -> Iterator[ModelInfo]:
        return iter(self._models.values())

    def get(self, provider: ProviderType | str, model: str | None = None) -> ModelInfo:
        """The model's entry, or the provider's default named after it."""
        provider = ProviderType(provider)
        default = PROVIDER_DEFAULTS[provider]
        if model is None:
            return default
        wanted = _bare(model)
        best: ModelInfo | None = None
        for info in self._models.values():
            name = info.name.lower()
            matches = wanted == name or (wanted.startswith(name) and wanted[len(name)] in "-@:")
            if (
                info.provider is provider
                and matches
                and (best is None or len(name) > len(best.name))
            ):
                best = info
        if best is None:
            return dataclasses.replace(default, name=model, known=False)
        return best

    def provider_of(self, model: str) -> ProviderType | None:
        """The provider of a model the registry knows by that name, else None."""
        for provider in ProviderType:
            if self.get(provider, model).known:
                return provider
        return None

    def same_model(self, provider: ProviderType, first: str, second: str) -> bool:
        """Whether two names are one model (snapshots and prefixes aside)."""
        a, b = self.get(provider, first), self.get(provider, second)
        return (a.name if a.known else _bare(first)) == (b.name if b.known else _bare(second))
