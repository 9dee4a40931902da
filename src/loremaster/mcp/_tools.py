"""The tools: one per library method, named after it, each with its arguments as a JSON
Schema and a description a model can act on. A tool returns JSON (the structured result);
a change is committed as one revision whose event names the tool (``mcp:<name>``)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema

from ..errors import ValidationFailed
from ..models import ProviderType
from ._bridge import Bridge, as_json

__all__ = ["TOOLS", "Tool"]

ContextId = Annotated[
    str,
    Field(description="the context's id (a UUID, as create_context returned it)"),
    WithJsonSchema({"type": "string", "format": "uuid"}),
]
Branch = Annotated[
    str,
    Field(description="the branch to act on; main is the context itself", min_length=1),
]
Provider = Literal["anthropic", "openai", "google"]
Json = dict[str, Any]

_MESSAGE_SCHEMA: Json = {
    "type": "object",
    "properties": {
        "role": {
            "type": "string",
            "description": "system, user, assistant or tool (a provider's own roles, such as "
            "Gemini's model, are read too)",
        },
        "content": {
            "description": "the message text, or a provider's content blocks (Anthropic, "
            "OpenAI and Gemini message shapes are all read)",
        },
        "parts": {
            "type": "array",
            "items": {"type": "object"},
            "description": "instead of content: loremaster's typed parts, each with a kind "
            "(text, image, document, tool_call, tool_result, thinking)",
        },
        "name": {"type": "string"},
        "metadata": {"type": "object"},
    },
    "required": ["role"],
}
MessageItem = Annotated[dict[str, Any], WithJsonSchema(_MESSAGE_SCHEMA)]


class _Arguments(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CreateContext(_Arguments):
    context_type: Literal["conversation", "collaborative", "session", "generic"] = Field(
        "conversation",
        description="conversation: a chat thread with messages; collaborative: a shared room "
        "(shared_state, participants); session: one user's session; generic: any data",
    )
    title: str = Field(min_length=1, max_length=1000)
    description: str = Field("", max_length=100_000)
    data: Json = Field(default_factory=dict, description="any JSON object: the state to keep")
    metadata: Json = Field(default_factory=dict, description="labels to find it by later")
    messages: list[MessageItem] = Field(
        default_factory=list, description="a conversation's first messages, oldest first"
    )
    fields: Json = Field(
        default_factory=dict,
        description="other fields of the type: shared_state, max_participants, join_policy "
        "(collaborative); primary_provider, model_parameters (conversation); preferences, "
        "active_conversations (session)",
    )


class GetContext(_Arguments):
    context_id: ContextId
    include_messages: bool = Field(
        False, description="a conversation's messages too (long ones: page with get_messages)"
    )
    branch: Branch = "main"


class QueryContexts(_Arguments):
    context_type: Literal["conversation", "collaborative", "session", "generic"] | None = None
    state: Literal["active", "archived", "deleted"] | None = Field(
        None, description="default: all but deleted"
    )
    owner_id: str | None = None
    collaborator: str | None = None
    title_contains: str | None = Field(None, min_length=1)
    metadata_match: Json | None = Field(
        None, description="key -> JSON scalar that metadata must hold (nested keys nest)"
    )
    order_by: Literal["created_at", "last_modified", "last_accessed", "title"] = "last_modified"
    descending: bool = True
    limit: int = Field(20, ge=1, le=100)
    cursor: str | None = Field(None, description="next_cursor of the previous page")


class SearchContexts(_Arguments):
    text: str = Field(min_length=1, max_length=1000, description="words to find (all of them)")
    limit: int = Field(20, ge=1, le=100)
    branch: Branch = "main"


class UpdateContext(_Arguments):
    context_id: ContextId
    changes: Json = Field(
        description="an RFC 7396 merge patch over the context's fields: "
        '{"data": {"hp": 8}} sets data.hp and leaves the rest; null removes a key'
    )
    expected_revision: int | None = Field(
        None,
        ge=1,
        description="the revision the change was made against; if others changed the context "
        "since, the changes are merged three ways by its conflict policy (a path both changed "
        "differently is refused with revision_conflict unless the policy decides it)",
    )
    strategy: (
        Literal[
            "latest_wins", "manual_merge", "provider_priority", "user_choice", "automatic_merge"
        ]
        | None
    ) = Field(None, description="how to settle a stale expected_revision (default: the policy's)")
    branch: Branch = "main"


class AppendMessages(_Arguments):
    context_id: ContextId
    messages: list[MessageItem] = Field(
        min_length=1, max_length=1000, description="oldest first; appended in one change"
    )
    branch: Branch = "main"


class GetMessages(_Arguments):
    context_id: ContextId
    limit: int | None = Field(
        None, ge=1, le=500, description="how many of the latest messages (default 50)"
    )
    before_seq: int | None = Field(
        None, ge=1, description="page back: the seq of the oldest message of the previous page"
    )
    branch: Branch = "main"
    provider: Provider | None = Field(
        None,
        description="instead of a page: every message that fits this provider's model window "
        "(the oldest go first; the system prompt and the newest turn stay)",
    )
    model: str | None = Field(None, description="with provider: the model (default its default)")
    reserve_output: int | None = Field(
        None, ge=0, description="with provider: tokens kept free for the answer"
    )


class CreateVersion(_Arguments):
    context_id: ContextId
    message: str = Field("", max_length=10_000, description="what this checkpoint is")
    tags: list[str] = Field(default_factory=list, description="tagged versions are never pruned")
    branch: Branch = "main"


class GetVersionHistory(_Arguments):
    context_id: ContextId
    limit: int = Field(20, ge=1, le=200)
    before: int | None = Field(
        None, ge=1, description="page back: the number of the oldest version of the last page"
    )
    branch: str | None = Field(None, description="only this branch's versions")
    tag: str | None = Field(None, description="only versions with this tag")


class RollbackToVersion(_Arguments):
    context_id: ContextId
    version_id: str = Field(description="the version to go back to (get_version_history)")
    branch: Branch = "main"


class CreateBranch(_Arguments):
    context_id: ContextId
    name: str = Field(description="1-100 letters, digits, '.', '_', '/' or '-'; not main")
    from_version_id: str | None = Field(None, description="default: the context as it is now")


class MergeBranch(_Arguments):
    context_id: ContextId
    source: str = Field(description="the branch to merge")
    target: str = Field("main", description="the branch that receives it")
    strategy: Literal["fail", "source", "target"] = Field(
        "fail",
        description="a path both branches changed differently: fail (write nothing, list the "
        "conflicts), or the side that wins",
    )


class DiffVersions(_Arguments):
    context_id: ContextId
    a: str = Field(description="the earlier version's id")
    b: str = Field(description="the later version's id")


class ExportForProvider(_Arguments):
    context_id: ContextId
    provider: Provider
    model: str | None = Field(None, description="default: the provider's default model")
    branch: Branch = "main"
    fit: bool = Field(True, description="drop the oldest messages to fit the model's window")
    reserve_output: int | None = Field(None, ge=0, description="tokens kept free for the answer")


class JoinCollaborativeSession(_Arguments):
    context_id: ContextId


# -- what each tool does ---------------------------------------------------------------------


async def create_context(bridge: Bridge, args: CreateContext) -> Json:
    fields: Json = {
        **args.fields,
        "context_type": args.context_type,
        "title": args.title,
        "description": args.description,
        "data": args.data,
        "metadata": args.metadata,
    }
    if args.messages:
        fields["messages"] = args.messages
    cm, user = bridge.manager, bridge.user_id
    context_id = await cm.create_context(fields, user)
    return as_json(await cm.get_context(context_id, user, include_messages=False))


async def get_context(bridge: Bridge, args: GetContext) -> Json:
    context = await bridge.manager.get_context(
        args.context_id, bridge.user_id, include_messages=args.include_messages, branch=args.branch
    )
    return as_json(context)


async def query_contexts(bridge: Bridge, args: QueryContexts) -> Json:
    filters = args.model_dump(exclude_none=True)
    page = await bridge.manager.query_contexts(None, bridge.user_id, **filters)
    return {"items": [as_json(c) for c in page.items], "next_cursor": page.next_cursor}


async def search_contexts(bridge: Bridge, args: SearchContexts) -> Json:
    hits = await bridge.manager.search_contexts(
        args.text, bridge.user_id, args.limit, branch=args.branch
    )
    return {"hits": [as_json(hit) for hit in hits]}


async def update_context(bridge: Bridge, args: UpdateContext) -> Json:
    context = await bridge.manager.update_context(
        args.context_id,
        args.changes,
        bridge.user_id,
        args.expected_revision,
        branch=args.branch,
        strategy=args.strategy,
    )
    return as_json(context)


async def append_messages(bridge: Bridge, args: AppendMessages) -> Json:
    revision = await bridge.manager.append_messages(
        args.context_id, args.messages, bridge.user_id, branch=args.branch
    )
    return {"context_id": args.context_id, "revision": revision}


async def get_messages(bridge: Bridge, args: GetMessages) -> Json:
    cm, user = bridge.manager, bridge.user_id
    if args.provider is None:
        limit = 50 if args.limit is None else args.limit
        page = await cm.get_messages(
            args.context_id, user, limit, args.before_seq, branch=args.branch
        )
        return {
            "messages": [as_json(m) for m in page],
            "before_seq": page[0].seq if page and page[0].seq != 1 else None,
        }
    if args.limit is not None or args.before_seq is not None:
        raise ValidationFailed("give provider (a fitted view) or limit/before_seq (a page)")
    context = await cm.get_context(args.context_id, user, branch=args.branch)
    messages = getattr(context, "messages", [])
    fitted = bridge.translator.fit_to_window(
        messages, ProviderType(args.provider), args.model, reserve_output=args.reserve_output
    )
    return {
        "messages": [as_json(m) for m in fitted.messages],
        "left_out": len(fitted.removed),
        "tokens": fitted.tokens,
        "budget": fitted.budget,
        "model": bridge.translator.model(args.provider, args.model).name,
    }


async def create_version(bridge: Bridge, args: CreateVersion) -> Json:
    version = await bridge.manager.create_version(
        args.context_id, bridge.user_id, args.message, args.tags, branch=args.branch
    )
    return as_json(version)


async def get_version_history(bridge: Bridge, args: GetVersionHistory) -> Json:
    versions = await bridge.manager.get_version_history(
        args.context_id,
        bridge.user_id,
        args.limit,
        before=args.before,
        branch=args.branch,
        tag=args.tag,
    )
    return {"versions": [as_json(v) for v in versions]}


async def rollback_to_version(bridge: Bridge, args: RollbackToVersion) -> Json:
    context = await bridge.manager.rollback_to_version(
        args.context_id, args.version_id, bridge.user_id, branch=args.branch
    )
    return as_json(context)


async def create_branch(bridge: Bridge, args: CreateBranch) -> Json:
    branch = await bridge.manager.create_branch(
        args.context_id, args.name, args.from_version_id, bridge.user_id
    )
    return as_json(branch)


async def merge_branch(bridge: Bridge, args: MergeBranch) -> Json:
    result = await bridge.manager.merge_branch(
        args.context_id, args.source, args.target, bridge.user_id, args.strategy
    )
    return as_json(result)


async def diff_versions(bridge: Bridge, args: DiffVersions) -> Json:
    diff = await bridge.manager.diff_versions(args.context_id, args.a, args.b, bridge.user_id)
    return as_json(diff)


async def export_for_provider(bridge: Bridge, args: ExportForProvider) -> Json:
    return await bridge.manager.export_for_provider(
        args.context_id,
        args.provider,
        bridge.user_id,
        args.model,
        branch=args.branch,
        fit=args.fit,
        reserve_output=args.reserve_output,
    )


async def join_collaborative_session(bridge: Bridge, args: JoinCollaborativeSession) -> Json:
    if bridge.user_id is None:
        raise ValidationFailed("joining a room takes a user: start the bridge with --user")
    context = await bridge.manager.join_collaborative_session(args.context_id, bridge.user_id)
    return as_json(context)


# -- the table ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Tool:
    """One tool: what a client lists (name, description, the arguments' schema) and what a
    call runs. `writes`: each call is one change, attributed to the tool."""

    name: str
    description: str
    arguments: type[_Arguments]
    run: Callable[[Bridge, Any], Awaitable[Json]]
    writes: bool

    @property
    def input_schema(self) -> Json:
        return self.arguments.model_json_schema()


TOOLS: dict[str, Tool] = {
    tool.name: tool
    for tool in (
        Tool(
            "create_context",
            "Store a new context (a conversation, a shared room, a session, or any JSON state) "
            "and return it with its context_id. Every later change is versioned and undoable.",
            CreateContext,
            create_context,
            writes=True,
        ),
        Tool(
            "get_context",
            "Read a context: its fields, its revision (pass it as expected_revision to "
            "update_context) and, with include_messages, a conversation's messages.",
            GetContext,
            get_context,
            writes=False,
        ),
        Tool(
            "query_contexts",
            "List the contexts you may read, filtered by type, state, owner, title or "
            "metadata, one page at a time (pass next_cursor back for the next).",
            QueryContexts,
            query_contexts,
            writes=False,
        ),
        Tool(
            "search_contexts",
            "Full-text search over titles, descriptions and message text; one hit per "
            "context, best first, with a snippet.",
            SearchContexts,
            search_contexts,
            writes=False,
        ),
        Tool(
            "update_context",
            "Change a context's fields with a JSON merge patch. Give expected_revision to have "
            "concurrent changes merged instead of overwritten. Returns the context committed.",
            UpdateContext,
            update_context,
            writes=True,
        ),
        Tool(
            "append_messages",
            "Append messages to a conversation in one change (provider message shapes are "
            "read as they are); returns the new revision.",
            AppendMessages,
            append_messages,
            writes=True,
        ),
        Tool(
            "get_messages",
            "Read a conversation's latest messages, oldest first, paging back with "
            "before_seq; or, with provider (and model), every message that fits that "
            "model's context window.",
            GetMessages,
            get_messages,
            writes=False,
        ),
        Tool(
            "create_version",
            "Record the context as it is now as a named checkpoint to diff, branch from or "
            "roll back to.",
            CreateVersion,
            create_version,
            writes=True,
        ),
        Tool(
            "get_version_history",
            "List a context's versions, newest first: who made each, when, and at which "
            "revision. Every change makes one unless versioning is turned off.",
            GetVersionHistory,
            get_version_history,
            writes=False,
        ),
        Tool(
            "rollback_to_version",
            "Bring a context back to a version, as a new revision; nothing is deleted, so a "
            "rollback can itself be undone.",
            RollbackToVersion,
            rollback_to_version,
            writes=True,
        ),
        Tool(
            "create_branch",
            "Start a branch of a context from a version (default: now), to try changes "
            "apart from main; read and write it with the branch argument of other tools.",
            CreateBranch,
            create_branch,
            writes=True,
        ),
        Tool(
            "merge_branch",
            "Merge one branch into another: a three-way merge of the fields and the "
            "source's new messages. With strategy fail, conflicts are listed, nothing written.",
            MergeBranch,
            merge_branch,
            writes=True,
        ),
        Tool(
            "diff_versions",
            "What changed from version a to version b: a JSON Patch over the fields and the "
            "messages added.",
            DiffVersions,
            diff_versions,
            writes=False,
        ),
        Tool(
            "export_for_provider",
            "A conversation as a ready request body for Anthropic, OpenAI or Gemini, "
            "fitted to the model's window.",
            ExportForProvider,
            export_for_provider,
            writes=False,
        ),
        Tool(
            "join_collaborative_session",
            "Take a seat in a collaborative room as the bridge's user: a participant who "
            "may read and write it.",
            JoinCollaborativeSession,
            join_collaborative_session,
            writes=True,
        ),
    )
}
