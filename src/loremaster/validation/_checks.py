"""Semantic checks of each context type, and the corrections that are unambiguous.

Pure functions over models. A check reports an issue; with corrections on, it also hands
back the corrected context, and lists each correction as an ``info`` issue whose code is
the corrected problem's code plus ``.fixed``. Corrections never invent content: they drop,
merge, recount, deduplicate or fill ids and timestamps.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..models import (
    CollaborativeContext,
    Context,
    ConversationContext,
    Message,
    MessageRole,
    ProviderType,
    TextPart,
    ToolCallPart,
    ToolResultPart,
    count_turns,
)
from ._issues import Severity, ValidationIssue

__all__ = ["Findings", "check_context"]

# Providers whose APIs take system instructions only at the start, and want user and
# assistant turns to alternate.
_LEADING_SYSTEM_ONLY = {ProviderType.ANTHROPIC, ProviderType.GOOGLE}
_ALTERNATING = {ProviderType.ANTHROPIC, ProviderType.GOOGLE}


@dataclass
class Findings:
    correct: bool
    issues: list[ValidationIssue] = field(default_factory=list)
    corrected: bool = False

    def report(
        self, severity: Severity, code: str, message: str, path: str, fix: str | None = None
    ) -> None:
        self.issues.append(
            ValidationIssue(
                severity=severity, code=code, message=message, path=path, suggested_fix=fix
            )
        )

    def fixed(self, code: str, what: str, path: str) -> None:
        self.issues.append(
            ValidationIssue(severity=Severity.INFO, code=f"{code}.fixed", message=what, path=path)
        )
        self.corrected = True


def _is_blank(part: Any) -> bool:
    return isinstance(part, TextPart) and not part.text.strip()


def _without_blank_messages(messages: list[Message], findings: Findings) -> list[Message]:
    kept: list[Message] = []
    for index, message in enumerate(messages):
        path = f"/messages/{index}"
        blank = [i for i, part in enumerate(message.parts) if _is_blank(part)]
        if len(blank) == len(message.parts):
            findings.report(
                Severity.WARNING,
                "conversation.empty_message",
                "the message has no content" if not blank else "the message is only whitespace",
                path,
                "remove the message",
            )
            if findings.correct:
                findings.fixed("conversation.empty_message", "removed the empty message", path)
                continue
        elif blank:
            findings.report(
                Severity.WARNING,
                "conversation.empty_part",
                "a text part is only whitespace",
                f"{path}/parts/{blank[0]}",
                "remove the part",
            )
            if findings.correct:
                parts = [part for part in message.parts if not _is_blank(part)]
                kept.append(message.model_copy(update={"parts": parts}))
                findings.fixed("conversation.empty_part", "removed whitespace-only parts", path)
                continue
        kept.append(message)
    return kept


def _with_tool_results_matched(messages: list[Message], findings: Findings) -> list[Message]:
    calls: set[str] = set()
    answered: set[str] = set()
    kept: list[Message] = []
    for index, message in enumerate(messages):
        parts = []
        for number, part in enumerate(message.parts):
            path = f"/messages/{index}/parts/{number}"
            if isinstance(part, ToolCallPart):
                calls.add(part.id)
            elif isinstance(part, ToolResultPart):
                if part.call_id not in calls:
                    findings.report(
                        Severity.ERROR,
                        "conversation.orphan_tool_result",
                        f"tool result for {part.call_id!r}, which no earlier message calls",
                        path,
                        "remove the tool result",
                    )
                    if findings.correct:
                        findings.issues.append(
                            ValidationIssue(
                                severity=Severity.WARNING,
                                code="conversation.orphan_tool_result.fixed",
                                message=f"dropped the orphaned result for {part.call_id!r}",
                                path=path,
                            )
                        )
                        findings.corrected = True
                        continue
                elif part.call_id in answered:
                    findings.report(
                        Severity.ERROR,
                        "conversation.duplicate_tool_result",
                        f"tool call {part.call_id!r} already has a result",
                        path,
                        "keep one result per tool call",
                    )
                answered.add(part.call_id)
            parts.append(part)
        if parts or not message.parts:
            kept.append(
                message.model_copy(update={"parts": parts}) if parts != message.parts else message
            )
    return kept


def _check_order(messages: list[Message], findings: Findings) -> None:
    seen: set[str] = set()
    for index, message in enumerate(messages):
        if message.id in seen:
            findings.report(
                Severity.ERROR,
                "conversation.duplicate_message_id",
                f"message id {message.id!r} is used more than once",
                f"/messages/{index}/id",
                "give each message its own id",
            )
        seen.add(message.id)
        if index and message.created_at < messages[index - 1].created_at:
            findings.report(
                Severity.WARNING,
                "conversation.timestamp_backwards",
                "this message is older than the one before it",
                f"/messages/{index}/created_at",
            )


def _check_system(messages: list[Message], provider: ProviderType, findings: Findings) -> None:
    leading = True
    for index, message in enumerate(messages):
        if message.role is not MessageRole.SYSTEM:
            leading = False
        elif not leading:
            findings.report(
                Severity.WARNING,
                "conversation.system_position",
                f"{provider.value} takes system instructions only before the conversation",
                f"/messages/{index}",
                "move it to the start, or make it a user message",
            )


def _merge_same_role(
    messages: list[Message], provider: ProviderType, findings: Findings
) -> list[Message]:
    merged: list[Message] = []
    for index, message in enumerate(messages):
        previous = merged[-1] if merged else None
        same = (
            previous is not None
            and previous.role is message.role
            and message.role in (MessageRole.USER, MessageRole.ASSISTANT)
        )
        if not same or previous is None:
            merged.append(message)
            continue
        path = f"/messages/{index}"
        findings.report(
            Severity.WARNING,
            "conversation.consecutive_same_role",
            f"{provider.value} wants user and assistant turns to alternate",
            path,
            "merge it into the message before",
        )
        texts_only = all(isinstance(p, TextPart) for p in (*previous.parts, *message.parts))
        if findings.correct and texts_only:
            merged[-1] = previous.model_copy(update={"parts": [*previous.parts, *message.parts]})
            findings.fixed(
                "conversation.consecutive_same_role", "merged into the message before", path
            )
        else:
            merged.append(message)
    return merged


def _check_conversation(
    context: ConversationContext, provider: ProviderType | None, findings: Findings
) -> ConversationContext:
    messages = _without_blank_messages(list(context.messages), findings)
    messages = _with_tool_results_matched(messages, findings)
    _check_order(messages, findings)
    if provider in _LEADING_SYSTEM_ONLY:
        _check_system(messages, provider, findings)
    if provider in _ALTERNATING:
        messages = _merge_same_role(messages, provider, findings)
    update: dict[str, Any] = {}
    if messages != context.messages:
        update["messages"] = messages
    turns = count_turns(context.messages)
    partial = (
        "message_count" in context.model_fields_set
        and len(context.messages) != context.message_count
    )  # read without all its messages: nothing to count against
    if "turn_count" in context.model_fields_set and not partial and context.turn_count != turns:
        findings.report(
            Severity.WARNING,
            "conversation.turn_count_mismatch",
            f"turn_count is {context.turn_count}, the messages hold {turns} user turns",
            "/turn_count",
            f"set it to {turns}",
        )
        if findings.correct:
            findings.fixed("conversation.turn_count_mismatch", f"recounted: {turns}", "/turn_count")
    if findings.correct and (update or ("turn_count" in context.model_fields_set and not partial)):
        update["turn_count"] = count_turns(messages)
        return context.model_copy(update=update)
    return context


def _check_room(
    context: CollaborativeContext, max_participants: int, findings: Findings
) -> CollaborativeContext:
    participants = context.active_participants
    members = {*context.collaborators, *([context.owner_id] if context.owner_id else [])}
    for index, user in enumerate(participants):
        if members and user not in members:
            findings.report(
                Severity.WARNING,
                "collaborative.participant_not_member",
                f"{user!r} is neither the owner nor a collaborator",
                f"/active_participants/{index}",
                "add them to collaborators, or remove them from the room",
            )
    for lock, holder in context.locks.items():
        who = holder.get("holder") if isinstance(holder, dict) else holder
        if who not in participants:
            findings.report(
                Severity.ERROR,
                "collaborative.lock_holder_not_participant",
                f"lock {lock!r} is held by {who!r}, who is not in the room",
                f"/locks/{lock}",
                "release the lock",
            )
    if len(set(participants)) > max_participants:
        findings.report(
            Severity.ERROR,
            "collaborative.too_many_participants",
            f"{len(set(participants))} participants, more than {max_participants}",
            "/active_participants",
        )
    unique = list(dict.fromkeys(participants))
    if len(unique) != len(participants):
        findings.report(
            Severity.WARNING,
            "collaborative.duplicate_participant",
            "a participant is listed more than once",
            "/active_participants",
            "list each participant once",
        )
        if findings.correct:
            findings.fixed(
                "collaborative.duplicate_participant",
                "removed repeated participants",
                "/active_participants",
            )
            return context.model_copy(update={"active_participants": unique})
    return context


def _check_size(context: Context, max_bytes: int, findings: Findings) -> None:
    size = len(context.model_dump_json())
    if size > max_bytes:
        findings.report(
            Severity.ERROR,
            "context.too_large",
            f"the context is {size:,} bytes, over the limit of {max_bytes:,}",
            "",
            "move large data out of the context, or raise CONTEXT_MAX_SIZE_MB",
        )


def check_context(
    context: Context,
    findings: Findings,
    *,
    max_bytes: int | None,
    max_participants: int,
    provider: ProviderType | None = None,
) -> Context:
    """Run the checks for `context`'s type; the corrected context (or `context` itself)."""
    if isinstance(context, ConversationContext):
        context = _check_conversation(context, provider or context.primary_provider, findings)
    elif isinstance(context, CollaborativeContext):
        context = _check_room(context, max_participants, findings)
    if max_bytes is not None:
        _check_size(context, max_bytes, findings)
    return context
