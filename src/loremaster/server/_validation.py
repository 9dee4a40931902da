"""Validation without storing: a body checked by the library's validator, and the JSON
Schema of each context type."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Request
from starlette.responses import Response

from ..models import ContextType, ProviderType
from ..validation import ValidationResult, export_schemas, schema_for
from ._http import json_body, json_response
from ._openapi import body
from ._problems import ApiError
from ._rest import ERRORS
from ._service import CallerDep, ManagerDep

__all__ = ["router"]

router = APIRouter(prefix="/v1", tags=["validation"], responses=ERRORS)

_TYPES = [kind.value for kind in ContextType]


_ANY_JSON = body(
    {
        "application/json": {
            "description": "a context as JSON; a value that is not an object is reported "
            "as not valid"
        }
    }
)


@router.post("/validate", response_model=ValidationResult, openapi_extra=_ANY_JSON)
async def validate(
    request: Request,
    manager: ManagerDep,
    caller: CallerDep,
    context_type: ContextType | None = None,
    provider: ProviderType | None = None,
    source: ProviderType | None = None,
) -> Response:
    """Every issue of a context given as JSON (its ``context_type`` picks the type,
    else the query's); nothing is stored. ``provider`` is the target the conversation
    will be sent to (default: its ``primary_provider``); ``source`` the provider whose
    shape its messages are in (default: detected). A session's active conversations are
    looked up as the caller. ``corrected_data`` is the corrected context when
    corrections were made."""
    given = await json_body(request)
    result = await manager.validator.validate_context(
        given,
        context_type,
        provider=provider,
        manager=manager,
        user_id=caller.user_id,
        source=source,
    )
    return json_response(result)


@router.get("/schemas", response_model=dict[str, dict[str, Any]])
async def list_schemas(caller: CallerDep) -> Response:
    """The JSON Schema (draft 2020-12) of every context type, by type."""
    return json_response(export_schemas())


@router.get("/schemas/{context_type}", response_model=dict[str, Any])
async def get_schema(
    context_type: Annotated[
        str, Path(description="a context type", json_schema_extra={"enum": _TYPES})
    ],
    caller: CallerDep,
) -> Response:
    """The JSON Schema (draft 2020-12) of one context type."""
    if context_type not in _TYPES:
        raise ApiError(404, "schema_not_found", f"no context type {context_type!r}")
    return json_response(schema_for(context_type))
