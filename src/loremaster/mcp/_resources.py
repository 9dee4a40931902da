"""The resources: every context the user may read as ``loremaster://contexts/{id}``, its
messages as ``.../messages`` and its versions as ``.../history``; listed a page at a time,
read as JSON. Each has a tool that does the same (get_context, get_messages,
get_version_history): most clients call tools on their own, not resources."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import parse_qsl, urlencode

from mcp import types
from pydantic import AnyUrl

from ..errors import Issue, ValidationFailed
from ..models import Context, ContextType
from ._bridge import Bridge, as_json, json_text

__all__ = ["PAGE", "TEMPLATES", "Address", "list_resources", "parse_uri", "read_resource"]

PAGE = 50
"""Contexts per page of resources/list (each gives two or three resources)."""

Part = Literal["context", "messages", "history"]

_URI = re.compile(r"loremaster://contexts/(?P<id>[^/?#]+)(?:/(?P<part>messages|history))?/?")
_QUERY = {
    "context": {"branch"},
    "messages": {"branch", "limit", "before_seq"},
    "history": {"branch", "limit", "before"},
}
_JSON = "application/json"


@dataclass(frozen=True)
class Address:
    """What a resource URI names: a context, or its messages or history, and the query."""

    context_id: str
    part: Part = "context"
    query: dict[str, str] = field(default_factory=dict)

    @property
    def uri(self) -> str:
        tail = "" if self.part == "context" else f"/{self.part}"
        query = f"?{urlencode(self.query)}" if self.query else ""
        return f"loremaster://contexts/{self.context_id}{tail}{query}"

    def number(self, name: str) -> int | None:
        """A whole number from 1 the query gives, or None."""
        value = self.query.get(name)
        if value is None:
            return None
        if not value.isdigit() or int(value) < 1:
            raise _bad(self.uri, f"{name} must be a whole number from 1")
        return int(value)


def _bad(uri: str, reason: str) -> ValidationFailed:
    return ValidationFailed(f"not a loremaster resource: {reason}", [Issue("/uri", uri)])


def parse_uri(uri: str | AnyUrl) -> Address:
    text = str(uri)
    address, _, query = text.partition("?")
    match = _URI.fullmatch(address)
    if match is None:
        raise _bad(text, "expected loremaster://contexts/{id}[/messages|/history]")
    part: Part = match["part"] or "context"  # type: ignore[assignment]  # the pattern's choices
    pairs = dict(parse_qsl(query, keep_blank_values=True))
    unknown = sorted(set(pairs) - _QUERY[part])
    if unknown:
        raise _bad(text, f"unknown query parameter {unknown[0]!r}")
    return Address(match["id"], part, pairs)


TEMPLATES = [
    types.ResourceTemplate(
        name="context",
        title="A context",
        uriTemplate="loremaster://contexts/{context_id}{?branch}",
        description="A context's fields and revision, as get_context returns them.",
        mimeType=_JSON,
    ),
    types.ResourceTemplate(
        name="messages",
        title="A conversation's messages",
        uriTemplate="loremaster://contexts/{context_id}/messages{?limit,before_seq,branch}",
        description="The latest messages (50 unless limit says), oldest first; page back "
        "with before_seq.",
        mimeType=_JSON,
    ),
    types.ResourceTemplate(
        name="history",
        title="A context's versions",
        uriTemplate="loremaster://contexts/{context_id}/history{?limit,before,branch}",
        description="Versions newest first (20 unless limit says); page back with before.",
        mimeType=_JSON,
    ),
]


def _resources_of(context: Context) -> list[types.Resource]:
    about = f"{context.context_type.value} context, revision {context.revision}"
    parts: list[tuple[Part, str, str]] = [("context", context.title, about)]
    if context.context_type is ContextType.CONVERSATION:
        parts.append(("messages", f"{context.title}: messages", "its latest messages"))
    parts.append(("history", f"{context.title}: history", "its versions, newest first"))
    return [
        types.Resource(
            uri=AnyUrl(Address(context.context_id, part).uri),
            name=name,
            description=description,
            mimeType=_JSON,
        )
        for part, name, description in parts
    ]


async def list_resources(bridge: Bridge, cursor: str | None) -> types.ListResourcesResult:
    """A page of the contexts the user may read, newest first (stable while they change)."""
    page = await bridge.manager.query_contexts(
        None, bridge.user_id, order_by="created_at", limit=PAGE, cursor=cursor
    )
    resources = [resource for context in page for resource in _resources_of(context)]
    return types.ListResourcesResult(resources=resources, nextCursor=page.next_cursor)


async def read_resource(bridge: Bridge, address: Address) -> str:
    cm, user = bridge.manager, bridge.user_id
    branch = address.query.get("branch", "main")
    body: Any
    if address.part == "context":
        context = await cm.get_context(
            address.context_id, user, include_messages=False, branch=branch
        )
        body = as_json(context)
    elif address.part == "messages":
        limit = address.number("limit") or 50
        messages = await cm.get_messages(
            address.context_id, user, limit, address.number("before_seq"), branch=branch
        )
        body = {"messages": [as_json(m) for m in messages]}
    else:
        versions = await cm.get_version_history(
            address.context_id,
            user,
            address.number("limit") or 20,
            before=address.number("before"),
            branch=address.query.get("branch"),
        )
        body = {"versions": [as_json(v) for v in versions]}
    return json_text(body)
