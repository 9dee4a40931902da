"""Versions (create, history, get one, diff, roll back) and branches (create, list,
merge)."""

from __future__ import annotations

from typing import Annotated, Literal
from urllib.parse import quote

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field
from starlette.responses import Response

from ..models import Branch, ContextVersion, MergeResult, VersionDiff
from ._contexts import context_response
from ._fencing import FenceDep
from ._http import json_response
from ._problems import ApiError
from ._rest import ERRORS, RequestBody, created, documented, read
from ._service import CallerDep, ManagerDep

__all__ = ["router"]

router = APIRouter(prefix="/v1/contexts/{context_id}", tags=["versions"], responses=ERRORS)

Text = Annotated[str, Query(min_length=1, max_length=200)]


class NewVersion(RequestBody):
    """A version to record."""

    message: str = Field("", max_length=10_000, description="what this version is")
    tags: list[str] = Field(default_factory=list, description="tagged versions are kept")
    branch: str = Field("main", min_length=1, max_length=200)


class VersionPage(BaseModel):
    items: list[ContextVersion] = Field(description="newest first")
    next_before: int | None = Field(
        description="pass as before for the page after this one; null when none is"
    )


class Rollback(RequestBody):
    """The version to bring a branch back to."""

    version_id: str = Field(min_length=1, max_length=200)
    branch: str = Field("main", min_length=1, max_length=200)


class NewBranch(RequestBody):
    """A branch to start."""

    name: str = Field(min_length=1, max_length=100)
    from_version_id: str | None = Field(
        None, max_length=200, description="the version it starts at (default: main as it is)"
    )


class Merge(RequestBody):
    """Where to merge a branch, and who wins a path both sides changed."""

    target: str = Field("main", min_length=1, max_length=200)
    strategy: Literal["fail", "source", "target"] = Field(
        "fail", description="fail: write nothing and answer 409 with the conflicts"
    )


def _branch_url(context_id: str, name: str) -> str:
    return f"/v1/contexts/{context_id}?branch={quote(name, safe='')}"


@router.post(
    "/versions",
    status_code=201,
    response_model=ContextVersion,
    openapi_extra=documented(NewVersion),
)
async def create_version(
    request: Request, context_id: str, manager: ManagerDep, fence: FenceDep
) -> Response:
    """Record the context (fields and messages) as it is now on ``branch``: a
    checkpoint to list, diff, branch from or roll back to."""
    given = await read(request, NewVersion)
    version = await manager.create_version(
        context_id,
        fence.user_id,
        given.message,
        given.tags,
        branch=given.branch,
        lock_token=fence.lock_token,
    )
    return created(version, f"/v1/contexts/{context_id}/versions/{version.version_id}")


@router.get("/versions", response_model=VersionPage)
async def version_history(
    context_id: str,
    manager: ManagerDep,
    caller: CallerDep,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
    before: Annotated[int | None, Query(ge=0)] = None,
    branch: Annotated[str | None, Query(min_length=1, max_length=200)] = None,
    tag: Annotated[str | None, Query(min_length=1, max_length=200)] = None,
) -> Response:
    """Versions newest first, metadata only; ``next_before`` pages back. Filter by
    ``branch`` or ``tag``."""
    versions = await manager.get_version_history(
        context_id, caller.user_id, limit, before=before, branch=branch, tag=tag
    )
    last = versions[-1].number if len(versions) == limit else None
    return json_response(VersionPage(items=versions, next_before=last))


@router.get("/versions/{version_id}")
async def get_version(
    context_id: str,
    version_id: str,
    manager: ManagerDep,
    caller: CallerDep,
    include_messages: bool = True,
) -> Response:
    """The context as it was at the version: its fields, and its messages up to the
    version's ``message_seq``."""
    context = await manager.get_version(context_id, version_id, caller.user_id, include_messages)
    return json_response(context)


@router.get("/diff", response_model=VersionDiff)
async def diff_versions(
    context_id: str, a: Text, b: Text, manager: ManagerDep, caller: CallerDep
) -> Response:
    """What changed from version ``a`` to version ``b``: a JSON Patch over the fields
    and the messages ``b`` has that ``a`` lacks."""
    return json_response(await manager.diff_versions(context_id, a, b, caller.user_id))


@router.post("/rollback", openapi_extra=documented(Rollback))
async def rollback(
    request: Request, context_id: str, manager: ManagerDep, fence: FenceDep
) -> Response:
    """Bring ``branch`` back to a version's fields and messages, as a new revision and a
    new version (nothing is deleted); answers the context, its revision as ``ETag``."""
    given = await read(request, Rollback)
    context = await manager.rollback_to_version(
        context_id,
        given.version_id,
        fence.user_id,
        branch=given.branch,
        lock_token=fence.lock_token,
    )
    return context_response(context)


@router.post(
    "/branches", status_code=201, response_model=Branch, openapi_extra=documented(NewBranch)
)
async def create_branch(
    request: Request, context_id: str, manager: ManagerDep, fence: FenceDep
) -> Response:
    """Start a branch at a version (default: main as it is now); nothing is copied.
    ``Location`` is the context as the branch has it."""
    given = await read(request, NewBranch)
    branch = await manager.create_branch(
        context_id, given.name, given.from_version_id, fence.user_id, lock_token=fence.lock_token
    )
    return created(branch, _branch_url(context_id, branch.name))


@router.get("/branches", response_model=list[Branch])
async def list_branches(context_id: str, manager: ManagerDep, caller: CallerDep) -> Response:
    """Every branch of the context, main first."""
    return json_response(await manager.list_branches(context_id, caller.user_id))


@router.post(
    "/branches/{name:path}/merge", response_model=MergeResult, openapi_extra=documented(Merge)
)
async def merge_branch(
    request: Request, context_id: str, name: str, manager: ManagerDep, fence: FenceDep
) -> Response:
    """Merge branch ``name`` into ``target``: a three-way merge of the fields and the
    branch's new messages appended. A path both sides changed differently is a
    conflict: with strategy ``fail`` nothing is written and the answer is 409
    ``merge_conflict`` listing them; ``source`` or ``target`` says which side wins."""
    given = await read(request, Merge)
    result = await manager.merge_branch(
        context_id, name, given.target, fence.user_id, given.strategy, lock_token=fence.lock_token
    )
    if not result.merged:
        conflicts = [conflict.model_dump(mode="json") for conflict in result.conflicts]
        raise ApiError(
            409,
            "merge_conflict",
            f"branch {name!r} and {given.target!r} changed the same paths differently",
            {"conflicts": conflicts},
        )
    return json_response(result)
