"""Provider migration and export: what the manager commits and hands out. Pure.

The translator converts and fits; this module decides, from the options, what a
migration writes (the converted messages, ``primary_provider``, the report in the
metadata) or why it writes nothing, and caches export payloads.
"""

from __future__ import annotations

import dataclasses
from collections import OrderedDict
from collections.abc import Hashable, Mapping
from typing import Any, Literal

import orjson

from .._storable import MAX_INT, check_text, describe, pointer
from ..errors import Issue, LoremasterError, ValidationFailed
from ..models import (
    Context,
    ConversationContext,
    Message,
    MigrationChange,
    MigrationResult,
    ProviderType,
    utc_now,
)
from ..patch import JsonPatch
from ._translator import ContextTranslator
from ._validate import validate_payload

__all__ = [
    "ExportCache",
    "MigrationPlan",
    "Outcome",
    "check_window",
    "export_payload",
    "parse_migration",
    "parse_provider",
    "translate_conversation",
]

_OPTIONS = {"model", "preserve_history", "fit", "reserve_output", "on_loss"}


def parse_provider(value: ProviderType | str | None, name: str) -> ProviderType:
    if isinstance(value, str) and value in set(ProviderType):
        return ProviderType(value)
    choices = ", ".join(p.value for p in ProviderType)
    raise ValidationFailed(
        f"{name} must be one of {choices}", [Issue(f"/{name}", describe(value), "provider")]
    )


def check_window(model: Any, reserve_output: Any, at: str = "") -> None:
    """Refuse a target model that is not text, or tokens kept for the answer that are not
    a whole number (`at`: where they were given)."""
    if model is not None:
        check_text(model, f"{at}/model")
    if reserve_output is not None and (
        isinstance(reserve_output, bool)
        or not isinstance(reserve_output, int)
        or not 0 <= reserve_output <= MAX_INT
    ):
        raise ValidationFailed(
            "reserve_output is a whole number of tokens",
            [Issue(f"{at}/reserve_output", describe(reserve_output))],
        )


@dataclasses.dataclass(frozen=True, slots=True)
class MigrationPlan:
    source: ProviderType | None
    target: ProviderType
    model: str | None = None
    preserve_history: bool = True
    fit: bool = True
    reserve_output: int | None = None
    on_loss: Literal["convert", "refuse"] = "convert"


def parse_migration(
    from_provider: ProviderType | str | None,
    to_provider: ProviderType | str | None,
    options: Mapping[str, Any] | None,
) -> MigrationPlan:
    """The migration asked for; `ValidationFailed` for unknown providers or options."""
    if options is not None and not isinstance(options, Mapping):
        raise ValidationFailed("options is a dict", [Issue("/options", describe(options))])
    options = dict(options or {})
    unknown = [key for key in options if key not in _OPTIONS]
    if unknown:
        raise ValidationFailed(
            "unknown migration options",
            [
                Issue(pointer("/options", k if isinstance(k, str) else describe(k)), "unknown")
                for k in unknown
            ],
        )
    check_window(options.get("model"), options.get("reserve_output"), "/options")
    if options.get("on_loss", "convert") not in ("convert", "refuse"):
        raise ValidationFailed("on_loss is convert or refuse", [Issue("/options/on_loss", "")])
    source = None if from_provider is None else parse_provider(from_provider, "from_provider")
    return MigrationPlan(
        source=source,
        target=parse_provider(to_provider, "to_provider"),
        model=options.get("model"),
        preserve_history=bool(options.get("preserve_history", True)),
        fit=bool(options.get("fit", True)),
        reserve_output=options.get("reserve_output"),
        on_loss=options.get("on_loss", "convert"),
    )


@dataclasses.dataclass(frozen=True, slots=True)
class Outcome:
    """What a migration commits: field changes, and the new messages (None: unchanged)."""

    result: MigrationResult
    ops: JsonPatch
    messages: list[Message] | None
    message_values: list[dict[str, Any]]


def _dump(messages: list[Message]) -> list[dict[str, Any]]:
    return [m.model_dump(mode="json", exclude={"seq"}) for m in messages]


def translate_conversation(
    translator: ContextTranslator, context: Context, plan: MigrationPlan
) -> Outcome:
    """Convert `context`'s messages for the plan's target, or say why not."""
    if not isinstance(context, ConversationContext):
        raise ValidationFailed(
            "only conversations are migrated between providers",
            [Issue("/context_type", context.context_type.value)],
        )
    source = plan.source or context.primary_provider
    untouched = MigrationResult(
        context_id=context.context_id,
        migrated=False,
        from_provider=source,
        to_provider=plan.target,
        model=plan.model,
        messages_before=len(context.messages),
    )
    try:
        converted = translator.to_provider(context.messages, plan.target, plan.model)
        validate_payload(converted.payload, plan.target)
    except LoremasterError as exc:
        return Outcome(untouched.model_copy(update={"reason": exc.message}), [], None, [])
    changes = [
        MigrationChange(code=c.code, path=c.path, detail=c.detail, lossless=c.lossless)
        for c in converted.report.changes
    ]
    lossless = converted.report.lossless
    if plan.on_loss == "refuse" and not lossless:
        lost = sorted({c.code for c in changes if not c.lossless})
        reason = f"the conversion would lose data ({', '.join(lost)}) and on_loss is refuse"
        update = {"reason": reason, "changes": changes, "lossless": False}
        return Outcome(untouched.model_copy(update=update), [], None, [])
    messages = converted.messages
    info = translator.model(plan.target, plan.model)
    removed, budget = 0, None
    if plan.fit:
        window = translator.fit_to_window(
            messages, plan.target, plan.model, reserve_output=plan.reserve_output
        )
        removed, budget = len(window.removed), window.budget
        if not plan.preserve_history:
            messages, removed = window.messages, 0
    tokens = translator.count_tokens(messages, plan.target, plan.model).total
    fits = budget is None or tokens <= budget
    result = untouched.model_copy(
        update={
            "migrated": True,
            "lossless": lossless,
            "changes": changes,
            "messages_after": len(messages),
            "tokens": tokens,
            "context_window": info.context_window,
            "fits": fits,
            "removed_to_fit": removed,
        }
    )
    record = {
        "from": None if source is None else source.value,
        "to": plan.target.value,
        "model": plan.model,
        "at": utc_now().isoformat(),
        "lossless": lossless,
        "changes": converted.report.codes(),
        "messages_before": len(context.messages),
        "messages_after": len(messages),
        "tokens": tokens,
    }
    ops: JsonPatch = [
        {"op": "add", "path": "/primary_provider", "value": plan.target.value},
        {"op": "add", "path": "/metadata/migration", "value": record},
    ]
    values = _dump(messages)
    unchanged = values == _dump(context.messages)
    return Outcome(result, ops, None if unchanged else messages, [] if unchanged else values)


def export_payload(
    translator: ContextTranslator,
    messages: list[Message],
    provider: ProviderType,
    model: str | None,
    *,
    fit: bool,
    reserve_output: int | None,
) -> dict[str, Any]:
    if fit:
        messages = translator.fit_to_window(
            messages, provider, model, reserve_output=reserve_output
        ).messages
    return translator.to_provider(messages, provider, model).payload


class ExportCache:
    """Export payloads by (context, branch, revision, provider, model, options): a new
    revision is a new key, so an entry is never stale. Each hit is a fresh copy."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._entries: OrderedDict[Hashable, bytes] = OrderedDict()

    def get(self, key: Hashable) -> dict[str, Any] | None:
        blob = self._entries.get(key)
        if blob is None:
            return None
        self._entries.move_to_end(key)
        payload: dict[str, Any] = orjson.loads(blob)
        return payload

    def put(self, key: Hashable, payload: dict[str, Any]) -> None:
        self._entries[key] = orjson.dumps(payload)
        while len(self._entries) > self._size:
            self._entries.popitem(last=False)

    def __len__(self) -> int:
        return len(self._entries)
