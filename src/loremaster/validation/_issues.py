"""What validation reports: issues with stable codes, and the result."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict

__all__ = ["CODES", "Severity", "ValidationIssue", "ValidationResult"]


class Severity(StrEnum):
    ERROR = "error"
    WARNING = "warning"
    INFO = "info"


CODES: dict[str, str] = {
    "schema.invalid": "the value does not match the context type's JSON Schema",
    "context.unknown_permission": "a permission is not one of read, write, admin",
    "context.too_large": "the context is larger than CONTEXT_MAX_SIZE_MB",
    "message.missing_id": "a message has no id (one is generated)",
    "message.missing_timestamp": "a message has no created_at (now is used)",
    "conversation.empty_message": "a message has no content, or only whitespace",
    "conversation.empty_part": "a text part holds only whitespace next to other parts",
    "conversation.orphan_tool_result": "a tool result refers to no earlier tool call",
    "conversation.duplicate_tool_result": "a tool call has more than one result",
    "conversation.duplicate_message_id": "two messages share an id",
    "conversation.timestamp_backwards": "a message is older than the one before it",
    "conversation.system_position": "a system message where the target provider allows none",
    "conversation.consecutive_same_role": "two messages in a row from the same role, where "
    "the target provider requires alternation",
    "conversation.turn_count_mismatch": "turn_count is not the number of user messages",
    "session.unknown_conversation": "an active conversation does not exist",
    "session.foreign_conversation": "an active conversation is not readable by the user",
    "collaborative.participant_not_member": "an active participant is neither the owner "
    "nor a collaborator",
    "collaborative.lock_holder_not_participant": "a lock is held by someone not in the room",
    "collaborative.too_many_participants": "more participants than CONTEXT_MAX_PARTICIPANTS",
    "collaborative.duplicate_participant": "a participant is listed twice",
    "rule.failed": "a custom rule raised an exception",
}
"""Every built-in issue code and what it means. Codes never change once released; a
correction is reported with the code of what it corrected and the suffix ``.fixed``."""


class ValidationIssue(BaseModel):
    """One finding: where (a JSON pointer), how bad, what, and what would fix it."""

    model_config = ConfigDict(frozen=True)

    severity: Severity
    code: str
    message: str
    path: str = ""
    suggested_fix: str | None = None


class ValidationResult(BaseModel):
    """`is_valid` judges the input (no error-severity issue). `corrected_data`, when
    corrections were applied, is the corrected context (same kind as the input: a model
    or a dict) and is itself valid."""

    is_valid: bool
    issues: list[ValidationIssue]
    corrected_data: Any = None

    @property
    def errors(self) -> list[ValidationIssue]:
        return [issue for issue in self.issues if issue.severity is Severity.ERROR]
