"""Working together: the edit lock, a room's participants, presence, and the conflicts
waiting for a person. The caller's name is who holds the lock, sits in the room and is
present."""

from __future__ import annotations

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field
from starlette.responses import Response

from ..models import CollaborativeContext, ContextConflict, ContextLock
from ..sync import PresenceEntry
from ._contexts import context_response
from ._fencing import FenceDep
from ._http import json_response
from ._problems import ApiError
from ._rest import ERRORS, RequestBody, created, documented, read
from ._service import CallerDep, ManagerDep

__all__ = ["router"]

router = APIRouter(prefix="/v1/contexts/{context_id}", tags=["collaboration"], responses=ERRORS)


class LockRequest(RequestBody):
    """How long to hold the lock."""

    timeout: float | None = Field(
        None, gt=0, le=366 * 24 * 3600, description="seconds (default CONTEXT_LOCK_TIMEOUT)"
    )


class Presence(RequestBody):
    """What the caller is doing."""

    viewing: str | None = Field(None, max_length=1000, description="what they look at")
    typing: bool = False


class Resolution(RequestBody):
    """The side each path of the conflict takes."""

    resolution: dict[str, str] = Field(
        description='path -> "current" (what was committed), "incoming" (the conflicting '
        'update) or "base"'
    )


class Participants(BaseModel):
    participants: list[str] = Field(description="who sits in the room, in order of joining")
    max_participants: int


def _lock_url(context_id: str) -> str:
    return f"/v1/contexts/{context_id}/lock"


@router.post(
    "/lock", status_code=201, response_model=ContextLock, openapi_extra=documented(LockRequest)
)
async def acquire_lock(
    request: Request, context_id: str, manager: ManagerDep, caller: CallerDep
) -> Response:
    """Take the context's edit lock for ``timeout`` seconds. While it lasts, anyone
    else's write is refused (423 ``lock_held``); the holder sends ``token`` as the
    ``Lock-Token`` header of its writes, which are refused (423 ``lock_lost``) once the
    lease has expired or been taken over. Taking it again extends it."""
    given = await read(request, LockRequest)
    lock = await manager.acquire_context_lock(context_id, caller.name, given.timeout)
    return created(lock, _lock_url(context_id))


@router.post("/lock/renew", response_model=ContextLock, openapi_extra=documented(LockRequest))
async def renew_lock(
    request: Request, context_id: str, manager: ManagerDep, caller: CallerDep, fence: FenceDep
) -> Response:
    """Extend the lock the caller holds (423 ``lock_lost`` if it has lapsed, or with
    ``Lock-Token``, if it is not that token's lock)."""
    given = await read(request, LockRequest)
    renewed = await manager.renew_context_lock(
        context_id, caller.name, given.timeout, lock_token=fence.lock_token
    )
    return json_response(renewed)


@router.delete("/lock", status_code=204)
async def release_lock(
    context_id: str, manager: ManagerDep, caller: CallerDep, fence: FenceDep
) -> Response:
    """Give the lock up (nothing happens if the caller does not hold it; with
    ``Lock-Token``, 423 ``lock_lost`` unless it is that token's lock, live)."""
    await manager.release_context_lock(context_id, caller.name, lock_token=fence.lock_token)
    return Response(status_code=204)


@router.post("/participants", status_code=201)
async def join_room(context_id: str, manager: ManagerDep, caller: CallerDep) -> Response:
    """Sit the caller at a collaborative room's table: a participant, a member who may
    read and write, and present. Open rooms take anyone with their id while seats
    remain; members-only rooms take users who may already read. Answers the room."""
    room = await manager.join_collaborative_session(context_id, caller.name)
    response = context_response(room, 201)
    response.headers["Location"] = f"/v1/contexts/{context_id}/participants/me"
    return response


@router.delete("/participants/me", status_code=204)
async def leave_room(context_id: str, manager: ManagerDep, caller: CallerDep) -> Response:
    """Take the caller off the room's participants (they stay a member) and out of its
    presence; a lock they hold is released."""
    await manager.leave_collaborative_session(context_id, caller.name)
    return Response(status_code=204)


@router.get("/participants", response_model=Participants)
async def list_participants(context_id: str, manager: ManagerDep, caller: CallerDep) -> Response:
    """Who sits in the room (404 ``not_a_room`` for a context that is not one)."""
    room = await manager.get_context(context_id, caller.user_id, include_messages=False)
    if not isinstance(room, CollaborativeContext):
        raise ApiError(404, "not_a_room", f"context {context_id} is not a collaborative room")
    return json_response(
        Participants(participants=room.active_participants, max_participants=room.max_participants)
    )


@router.put("/presence/me", response_model=PresenceEntry, openapi_extra=documented(Presence))
async def set_presence(
    request: Request, context_id: str, manager: ManagerDep, caller: CallerDep
) -> Response:
    """A heartbeat: the caller is here, looking at ``viewing``, typing or not. It lapses
    after 30 seconds without another; it makes no revision."""
    given = await read(request, Presence)
    entry = await manager.update_presence(context_id, caller.name, given.viewing, given.typing)
    return json_response(entry)


@router.get("/presence", response_model=list[PresenceEntry])
async def get_presence(context_id: str, manager: ManagerDep, caller: CallerDep) -> Response:
    """Who is present now, and what they view or type."""
    return json_response(await manager.get_presence(context_id, caller.user_id))


@router.get("/conflicts", response_model=list[ContextConflict])
async def list_conflicts(context_id: str, manager: ManagerDep, caller: CallerDep) -> Response:
    """The conflicts waiting for a person (strategies manual_merge and user_choice),
    oldest first."""
    return json_response(await manager.list_conflicts(context_id, caller.user_id))


@router.post("/conflicts/{conflict_id}/resolve", openapi_extra=documented(Resolution))
async def resolve_conflict(
    request: Request,
    context_id: str,
    conflict_id: str,
    manager: ManagerDep,
    caller: CallerDep,
    fence: FenceDep,
) -> Response:
    """Settle a conflict of this context: each of its paths takes the side given.
    Answers the context, its revision as ``ETag``."""
    given = await read(request, Resolution)
    waiting = await manager.list_conflicts(context_id, caller.user_id)
    if conflict_id not in {conflict.conflict_id for conflict in waiting}:
        raise ApiError(
            404, "conflict_not_found", f"context {context_id} has no conflict {conflict_id}"
        )
    context = await manager.resolve_conflict(
        conflict_id, given.resolution, fence.user_id, lock_token=fence.lock_token
    )
    return context_response(context)
