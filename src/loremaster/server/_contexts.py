"""Contexts: create, read, change (merge patch or JSON Patch, If-Match), delete, restore,
list and search."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from starlette.responses import Response

from ..errors import RevisionConflict
from ..models import ConflictStrategy, Context, ContextState, ContextType, OrderBy, ProviderType
from ._fencing import FenceDep
from ._http import (
    JSON_PATCH,
    etag,
    expected_revision,
    json_body,
    json_response,
    object_body,
    request_body,
)
from ._openapi import OBJECT_BODY, PATCH_BODY
from ._problems import ApiError
from ._rest import ERRORS
from ._service import CallerDep, ManagerDep

__all__ = ["context_response", "router"]

router = APIRouter(prefix="/v1", tags=["contexts"], responses=ERRORS)

STALE_HEADER = "X-Loremaster-Stale"
"""Set on an answer served from this process's cache while the database is unreachable."""

Branch = Annotated[str, Query(min_length=1, max_length=200)]


def context_response(context: Context, status: int = 200) -> Response:
    headers = etag(context.revision)
    if context.stale:
        headers[STALE_HEADER] = "true"
    return json_response(context, status, headers)


@router.post("/contexts", status_code=201, openapi_extra=OBJECT_BODY)
async def create_context(
    request: Request,
    manager: ManagerDep,
    caller: CallerDep,
    source: ProviderType | None = None,
) -> Response:
    """Store a new context; ``context_type`` picks its type. Messages may be in any
    provider's shape (``source`` names it, else each is detected)."""
    body = object_body(await json_body(request), "a context")
    context_id = await manager.create_context(body, caller.user_id, source=source)
    context = await manager.get_context(context_id, caller.user_id, include_messages=False)
    response = context_response(context, 201)
    response.headers["Location"] = f"/v1/contexts/{context_id}"
    return response


@router.get("/contexts/{context_id}")
async def get_context(
    request: Request,
    context_id: str,
    manager: ManagerDep,
    caller: CallerDep,
    include_messages: bool = True,
    include_deleted: bool = False,
    branch: Branch = "main",
) -> Response:
    """The context; ``ETag`` is its revision (``If-None-Match`` answers 304 while it
    holds)."""
    context = await manager.get_context(
        context_id,
        caller.user_id,
        include_messages=include_messages,
        include_deleted=include_deleted,
        branch=branch,
    )
    tag = etag(context.revision)
    if request.headers.get("if-none-match") == tag["ETag"] and not context.stale:
        return Response(status_code=304, headers=tag)
    return context_response(context)


@router.patch("/contexts/{context_id}", openapi_extra=PATCH_BODY)
async def update_context(
    request: Request,
    context_id: str,
    manager: ManagerDep,
    fence: FenceDep,
    branch: Branch = "main",
    strategy: ConflictStrategy | None = None,
) -> Response:
    """Change the context: a JSON object is an RFC 7396 merge patch, a
    ``application/json-patch+json`` array an RFC 6902 patch. ``If-Match: "<revision>"``
    makes a stale write fail with 412, or, with ``strategy``, go to that conflict
    strategy."""
    media_type, body = await request_body(request)
    changes: Any = body if media_type == JSON_PATCH else object_body(body, "a merge patch")
    if media_type == JSON_PATCH and not isinstance(body, list):
        raise ApiError(422, "validation_failed", "a JSON Patch body is an array of operations")
    expected = expected_revision(request)
    try:
        context = await manager.update_context(
            context_id,
            changes,
            fence.user_id,
            expected,
            branch=branch,
            strategy=strategy,
            settle=strategy is not None,
            lock_token=fence.lock_token,
        )
    except RevisionConflict as exc:
        if strategy is not None:
            raise
        raise ApiError(
            412,
            "precondition_failed",
            exc.message,
            {"expected_revision": exc.expected_revision, "actual_revision": exc.actual_revision},
        ) from exc
    return context_response(context)


@router.delete("/contexts/{context_id}", status_code=204)
async def delete_context(
    context_id: str, manager: ManagerDep, fence: FenceDep, hard: bool = False
) -> Response:
    """Soft delete (restorable), or with ``hard=true`` remove it for good."""
    await manager.delete_context(
        context_id, fence.user_id, hard_delete=hard, lock_token=fence.lock_token
    )
    return Response(status_code=204)


@router.post("/contexts/{context_id}/restore")
async def restore_context(context_id: str, manager: ManagerDep, fence: FenceDep) -> Response:
    """Bring a soft-deleted context back."""
    restored = await manager.restore_context(context_id, fence.user_id, lock_token=fence.lock_token)
    return context_response(restored)


@router.get("/contexts")
async def list_contexts(
    manager: ManagerDep,
    caller: CallerDep,
    context_type: ContextType | None = None,
    state: ContextState | None = None,
    owner_id: str | None = None,
    collaborator: str | None = None,
    title_contains: str | None = None,
    order_by: OrderBy = "last_modified",
    descending: bool = True,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
    cursor: str | None = None,
) -> Response:
    """One page of the contexts the caller may read (messages not included); pass
    ``next_cursor`` as ``cursor`` for the next."""
    filters = {
        "context_type": context_type,
        "state": state,
        "owner_id": owner_id,
        "collaborator": collaborator,
        "title_contains": title_contains,
        "order_by": order_by,
        "descending": descending,
        "limit": limit,
        "offset": offset,
        "cursor": cursor,
    }
    given = {key: value for key, value in filters.items() if value is not None}
    page = await manager.query_contexts(None, caller.user_id, **given)
    return json_response({"items": list(page.items), "next_cursor": page.next_cursor})


@router.get("/search")
async def search_contexts(
    manager: ManagerDep,
    caller: CallerDep,
    q: Annotated[str, Query(min_length=1, max_length=1000)],
    limit: Annotated[int, Query(ge=1, le=200)] = 20,
    branch: Branch = "main",
) -> Response:
    """Full-text search over titles, descriptions and messages; one hit per context,
    best first."""
    return json_response(await manager.search_contexts(q, caller.user_id, limit, branch=branch))
