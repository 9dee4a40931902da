"""What the inspector reads beyond the resources: who the caller is, the models
translation knows, a conversation's tokens per message for a model, a conversation as a
provider receives it (with the translation report's changes placed on the payload), the
current edit lock, and the recorded provider calls' usage."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Query
from starlette.responses import Response

from ..models import ConversationContext, Message, MessageRole, ProviderType
from ..translation import CHANGE_CODES, Change, ContextTranslator
from ._http import json_response
from ._service import CallerDep, ManagerDep, ServiceDep

__all__ = ["router"]

router = APIRouter(prefix="/v1", tags=["inspection"])

Branch = Annotated[str, Query(min_length=1, max_length=200)]
Model = Annotated[str | None, Query(min_length=1, max_length=200)]
Reserve = Annotated[int | None, Query(ge=0, le=100_000_000)]

USAGE_MESSAGES = 1000
"""How far back `/v1/usage` reads each conversation."""


async def _messages(
    manager: ManagerDep, caller: CallerDep, context_id: str, branch: str
) -> list[Message]:
    context = await manager.get_context(context_id, caller.user_id, branch=branch)
    return context.messages if isinstance(context, ConversationContext) else []


@router.get("/me")
async def who_am_i(service: ServiceDep, caller: CallerDep) -> Response:
    """Who the server takes the caller for: ``name`` holds locks, seats and presence;
    ``local_mode`` is true when the server asks for no token."""
    return json_response(
        {
            "user_id": caller.user_id,
            "name": caller.name,
            "local_mode": service.authenticator.local_mode,
        }
    )


@router.get("/models")
async def list_models(manager: ManagerDep, caller: CallerDep) -> Response:
    """The models translation knows (built in, and ``CONTEXT_MODELS``): provider, context
    window and longest answer, and each provider's default."""
    registry = ContextTranslator(manager.settings).registry
    models = [
        {
            "name": info.name,
            "provider": info.provider.value,
            "context_window": info.context_window,
            "max_output": info.max_output,
        }
        for info in registry
    ]
    defaults = {provider.value: registry.get(provider).name for provider in ProviderType}
    return json_response({"models": models, "defaults": defaults})


@router.get("/usage")
async def provider_usage(
    manager: ManagerDep,
    caller: CallerDep,
    contexts: Annotated[int, Query(ge=1, le=200)] = 50,
) -> Response:
    """Tokens, cost and latency of the recorded provider calls (``metadata["call"]`` of
    assistant messages) per provider, over the `contexts` most recently changed
    conversations the caller may read (their last 1,000 messages each)."""
    page = await manager.query_contexts(
        None, caller.user_id, context_type="conversation", limit=contexts
    )
    totals: dict[str, dict[str, float]] = {}
    for context in page.items:
        messages = await manager.get_messages(context.context_id, caller.user_id, USAGE_MESSAGES)
        for message in messages:
            _add_call(totals, message.metadata.get("call"))
    return json_response({"contexts_scanned": len(page.items), "providers": totals})


def _add_call(totals: dict[str, dict[str, float]], call: Any) -> None:
    if not isinstance(call, dict) or not isinstance(call.get("provider"), str):
        return
    given = call.get("usage")
    usage: dict[str, Any] = given if isinstance(given, dict) else {}
    total = totals.setdefault(
        call["provider"],
        {"calls": 0, "input_tokens": 0, "output_tokens": 0, "cost_usd": 0.0, "latency_ms": 0.0},
    )
    total["calls"] += 1
    for key, value in (
        ("input_tokens", usage.get("input_tokens")),
        ("output_tokens", usage.get("output_tokens")),
        ("cost_usd", call.get("cost_usd")),
        ("latency_ms", call.get("latency_ms")),
    ):
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            total[key] += value


@router.get("/contexts/{context_id}/tokens")
async def count_tokens(
    context_id: str,
    manager: ManagerDep,
    caller: CallerDep,
    provider: ProviderType,
    model: Model = None,
    branch: Branch = "main",
) -> Response:
    """A conversation's tokens for a model: each message's, and the whole request's
    against the model's context window (exact for OpenAI's text, estimates otherwise)."""
    messages = await _messages(manager, caller, context_id, branch)
    translator = ContextTranslator(manager.settings)
    info = translator.model(provider, model)
    count = translator.count_tokens(messages, provider, model)
    return json_response(
        {
            "provider": provider.value,
            "model": info.name,
            "known_model": info.known,
            "context_window": info.context_window,
            "max_output": info.max_output,
            "total": count.total,
            "exact": count.exact,
            "messages": [
                {"id": message.id, "seq": message.seq, "tokens": tokens}
                for message, tokens in zip(messages, count.messages, strict=True)
            ],
        }
    )


@router.get("/contexts/{context_id}/lock")
async def current_lock(context_id: str, manager: ManagerDep, caller: CallerDep) -> Response:
    """Who holds the context's edit lock and until when: ``{"lock": {"holder", "token",
    "expires_at"}}``, or ``{"lock": null}`` when nobody holds a live one."""
    return json_response({"lock": await manager.get_context_lock(context_id, caller.user_id)})


@router.get("/contexts/{context_id}/as-sent")
async def as_sent(
    context_id: str,
    manager: ManagerDep,
    caller: CallerDep,
    provider: ProviderType,
    model: Model = None,
    branch: Branch = "main",
    reserve_output: Reserve = None,
) -> Response:
    """The conversation as `provider` receives it: the payload the export route gives
    (fitted to the model's window), the translation report, and where each change lands
    in the payload (``entries``: each payload message's pointer and the changes it
    carries)."""
    messages = await _messages(manager, caller, context_id, branch)
    translator = ContextTranslator(manager.settings)
    fitted = translator.fit_to_window(messages, provider, model, reserve_output=reserve_output)
    result = translator.to_provider(fitted.messages, provider, model)
    report = result.report
    entries = payload_entries(provider, result.messages, fitted.messages, report.changes)
    info = translator.model(provider, model)
    return json_response(
        {
            "provider": provider.value,
            "model": info.name,
            "context_window": info.context_window,
            "tokens": fitted.tokens,
            "removed_to_fit": len(fitted.removed),
            "payload": result.payload,
            "report": {
                "lossless": report.lossless,
                "warnings": list(report.warnings),
                "changes": [_change(change) for change in report.changes],
            },
            "entries": [{"pointer": e.pointer, "changes": e.changes} for e in entries],
        }
    )


def _change(change: Change) -> dict[str, Any]:
    return {
        "code": change.code,
        "action": change.action.value,
        "lossless": change.lossless,
        "meaning": CHANGE_CODES[change.code].meaning,
        "path": change.path,
        "detail": change.detail,
    }


@dataclass
class Entry:
    """One message of a payload (or its system field): its JSON pointer, the input
    messages it holds (their indexes; None for one translation added) and the indexes
    of the report's changes that concern it."""

    pointer: str
    sources: list[int | None]
    changes: list[int]


_LIST_KEY = {
    ProviderType.ANTHROPIC: "messages",
    ProviderType.OPENAI: "messages",
    ProviderType.GOOGLE: "contents",
}
_SYSTEM_KEY = {ProviderType.ANTHROPIC: "system", ProviderType.GOOGLE: "system_instruction"}
_JOINS = {
    ProviderType.ANTHROPIC: frozenset({MessageRole.TOOL}),
    ProviderType.OPENAI: frozenset[MessageRole](),  # one message per message
    ProviderType.GOOGLE: frozenset({MessageRole.TOOL, MessageRole.USER}),
}


def payload_entries(
    provider: ProviderType,
    sent: list[Message],
    given: list[Message],
    changes: tuple[Change, ...],
) -> list[Entry]:
    """Where the messages `sent` (the translation's own, in payload order, with the ids
    of the messages `given`) land in the provider's payload, and which changes concern
    each: a change at an input message goes to the entry holding it, or the one holding
    the closest message before it (a dropped or merged message has none of its own)."""
    index_of = {message.id: index for index, message in enumerate(given)}
    entries = _group(provider, sent, index_of)
    for number, change in enumerate(changes):
        entry = _entry_of(entries, _input_index(change.path))
        if entry is not None:
            entry.changes.append(number)
    return entries


def _group(provider: ProviderType, sent: list[Message], index_of: dict[str, int]) -> list[Entry]:
    """The payload's messages as the provider's format groups them: Anthropic and Gemini
    send a leading system message in a field of its own and consecutive tool results as
    one user turn, to which Gemini also adds the user messages that follow them."""
    entries: list[Entry] = []
    key, system, joining = _LIST_KEY[provider], _SYSTEM_KEY.get(provider), _JOINS[provider]
    listed = 0
    in_results = False
    for position, message in enumerate(sent):
        source = index_of.get(message.id)
        if system and position == 0 and message.role is MessageRole.SYSTEM:
            entries.append(Entry(f"/{system}", [source], []))
        elif in_results and message.role in joining:
            entries[-1].sources.append(source)
        else:
            in_results = message.role is MessageRole.TOOL
            entries.append(Entry(f"/{key}/{listed}", [source], []))
            listed += 1
    return entries


def _input_index(path: str) -> int | None:
    """The input message a change's path points into (None: a message it added)."""
    head = path.split("/", 2)[1] if path.startswith("/") else ""
    return int(head) if head.isdigit() else None


def _entry_of(entries: list[Entry], index: int | None) -> Entry | None:
    """The entry holding input message `index`, or else the closest one before it;
    for None, the entry holding a message translation added."""
    if index is None:
        return next((entry for entry in entries if None in entry.sources), None)
    best: tuple[int, Entry] | None = None
    for entry in entries:
        for source in entry.sources:
            if source is not None and source <= index and (best is None or source > best[0]):
                best = (source, entry)
    return None if best is None else best[1]
