"""Contexts: the base `Context` of the spec and its three typed kinds."""

from __future__ import annotations

from enum import StrEnum
from typing import Any, ClassVar, Literal
from uuid import UUID, uuid4

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationInfo,
    ValidatorFunctionWrapHandler,
    field_validator,
    model_validator,
)

from ._messages import Message, MessageRole, source_of, validate_message_list
from ._policy import ConflictPolicy
from ._time import UtcDatetime, utc_now

__all__ = [
    "CollaborativeContext",
    "Context",
    "ContextState",
    "ContextType",
    "ConversationContext",
    "Permission",
    "ProviderType",
    "SessionContext",
    "context_class",
    "count_turns",
]


class ContextType(StrEnum):
    GENERIC = "generic"
    CONVERSATION = "conversation"
    SESSION = "session"
    COLLABORATIVE = "collaborative"


class ContextState(StrEnum):
    ACTIVE = "active"
    ARCHIVED = "archived"
    DELETED = "deleted"


class Permission(StrEnum):
    READ = "read"
    WRITE = "write"
    ADMIN = "admin"


class ProviderType(StrEnum):
    ANTHROPIC = "anthropic"
    OPENAI = "openai"
    GOOGLE = "google"

    @classmethod
    def _missing_(cls, value: object) -> ProviderType | None:
        """Names are case-insensitive, and ``gemini`` is another name of ``google``."""
        if not isinstance(value, str):
            return None
        name = value.strip().lower()
        return cls.GOOGLE if name == "gemini" else next((p for p in cls if p.value == name), None)


def _new_context_id() -> str:
    return str(uuid4())


class Context(BaseModel):
    """A durable, versioned piece of state owned by a user and shared with others.

    ``revision`` is 0 until the context is stored, then grows by one per committed change.
    """

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    kind: ClassVar[ContextType] = ContextType.GENERIC

    context_id: str = Field(default_factory=_new_context_id)
    context_type: ContextType = ContextType.GENERIC
    title: str = Field(min_length=1, max_length=1000)
    description: str = Field("", max_length=100_000)
    data: dict[str, Any] = Field(default_factory=dict)
    metadata: dict[str, Any] = Field(default_factory=dict)
    state: ContextState = ContextState.ACTIVE
    owner_id: str | None = None
    collaborators: list[str] = Field(default_factory=list)
    permissions: dict[str, list[Permission]] = Field(default_factory=dict)
    conflict_policy: ConflictPolicy | None = Field(
        None,
        description="how stale updates to this context are settled (None: the default, "
        "automatic_merge falling back to RevisionConflict)",
    )
    revision: int = Field(0, ge=0)
    created_at: UtcDatetime = Field(default_factory=utc_now)
    last_modified: UtcDatetime = Field(default_factory=utc_now)
    last_accessed: UtcDatetime = Field(default_factory=utc_now)

    _stale: bool = PrivateAttr(default=False)

    @property
    def stale(self) -> bool:
        """Whether this was served from a cache while the database was unavailable (it
        may lag behind); False for every normal read. Never stored, never dumped."""
        return self._stale

    def as_stale(self) -> Context:
        """This context, marked as served from a cache (see `stale`)."""
        self._stale = True
        return self

    @field_validator("context_id", mode="before")
    @classmethod
    def _canonical_uuid(cls, value: Any) -> str:
        try:
            return str(value if isinstance(value, UUID) else UUID(str(value)))
        except ValueError as exc:
            raise ValueError(f"context_id must be a UUID, not {value!r}") from exc

    @model_validator(mode="before")
    @classmethod
    def _type_of_class(cls, value: Any) -> Any:
        if isinstance(value, dict) and "context_type" not in value:
            return {**value, "context_type": cls.kind}
        return value

    @model_validator(mode="after")
    def _type_matches_class(self) -> Context:
        if self.context_type != self.kind and type(self) is not Context:
            raise ValueError(f"{type(self).__name__} has context_type {self.kind.value!r}")
        return self


class ConversationContext(Context):
    """A conversation thread: messages with roles, turns and provider settings.

    ``messages`` is the whole history when read with ``include_messages=True`` (the
    default of `get_context`); ``message_count`` and ``turn_count`` are kept by storage.
    """

    kind: ClassVar[ContextType] = ContextType.CONVERSATION

    messages: list[Message] = Field(default_factory=list)
    message_count: int = Field(0, ge=0)
    turn_count: int = Field(0, ge=0, description="user messages so far")
    primary_provider: ProviderType | None = None
    model_parameters: dict[str, Any] = Field(default_factory=dict)
    provider_settings: dict[str, dict[str, Any]] = Field(default_factory=dict)

    @field_validator("messages", mode="wrap")
    @classmethod
    def _read_provider_messages(
        cls, value: Any, handler: ValidatorFunctionWrapHandler, info: ValidationInfo
    ) -> list[Message]:
        """Provider-shaped messages become the neutral messages they hold (one may be
        several); neutral ones are taken as they are."""
        return validate_message_list(value, handler, source_of(info.context), "/messages")


class SessionContext(Context):
    """One user's session: the conversations they have open, preferences and UI state."""

    kind: ClassVar[ContextType] = ContextType.SESSION

    user_id: str | None = None
    active_conversations: list[str] = Field(default_factory=list)
    preferences: dict[str, Any] = Field(default_factory=dict)
    ui_state: dict[str, Any] = Field(default_factory=dict)
    activity_metrics: dict[str, Any] = Field(default_factory=dict)


class CollaborativeContext(Context):
    """A shared room (a game table): participants, shared state and edit locks."""

    kind: ClassVar[ContextType] = ContextType.COLLABORATIVE

    room_id: str | None = None
    active_participants: list[str] = Field(default_factory=list)
    shared_state: dict[str, Any] = Field(default_factory=dict)
    locks: dict[str, Any] = Field(default_factory=dict)
    max_participants: int = Field(50, ge=1)
    join_policy: Literal["open", "members"] = Field(
        "open",
        description="open: anyone with the room's id may join while it has seats; members: "
        "only users who may already read it",
    )

    @model_validator(mode="after")
    def _room_not_overfull(self) -> CollaborativeContext:
        if len(self.active_participants) > self.max_participants:
            raise ValueError(
                f"active_participants has {len(self.active_participants)} entries, "
                f"more than max_participants={self.max_participants}"
            )
        return self


_CLASSES: dict[ContextType, type[Context]] = {
    cls.kind: cls for cls in (Context, ConversationContext, SessionContext, CollaborativeContext)
}


def context_class(context_type: ContextType | str) -> type[Context]:
    """The model class for a context type (raises ValueError for an unknown type)."""
    return _CLASSES[ContextType(context_type)]


def count_turns(messages: list[Message]) -> int:
    return sum(1 for message in messages if message.role is MessageRole.USER)
