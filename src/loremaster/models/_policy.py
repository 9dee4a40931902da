"""Who wrote an update and how a context settles conflicting ones: the vocabulary of
the conflict strategies (`loremaster.sync` applies them)."""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict, model_validator

__all__ = ["ConflictPolicy", "ConflictStrategy", "UpdateOrigin"]


class ConflictStrategy(StrEnum):
    """The specification's five strategies. The values are stored: they never change."""

    LATEST_WINS = "latest_wins"
    """The incoming update wins every path both sides changed."""
    MANUAL_MERGE = "manual_merge"
    """Conflicting paths keep their current value and are recorded for a person to resolve."""
    PROVIDER_PRIORITY = "provider_priority"
    """The higher-ranked origin wins each conflicting path; a tie goes to the fallback."""
    USER_CHOICE = "user_choice"
    """Like MANUAL_MERGE, with the choices offered to one named user."""
    AUTOMATIC_MERGE = "automatic_merge"
    """Changes to different paths merge; conflicting paths go to the fallback."""


_FALLBACKS = (
    ConflictStrategy.LATEST_WINS,
    ConflictStrategy.MANUAL_MERGE,
    ConflictStrategy.USER_CHOICE,
)


class UpdateOrigin(BaseModel):
    """Who wrote a change: a user, or an AI provider (acting for a user or not)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    user_id: str | None = None
    provider: str | None = None

    @model_validator(mode="after")
    def _someone(self) -> UpdateOrigin:
        if self.user_id is None and self.provider is None:
            raise ValueError("an origin names a user_id, a provider, or both")
        return self

    @property
    def rank_name(self) -> str:
        """The name a provider ranking lists: the provider's, or "user" for a person."""
        return self.provider if self.provider is not None else "user"


class ConflictPolicy(BaseModel):
    """A context's conflict strategy and its settings.

    ``fallback`` decides the conflicting paths that AUTOMATIC_MERGE leaves open and the
    ties of PROVIDER_PRIORITY: LATEST_WINS, MANUAL_MERGE, USER_CHOICE, or None to refuse
    the update with `RevisionConflict`. ``provider_ranking`` lists origins best first:
    provider names, and "user" for updates people wrote; an unlisted origin ranks last.
    ``chooser`` is the user USER_CHOICE offers the choices to (default: the user behind
    the incoming update).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    strategy: ConflictStrategy = ConflictStrategy.AUTOMATIC_MERGE
    fallback: ConflictStrategy | None = None
    provider_ranking: tuple[str, ...] = ()
    chooser: str | None = None
    identity_key: str = "id"

    @model_validator(mode="after")
    def _fallback_decides(self) -> ConflictPolicy:
        if self.fallback is not None and self.fallback not in _FALLBACKS:
            raise ValueError(
                f"fallback must be one of {', '.join(s.name for s in _FALLBACKS)} or None"
            )
        return self

    def rank(self, origin: UpdateOrigin | None) -> int:
        """Lower is stronger; unknown and unlisted origins rank after every listed one."""
        if origin is not None and origin.rank_name in self.provider_ranking:
            return self.provider_ranking.index(origin.rank_name)
        return len(self.provider_ranking)
