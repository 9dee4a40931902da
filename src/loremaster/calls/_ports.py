"""What calls needs of translation, which the manager wires in (a service never imports
another): reading a provider's body fragment, and the model registry."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from ..models import Message, ProviderType

__all__ = ["PricedModel", "Translator"]


class PricedModel(Protocol):
    """A model as the registry knows it (translation's `ModelInfo`)."""

    @property
    def known(self) -> bool: ...

    @property
    def max_output(self) -> int: ...

    def cost_usd(
        self, input_tokens: int, output_tokens: int, cache_read: int = 0, cache_write: int = 0
    ) -> float | None: ...


class Translator(Protocol):
    """Reading a provider's body fragment, and the model registry (translation's
    `ContextTranslator`)."""

    def from_provider(
        self, payload: Mapping[str, Any], provider: ProviderType | str, *, model: str | None = None
    ) -> list[Message]: ...

    def model(self, provider: ProviderType | str, model: str | None = None) -> PricedModel: ...
