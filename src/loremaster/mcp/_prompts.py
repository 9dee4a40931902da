"""The prompts: resuming a context in a model's window, and what changed since a version.

Prompt messages are text with a user or assistant role: a conversation's own messages are
rendered into them (a system message, a tool call or result as a labelled line)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, assert_never

from mcp import types
from pydantic import BaseModel, ConfigDict, Field

from ..errors import VersionNotFound
from ..models import (
    Context,
    ContextEvent,
    ConversationContext,
    DocumentPart,
    ImagePart,
    Message,
    MessageRole,
    Part,
    ProviderType,
    TextPart,
    ThinkingPart,
    ToolCallPart,
    ToolResultPart,
)
from ._bridge import Bridge, json_text, parse_arguments

__all__ = ["PROMPTS", "Prompt"]

_QUOTED = 160
"""Characters of a left-out message quoted in the summary of what was cut."""
_QUOTES = 12
_EVENTS = 200
"""Changes listed at most by what_changed."""


class _Arguments(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ResumeArguments(_Arguments):
    context_id: str = Field(description="the context to resume (a campaign, a conversation)")
    provider: ProviderType = Field(
        ProviderType.ANTHROPIC, description="anthropic, openai or google: whose window to fit"
    )
    model: str | None = Field(None, description="the model (default: the provider's default)")
    reserve_output: int | None = Field(None, ge=0, description="tokens kept for the answer")


class WhatChangedArguments(_Arguments):
    context_id: str
    version: str = Field(description="a version id, or a version number")


# -- rendering ---------------------------------------------------------------------------------


def _part_text(part: Part) -> str:
    if isinstance(part, TextPart):
        return part.text
    if isinstance(part, ToolCallPart):
        return f"[tool call {part.name} {json_text(part.arguments)}]"
    if isinstance(part, ToolResultPart):
        content = " ".join(c.text if isinstance(c, TextPart) else "[image]" for c in part.content)
        return f"[tool result{' (error)' if part.is_error else ''}: {content}]"
    if isinstance(part, ImagePart):
        return "[image]"
    if isinstance(part, DocumentPart):
        return f"[document {part.title or ''}]".replace(" ]", "]")
    if isinstance(part, ThinkingPart):
        return ""
    assert_never(part)


def _message_text(message: Message) -> str:
    return "\n".join(text for part in message.parts if (text := _part_text(part)))


def _prompt_message(message: Message) -> types.PromptMessage:
    text = _message_text(message)
    if message.role is MessageRole.ASSISTANT:
        return _said("assistant", text)
    label = "" if message.role is MessageRole.USER else f"[{message.role.value}] "
    return _said("user", label + text)


def _said(role: types.Role, text: str) -> types.PromptMessage:
    return types.PromptMessage(role=role, content=types.TextContent(type="text", text=text))


def _quote(message: Message) -> str:
    text = " ".join(_message_text(message).split())
    cut = text if len(text) <= _QUOTED else text[: _QUOTED - 1] + "…"
    return f"- #{message.seq} {message.role.value}: {cut}"


def cut_summary(removed: Sequence[Message], model: str, budget: int) -> str:
    """What fitting left out: how many, which, when, and how each began."""
    first, last = removed[0], removed[-1]
    lines = [
        f"{len(removed)} earlier message{'s' if len(removed) != 1 else ''} "
        f"(#{first.seq} to #{last.seq}, {first.created_at:%Y-%m-%d %H:%M} to "
        f"{last.created_at:%Y-%m-%d %H:%M} UTC) were left out to fit {model}'s window "
        f"({budget:,} tokens). They began:",
        *(_quote(message) for message in removed[:_QUOTES]),
    ]
    if len(removed) > _QUOTES:
        lines.append(f"- ... and {len(removed) - _QUOTES} more (get_messages pages them)")
    return "\n".join(lines)


def _state_of(context: Context) -> dict[str, Any]:
    """The context's fields a model resumes from: everything but the messages and the
    bookkeeping."""
    skip = {"messages", "context_id", "created_at", "last_modified", "last_accessed"}
    return {k: v for k, v in context.model_dump(mode="json").items() if k not in skip and v}


# -- resume ----------------------------------------------------------------------------------


async def resume(bridge: Bridge, arguments: dict[str, str]) -> types.GetPromptResult:
    args = parse_arguments(ResumeArguments, arguments, "the resume prompt")
    context = await bridge.manager.get_context(args.context_id, bridge.user_id)
    messages = context.messages if isinstance(context, ConversationContext) else []
    translator = bridge.translator
    model = translator.model(args.provider, args.model)
    removed: list[Message] = []

    def summarize(left_out: Sequence[Message]) -> Message:
        removed[:] = left_out
        text = cut_summary(left_out, model.name, model.context_window)
        return Message(role=MessageRole.SYSTEM, parts=[TextPart(text=text)])

    fitted = translator.fit_to_window(
        messages,
        args.provider,
        args.model,
        reserve_output=args.reserve_output,
        summarizer=summarize,
    )
    opening = (
        f"Resume {context.context_type.value} context {context.title!r} "
        f"({context.context_id}, revision {context.revision}) where it left off. "
        f"Its state:\n{json_text(_state_of(context))}"
    )
    if not removed:
        opening += f"\nAll {len(messages)} messages fit {model.name}'s window; they follow."
    return types.GetPromptResult(
        description=f"{context.title}, fitted to {model.name}: {len(fitted.messages)} "
        f"messages, {fitted.tokens:,} of {fitted.budget:,} tokens, {len(removed)} left out",
        messages=[_said("user", opening), *(_prompt_message(m) for m in fitted.messages)],
    )


# -- what changed -------------------------------------------------------------------------------


def _event_line(event: ContextEvent) -> str:
    by = event.user_id or "system"
    via = f" via {event.tool}" if event.tool else ""
    on = "" if event.branch == "main" else f" on {event.branch}"
    when = f"{event.created_at:%Y-%m-%d %H:%M:%S} UTC"
    return f"- revision {event.revision}: {event.op}{on} by {by}{via} at {when}"


async def _version_id(bridge: Bridge, context_id: str, version: str) -> str:
    """A version id as given, or the id of version number `version`."""
    if not version.isdigit():
        return version
    number = int(version)
    found = await bridge.manager.get_version_history(
        context_id, bridge.user_id, 1, before=number + 1
    )
    if not found or found[0].number != number:
        raise VersionNotFound(context_id, f"number {number}")
    return found[0].version_id


async def what_changed(bridge: Bridge, arguments: dict[str, str]) -> types.GetPromptResult:
    args = parse_arguments(WhatChangedArguments, arguments, "the what_changed prompt")
    cm, user = bridge.manager, bridge.user_id
    version_id = await _version_id(bridge, args.context_id, args.version)
    then = await cm.get_version(args.context_id, version_id, user, include_messages=False)
    now = await cm.get_context(args.context_id, user, include_messages=False)
    events = await cm.get_events(args.context_id, user, then.revision, _EVENTS)
    lines = [
        f"What changed in {now.context_type.value} context {now.title!r} ({now.context_id}) "
        f"since version {args.version} (revision {then.revision}); it is at revision "
        f"{now.revision} now.",
    ]
    if not events:
        lines.append("Nothing changed since.")
    else:
        lines.append(f"{len(events)} change{'s' if len(events) != 1 else ''}, oldest first:")
        lines += [_event_line(event) for event in events]
        if len(events) == _EVENTS:
            lines.append(f"(the first {_EVENTS}; diff_versions shows the rest)")
        newest = await cm.get_version_history(args.context_id, user, 1)
        if newest and newest[0].version_id != version_id:
            diff = await cm.diff_versions(args.context_id, version_id, newest[0].version_id, user)
            lines.append(f"The fields, as a JSON Patch from then to version {newest[0].number}:")
            lines.append(json_text(diff.patch))
            if diff.messages_added:
                lines.append(f"{len(diff.messages_added)} messages were added, beginning:")
                lines += [_quote(message) for message in diff.messages_added[:_QUOTES]]
    return types.GetPromptResult(
        description=f"{now.title}: {len(events)} changes since version {args.version}",
        messages=[_said("user", "\n".join(lines))],
    )


# -- the table ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Prompt:
    name: str
    title: str
    description: str
    arguments: type[_Arguments]
    render: Callable[[Bridge, dict[str, str]], Awaitable[types.GetPromptResult]]

    @property
    def listed(self) -> types.Prompt:
        schema = self.arguments.model_json_schema()
        required = set(schema.get("required", ()))
        return types.Prompt(
            name=self.name,
            title=self.title,
            description=self.description,
            arguments=[
                types.PromptArgument(
                    name=name, description=spec.get("description"), required=name in required
                )
                for name, spec in schema["properties"].items()
            ],
        )


PROMPTS: dict[str, Prompt] = {
    prompt.name: prompt
    for prompt in (
        Prompt(
            "resume",
            "Resume this campaign",
            "A context fitted into a model's window to pick up where it left off: its state, "
            "the messages that fit, and a summary of the ones left out.",
            ResumeArguments,
            resume,
        ),
        Prompt(
            "what_changed",
            "What changed since version X",
            "Every change to a context since a version — who made it, through which tool — "
            "and the fields and messages that differ.",
            WhatChangedArguments,
            what_changed,
        ),
    )
}
