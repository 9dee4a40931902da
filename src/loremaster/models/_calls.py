"""Calls to AI providers recorded into a context: what one recording stored, and a call as
listed afterwards."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from ._contexts import ProviderType
from ._messages import Message
from ._time import UtcDatetime

__all__ = ["ProviderCall", "RecordedCall"]


class RecordedCall(BaseModel):
    """One call to a provider as loremaster recorded it (or failed to).

    ``call`` is the call's record, the reply's ``metadata["call"]``: provider, models,
    usage, latency, cost, error (docs/calls.md). ``branch`` is where it went: a request
    whose history departed from the stored one starts a new branch, and
    ``branched_from`` names the branch it departed from.
    """

    model_config = ConfigDict(frozen=True)

    context_id: str
    branch: str
    provider: ProviderType
    model: str = Field(description="the model asked for")
    call: dict[str, Any]
    reply: Message | None = Field(None, description="the reply as stored; None if it failed")
    message_ids: list[str] = Field(
        default_factory=list, description="the messages the call stored, the reply last"
    )
    revision: int | None = Field(None, description="the context's revision after it")
    branched_from: str | None = None
    recorded: bool = True
    record_error: str | None = Field(None, description="why the call could not be recorded")


class ProviderCall(BaseModel):
    """A recorded call as `ContextManager.get_calls` lists it."""

    model_config = ConfigDict(frozen=True)

    call_id: str
    context_id: str
    branch: str
    message_id: str | None = Field(description="the reply's id; None for a failed call")
    created_at: UtcDatetime
    provider: ProviderType
    model: str
    input_tokens: int
    output_tokens: int
    cost_usd: float | None
    latency_ms: float
    failed: bool
    call: dict[str, Any]
