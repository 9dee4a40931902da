"""What `ContextManager.migrate_context` did."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from ._contexts import ProviderType

__all__ = ["MigrationChange", "MigrationResult"]


class MigrationChange(BaseModel):
    """One thing the translation converted, moved, merged, added or dropped."""

    model_config = ConfigDict(frozen=True)

    code: str
    path: str
    detail: str
    lossless: bool


class MigrationResult(BaseModel):
    """A migration of a conversation to another provider's format.

    With ``migrated`` False the context is untouched and ``reason`` says why.
    """

    model_config = ConfigDict(frozen=True)

    context_id: str
    migrated: bool
    from_provider: ProviderType | None
    to_provider: ProviderType
    model: str | None
    reason: str | None = None
    lossless: bool = True
    changes: list[MigrationChange] = Field(default_factory=list)
    revision: int | None = None
    version_before: str | None = None
    version_after: str | None = None
    messages_before: int = 0
    messages_after: int = 0
    tokens: int = Field(0, description="the migrated conversation's tokens for the target model")
    context_window: int = 0
    fits: bool = Field(
        True, description="the conversation as stored fits the model's window, less the answer"
    )
    removed_to_fit: int = Field(
        0, description="old messages that must go for the conversation to fit the window"
    )
