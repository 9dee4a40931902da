"""`ContextValidator`: schema, semantic checks, custom rules, auto-correction."""

from __future__ import annotations

import inspect
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping
from importlib.metadata import entry_points
from typing import Any, Protocol

from pydantic import ValidationError

from ..config import Settings
from ..errors import ContextNotFound, PermissionDenied, ValidationFailed
from ..models import (
    SOURCE_KEY,
    Context,
    ContextType,
    Message,
    ProviderType,
    SessionContext,
    context_class,
    read_messages,
)
from ._checks import Findings, check_context
from ._issues import Severity, ValidationIssue, ValidationResult
from ._schema import schema_issues

__all__ = ["ENTRY_POINT_GROUP", "ContextSource", "ContextValidator", "Rule"]

log = logging.getLogger("loremaster.validation")

ENTRY_POINT_GROUP = "loremaster.validation_rules"


class ContextSource(Protocol):
    """Where a session's conversations are looked up: a `ContextManager`, or what the
    manager wires in (a reader that notes no access)."""

    async def get_context(
        self, context_id: str, user_id: str | None = None, *, include_messages: bool = True
    ) -> Context: ...


RuleOutcome = ValidationIssue | Iterable[ValidationIssue] | None
Rule = Callable[[Context], RuleOutcome | Awaitable[RuleOutcome]]
"""A custom rule: takes the context, returns issues (or None), sync or async."""


def _loc_pointer(loc: tuple[Any, ...]) -> str:
    return "".join(f"/{part}" for part in loc)


class ContextValidator:
    """Validates contexts, as models or as dicts.

    >>> validator = ContextValidator(enable_auto_correction=True)   # doctest: +SKIP
    >>> result = await validator.validate_context(context)           # doctest: +SKIP
    """

    def __init__(
        self,
        enable_auto_correction: bool = True,
        rules: Mapping[ContextType | str | None, Iterable[Rule]] | None = None,
        *,
        settings: Settings | None = None,
        load_entry_points: bool = True,
        check_size: bool = True,
    ) -> None:
        settings = settings or Settings()
        self.enable_auto_correction = enable_auto_correction
        self.max_bytes = settings.max_size_bytes if check_size else None
        self.max_participants = settings.max_participants
        self._rules: list[tuple[ContextType | None, str, Rule]] = []
        for context_type, type_rules in (rules or {}).items():
            for rule in type_rules:
                self.add_rule(rule, context_type=context_type)
        if load_entry_points:
            self._load_entry_points()

    def add_rule(
        self, rule: Rule, *, context_type: ContextType | str | None = None, name: str | None = None
    ) -> None:
        """Register `rule` for one context type (None: every type)."""
        kind = None if context_type is None else ContextType(context_type)
        label = name or str(getattr(rule, "__name__", repr(rule)))
        self._rules.append((kind, label, rule))

    def _load_entry_points(self) -> None:
        for entry in entry_points(group=ENTRY_POINT_GROUP):
            try:
                entry.load()(self)
            except Exception:  # a broken plug-in must not take validation down
                log.exception("validation rule plug-in %s failed to load", entry.name)

    # -- validating ----------------------------------------------------------------------

    async def validate_context(
        self,
        context: Context | Mapping[str, Any],
        context_type: ContextType | str | None = None,
        *,
        provider: ProviderType | str | None = None,
        manager: ContextSource | None = None,
        user_id: str | None = None,
        source: ProviderType | str | None = None,
    ) -> ValidationResult:
        """Every issue of `context`; never raises on bad input, it reports it.

        `provider` is the target the conversation will be sent to (default: its
        `primary_provider`). With a `manager`, a session's active conversations are looked
        up too, as `user_id` (None: a trusted caller) and as the session's user. A dict's
        messages may be in a provider's own shape: detected, or `source`'s.
        """
        findings = Findings(correct=self.enable_auto_correction)
        model = self._parse(context, context_type, findings, source)
        if model is None:
            return ValidationResult(is_valid=False, issues=findings.issues)
        target = None if provider is None else ProviderType(provider)
        corrected = self._check(model, findings, target)
        await self._run_rules(model, findings)
        if isinstance(model, SessionContext) and manager is not None:
            await _check_sessions(model, manager, findings, user_id)
        return self._result(context, corrected, findings, target)

    async def check_sessions(
        self,
        session: SessionContext,
        source: ContextSource,
        user_id: str | None,
        conversations: Iterable[str],
    ) -> ValidationResult:
        """The session checks alone, for some of its `conversations` (those an update
        adds, say)."""
        findings = Findings(correct=False)
        await _check_sessions(session, source, findings, user_id, only=set(conversations))
        errors = any(issue.severity is Severity.ERROR for issue in findings.issues)
        return ValidationResult(is_valid=not errors, issues=findings.issues)

    def check(self, context: Context, *, provider: ProviderType | None = None) -> ValidationResult:
        """The synchronous part of validation, for a model: semantic checks and sync rules,
        no corrections. This is what the manager runs inside its write transactions."""
        findings = Findings(correct=False)
        self._check(context, findings, provider)
        self._run_sync_rules(context, findings)
        errors = any(issue.severity is Severity.ERROR for issue in findings.issues)
        return ValidationResult(is_valid=not errors, issues=findings.issues)

    # -- steps ---------------------------------------------------------------------------

    def _parse(
        self,
        context: Context | Mapping[str, Any],
        context_type: ContextType | str | None,
        findings: Findings,
        source: ProviderType | str | None = None,
    ) -> Context | None:
        if isinstance(context, Context):
            return context
        if not isinstance(context, Mapping):
            findings.report(Severity.ERROR, "schema.invalid", "a context must be an object", "")
            return None
        try:
            kind = ContextType(context_type or context.get("context_type") or ContextType.GENERIC)
        except (ValueError, TypeError):
            findings.report(
                Severity.ERROR,
                "schema.invalid",
                f"unknown context_type {context.get('context_type')!r}",
                "/context_type",
            )
            return None
        try:
            model = context_class(kind).model_validate(
                {**context, "context_type": kind}, context={SOURCE_KEY: source}
            )
        except ValidationFailed as exc:  # a message in no shape loremaster reads, say
            findings.issues.extend(
                ValidationIssue(
                    severity=Severity.ERROR, code="schema.invalid", message=i.message, path=i.path
                )
                for i in exc.issues
            )
            return None
        except ValidationError as exc:
            issues = schema_issues(_neutral_messages(context, source), kind) or [
                ValidationIssue(
                    severity=Severity.ERROR,
                    code="schema.invalid",
                    message=error["msg"],
                    path=_loc_pointer(error["loc"]),
                )
                for error in exc.errors()
            ]
            findings.issues.extend(issues)
            return None
        self._note_missing_defaults(context, findings)
        return model

    def _note_missing_defaults(self, context: Mapping[str, Any], findings: Findings) -> None:
        messages = context.get("messages")
        if not isinstance(messages, list):
            return
        for index, message in enumerate(messages):
            if not isinstance(message, Mapping):
                continue
            for key, code, what in (
                ("id", "message.missing_id", "generated an id"),
                ("created_at", "message.missing_timestamp", "set created_at to now"),
            ):
                if key not in message:
                    findings.issues.append(
                        ValidationIssue(
                            severity=Severity.INFO,
                            code=f"{code}.fixed" if findings.correct else code,
                            message=what,
                            path=f"/messages/{index}/{key}",
                        )
                    )
                    findings.corrected = findings.corrected or findings.correct

    def _check(self, model: Context, findings: Findings, provider: ProviderType | None) -> Context:
        return check_context(
            model,
            findings,
            max_bytes=self.max_bytes,
            max_participants=self.max_participants,
            provider=provider,
        )

    def _applicable(self, model: Context) -> list[tuple[str, Rule]]:
        return [(name, rule) for kind, name, rule in self._rules if kind in (None, model.kind)]

    def _run_sync_rules(self, model: Context, findings: Findings) -> None:
        for name, rule in self._applicable(model):
            if inspect.iscoroutinefunction(rule):
                continue
            try:
                outcome = rule(model)
            except Exception as exc:
                _rule_failed(findings, name, exc)
                continue
            _collect(findings, outcome)

    async def _run_rules(self, model: Context, findings: Findings) -> None:
        for name, rule in self._applicable(model):
            try:
                outcome = rule(model)
                if inspect.isawaitable(outcome):
                    outcome = await outcome
            except Exception as exc:
                _rule_failed(findings, name, exc)
                continue
            _collect(findings, outcome)

    def _result(
        self,
        original: Context | Mapping[str, Any],
        corrected: Context,
        findings: Findings,
        provider: ProviderType | None,
    ) -> ValidationResult:
        is_valid = not any(issue.severity is Severity.ERROR for issue in findings.issues)
        if not findings.corrected:
            return ValidationResult(is_valid=is_valid, issues=findings.issues)
        recheck = Findings(correct=False)
        self._check(corrected, recheck, provider)
        if any(issue.severity is Severity.ERROR for issue in recheck.issues):
            # Corrections could not make it valid: offer none rather than a broken one.
            return ValidationResult(is_valid=is_valid, issues=findings.issues)
        data: Any = (
            corrected if isinstance(original, Context) else corrected.model_dump(mode="json")
        )
        return ValidationResult(is_valid=is_valid, issues=findings.issues, corrected_data=data)


def _neutral_messages(context: Mapping[str, Any], source: Any) -> dict[str, Any]:
    """`context` with its provider-shaped messages in the neutral form the JSON Schema
    knows (they validated: what failed is elsewhere)."""
    messages = context.get("messages")
    if not isinstance(messages, list):
        return dict(context)
    try:
        read = read_messages(messages, source, "/messages")
    except (ValidationFailed, ValidationError):
        return dict(context)
    neutral = [m.model_dump(mode="json") if isinstance(m, Message) else m for m in read]
    return {**context, "messages": neutral}


def _rule_failed(findings: Findings, name: str, exc: Exception) -> None:
    findings.report(
        Severity.ERROR, "rule.failed", f"rule {name} raised {type(exc).__name__}: {exc}", ""
    )


def _collect(findings: Findings, outcome: Any) -> None:
    if outcome is None:
        return
    items = [outcome] if isinstance(outcome, ValidationIssue) else list(outcome)
    for item in items:
        if isinstance(item, ValidationIssue):
            findings.issues.append(item)
        else:
            _rule_failed(findings, "rule", TypeError(f"returned {type(item).__name__}"))


async def _check_sessions(
    session: SessionContext,
    manager: ContextSource,
    findings: Findings,
    caller: str | None,
    *,
    only: set[str] | None = None,
) -> None:
    """Each active conversation (of those in `only`, if given) must exist, be readable by
    whoever is validating (so the check reveals nothing they could not read anyway) and
    by the session's user."""
    for index, conversation_id in enumerate(session.active_conversations):
        if only is not None and conversation_id not in only:
            continue
        path = f"/active_conversations/{index}"
        try:
            await manager.get_context(conversation_id, user_id=caller, include_messages=False)
        except (ContextNotFound, PermissionDenied):
            findings.report(
                Severity.ERROR,
                "session.unknown_conversation",
                f"conversation {conversation_id} does not exist",
                path,
                "remove it from active_conversations",
            )
            continue
        try:
            await manager.get_context(
                conversation_id, user_id=session.user_id, include_messages=False
            )
        except (ContextNotFound, PermissionDenied):
            findings.report(
                Severity.ERROR,
                "session.foreign_conversation",
                f"{session.user_id!r} may not read conversation {conversation_id}",
                path,
                "remove it, or share the conversation with the user",
            )
