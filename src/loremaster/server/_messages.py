"""A conversation's messages (append, page back) and a context's event log."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field
from starlette.responses import Response

from ..models import ContextEvent, Message, MessageRole, ProviderType
from ._contexts import STALE_HEADER, Branch
from ._fencing import FenceDep
from ._http import etag, json_response
from ._rest import ERRORS, RequestBody, created, documented, read
from ._service import CallerDep, ManagerDep

__all__ = ["router"]

router = APIRouter(prefix="/v1/contexts/{context_id}", tags=["messages"], responses=ERRORS)

Limit = Annotated[int, Query(ge=1, le=1000)]


_SHORTHAND: dict[str, Any] = {
    "type": "object",
    "properties": {
        "role": {"enum": [role.value for role in MessageRole]},
        "content": {"type": "string"},
    },
    "required": ["role", "content"],
    "additionalProperties": False,
}


class NewMessages(RequestBody):
    """Messages to append."""

    messages: list[dict[str, Any]] = Field(
        min_length=1,
        description='each the shorthand {"role": "user", "content": "..."}, a neutral '
        "message, or a message in a provider's own shape (OpenAI, Anthropic, Gemini)",
        json_schema_extra={"items": {"anyOf": [_SHORTHAND, {"type": "object"}]}},
    )


class Appended(BaseModel):
    context_id: str
    branch: str
    revision: int = Field(description="the context's revision after the append")


class MessagePage(BaseModel):
    items: list[Message] = Field(description="oldest first")
    next_before_seq: int | None = Field(
        description="pass as before_seq for the page before this one; null when none is"
    )


class EventPage(BaseModel):
    items: list[ContextEvent] = Field(description="in revision order")
    next_since_revision: int | None = Field(
        description="pass as since_revision for the page after this one; null when none is"
    )


@router.post(
    "/messages", status_code=201, response_model=Appended, openapi_extra=documented(NewMessages)
)
async def append_messages(
    request: Request,
    context_id: str,
    manager: ManagerDep,
    fence: FenceDep,
    source: ProviderType | None = None,
    branch: Branch = "main",
) -> Response:
    """Append messages to a conversation in one change; answers the new revision (also
    the ``ETag``). ``source`` names the provider whose shape the messages are in (else
    each one's is detected); with ``branch``, they go to that branch."""
    given = await read(request, NewMessages)
    revision = await manager.append_messages(
        context_id,
        given.messages,
        fence.user_id,
        branch=branch,
        source=source,
        lock_token=fence.lock_token,
    )
    appended = Appended(context_id=context_id, branch=branch, revision=revision)
    location = f"/v1/contexts/{context_id}/messages?branch={quote(branch, safe='')}"
    return created(appended, location, etag(revision))


@router.get("/messages", response_model=MessagePage)
async def list_messages(
    context_id: str,
    manager: ManagerDep,
    caller: CallerDep,
    limit: Limit = 50,
    before_seq: Annotated[int | None, Query(ge=0)] = None,
    branch: Branch = "main",
) -> Response:
    """The last ``limit`` messages before message number ``before_seq`` (default: the
    newest), oldest first; ``next_before_seq`` pages further back."""
    page = await manager.get_messages(context_id, caller.user_id, limit, before_seq, branch=branch)
    first = page[0].seq or 0 if page else 0
    more = len(page) == limit and first > 1
    headers = {STALE_HEADER: "true"} if page.stale else None
    return json_response(
        MessagePage(items=list(page), next_before_seq=first if more else None), headers=headers
    )


@router.get("/events", response_model=EventPage)
async def list_events(
    context_id: str,
    manager: ManagerDep,
    caller: CallerDep,
    since_revision: Annotated[int, Query(ge=0)] = 0,
    limit: Limit = 100,
    branch: Annotated[str | None, Query(min_length=1, max_length=200)] = None,
) -> Response:
    """The committed changes after ``since_revision``, in revision order: the audit log
    (with ``branch``, only that branch's). Follow it live with the SSE stream at
    ``/v1/contexts/{id}/events/stream``."""
    events = await manager.get_events(
        context_id, caller.user_id, since_revision, limit, branch=branch
    )
    last = events[-1].revision if len(events) == limit else None
    return json_response(EventPage(items=events, next_since_revision=last))
