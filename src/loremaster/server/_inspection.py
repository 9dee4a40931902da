"""What the inspector reads beyond the resources: who the caller is, the models
translation knows, a conversation's tokens per message for a model, a conversation as a
provider receives it (with the translation report's changes placed on the payload), the
current edit lock, and the recorded provider calls' usage."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field
from starlette.responses import Response

from ..models import ContextLock, ConversationContext, Message, ProviderType
from ..translation import CHANGE_CODES, Change, ContextTranslator
from ._http import json_response
from ._payload_entries import payload_entries
from ._rest import ERRORS
from ._service import CallerDep, ManagerDep, ServiceDep

__all__ = ["router"]

router = APIRouter(prefix="/v1", tags=["inspection"], responses=ERRORS)


class Me(BaseModel):
    user_id: str | None = Field(description="what authorization sees (null: trusted, local)")
    name: str = Field(description="who holds locks, seats and presence")
    local_mode: bool = Field(description="true when the server asks for no token")


class ModelEntry(BaseModel):
    name: str
    provider: ProviderType
    context_window: int
    max_output: int


class Models(BaseModel):
    models: list[ModelEntry]
    defaults: dict[str, str] = Field(description="each provider's stand-in for an unknown model")


class ProviderUsage(BaseModel):
    calls: float
    input_tokens: float
    output_tokens: float
    cost_usd: float
    latency_ms: float = Field(description="summed over the calls")


class Usage(BaseModel):
    contexts_scanned: int
    providers: dict[str, ProviderUsage]


class MessageTokens(BaseModel):
    id: str
    seq: int | None
    tokens: int


class Tokens(BaseModel):
    provider: ProviderType
    model: str
    known_model: bool = Field(description="false: the provider's default limits stand in")
    context_window: int
    max_output: int
    total: int = Field(description="the whole request, framing included")
    exact: bool = Field(description="true only for OpenAI models and text alone")
    messages: list[MessageTokens]


class CurrentLock(BaseModel):
    lock: ContextLock | None


class ReportedChange(BaseModel):
    code: str
    action: str
    lossless: bool
    meaning: str
    path: str = Field(description="a JSON pointer into the messages sent ('' for one added)")
    detail: str


class Report(BaseModel):
    lossless: bool
    warnings: list[str]
    changes: list[ReportedChange]


class Entry(BaseModel):
    pointer: str = Field(description="a message of the payload (or its system field)")
    changes: list[int] = Field(description="indexes into report.changes")


class AsSent(BaseModel):
    provider: ProviderType
    model: str
    context_window: int
    tokens: int
    removed_to_fit: int = Field(description="oldest messages left out to fit the window")
    payload: dict[str, Any] = Field(description="what the export route answers")
    report: Report
    entries: list[Entry]


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


@router.get("/me", response_model=Me)
async def who_am_i(service: ServiceDep, caller: CallerDep) -> Response:
    """Who the server takes the caller for: ``name`` holds locks, seats and presence;
    ``local_mode`` is true when the server asks for no token."""
    local_mode = service.authenticator.local_mode
    return json_response(Me(user_id=caller.user_id, name=caller.name, local_mode=local_mode))


@router.get("/models", response_model=Models)
async def list_models(manager: ManagerDep, caller: CallerDep) -> Response:
    """The models translation knows (built in, and ``CONTEXT_MODELS``): provider, context
    window and longest answer, and each provider's default."""
    registry = ContextTranslator(manager.settings).registry
    models = [
        ModelEntry(
            name=info.name,
            provider=info.provider,
            context_window=info.context_window,
            max_output=info.max_output,
        )
        for info in registry
    ]
    defaults = {provider.value: registry.get(provider).name for provider in ProviderType}
    return json_response(Models(models=models, defaults=defaults))


@router.get("/usage", response_model=Usage)
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
    providers = {name: ProviderUsage.model_validate(total) for name, total in totals.items()}
    return json_response(Usage(contexts_scanned=len(page.items), providers=providers))


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


@router.get("/contexts/{context_id}/tokens", response_model=Tokens)
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
    counted = [
        MessageTokens(id=message.id, seq=message.seq, tokens=tokens)
        for message, tokens in zip(messages, count.messages, strict=True)
    ]
    return json_response(
        Tokens(
            provider=provider,
            model=info.name,
            known_model=info.known,
            context_window=info.context_window,
            max_output=info.max_output,
            total=count.total,
            exact=count.exact,
            messages=counted,
        )
    )


@router.get("/contexts/{context_id}/lock", response_model=CurrentLock)
async def current_lock(context_id: str, manager: ManagerDep, caller: CallerDep) -> Response:
    """Who holds the context's edit lock and until when: ``{"lock": {"holder", "token",
    "expires_at"}}``, or ``{"lock": null}`` when nobody holds a live one."""
    lock = await manager.get_context_lock(context_id, caller.user_id)
    return json_response(CurrentLock(lock=lock))


@router.get("/contexts/{context_id}/as-sent", response_model=AsSent)
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
        AsSent(
            provider=provider,
            model=info.name,
            context_window=info.context_window,
            tokens=fitted.tokens,
            removed_to_fit=len(fitted.removed),
            payload=result.payload,
            report=Report(
                lossless=report.lossless,
                warnings=list(report.warnings),
                changes=[_reported(change) for change in report.changes],
            ),
            entries=[Entry(pointer=e.pointer, changes=e.changes) for e in entries],
        )
    )


def _reported(change: Change) -> ReportedChange:
    return ReportedChange(
        code=change.code,
        action=change.action.value,
        lossless=change.lossless,
        meaning=CHANGE_CODES[change.code].meaning,
        path=change.path,
        detail=change.detail,
    )
