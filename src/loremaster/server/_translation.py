"""A conversation for a provider: exported as that provider's request body, or migrated
to its format for good."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from pydantic import Field
from starlette.responses import Response

from ..models import MigrationResult, ProviderType
from ._contexts import Branch
from ._fencing import FenceDep
from ._http import json_response
from ._rest import ERRORS, RequestBody, documented, read
from ._service import CallerDep, ManagerDep

__all__ = ["router"]

router = APIRouter(prefix="/v1/contexts/{context_id}", tags=["translation"], responses=ERRORS)


class MigrationOptions(RequestBody):
    """How to migrate (docs/library.md)."""

    model: str | None = Field(None, min_length=1, max_length=200, description="the target model")
    preserve_history: bool = True
    fit: bool = Field(True, description="drop the oldest messages that do not fit the window")
    reserve_output: int | None = Field(
        None, ge=0, le=10_000_000, description="tokens of the window kept for the answer"
    )
    on_loss: Literal["convert", "refuse"] = Field(
        "convert", description="refuse: migrate nothing if anything would be lost"
    )


class Migration(RequestBody):
    """The formats to migrate between, and how."""

    to_provider: ProviderType | None = Field(
        None, description="the target (default: the conversation's primary_provider)"
    )
    from_provider: ProviderType | None = Field(
        None, description="the format it is in now (default: detected)"
    )
    options: MigrationOptions = Field(default_factory=MigrationOptions)
    branch: str = Field("main", min_length=1, max_length=200)


@router.get("/export", response_model=dict[str, Any])
async def export_for_provider(
    context_id: str,
    provider: ProviderType,
    manager: ManagerDep,
    caller: CallerDep,
    model: Annotated[str | None, Query(min_length=1, max_length=200)] = None,
    fit: bool = True,
    reserve_output: Annotated[int | None, Query(ge=0, le=10_000_000)] = None,
    branch: Branch = "main",
) -> Response:
    """The conversation as a ready request body fragment for ``provider`` (Anthropic
    ``{"system", "messages"}``, OpenAI ``{"messages"}``, Gemini ``{"system_instruction",
    "contents"}``), fitted to ``model``'s window (less ``reserve_output`` tokens) unless
    ``fit=false``."""
    payload = await manager.export_for_provider(
        context_id,
        provider,
        caller.user_id,
        model,
        branch=branch,
        fit=fit,
        reserve_output=reserve_output,
    )
    return json_response(payload)


@router.post("/migrate", response_model=MigrationResult, openapi_extra=documented(Migration))
async def migrate(
    request: Request, context_id: str, manager: ManagerDep, fence: FenceDep
) -> Response:
    """Convert the conversation to another provider's format in one change (a version
    before and after; never half-migrated). With ``migrated: false`` nothing changed and
    ``reason`` says why."""
    given = await read(request, Migration)
    result = await manager.migrate_context(
        context_id,
        given.from_provider,
        given.to_provider,
        given.options.model_dump(exclude_unset=True),
        fence.user_id,
        branch=given.branch,
        lock_token=fence.lock_token,
    )
    return json_response(result)
