"""How the CLI shows things: rich tables for people, JSON for scripts."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, assert_never

import orjson
from pydantic import BaseModel
from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text
from rich.tree import Tree

from ..models import (
    Branch,
    CleanupReport,
    Context,
    ContextConflict,
    ContextEvent,
    ContextState,
    ContextVersion,
    ConversationContext,
    DocumentPart,
    ImagePart,
    MergeResult,
    Message,
    Part,
    SearchHit,
    TextPart,
    ThinkingPart,
    ToolCallPart,
    ToolResultPart,
    VersionDiff,
    from_micros,
)
from ..storage import MigrationStatus
from ..validation import ValidationResult

__all__ = [
    "PREVIEW_CHARS",
    "console",
    "error_console",
    "plural",
    "print_json",
    "show_branches",
    "show_cleanup",
    "show_conflicts",
    "show_context",
    "show_contexts",
    "show_diff",
    "show_event",
    "show_events",
    "show_history",
    "show_hits",
    "show_issues",
    "show_mapping",
    "show_merge",
    "show_messages",
    "show_migrations",
]

console = Console()
error_console = Console(stderr=True)

PREVIEW_CHARS = 500
"""Characters of a message body (or a text field) a table shows; ``--full`` shows all."""


def plural(count: int, word: str, many: str | None = None) -> str:
    """``1 context``, ``2 contexts`` (`many` for a plural that is not word + s)."""
    return f"{count:,} {word if count == 1 else many or word + 's'}"


def _cut(text: str, full: bool) -> str:
    """`text`, or its first PREVIEW_CHARS and a note of what was left out."""
    if full or len(text) <= PREVIEW_CHARS:
        return text
    rest = plural(len(text) - PREVIEW_CHARS, "more character")
    return f"{text[:PREVIEW_CHARS]}\n... {rest} (--full shows them)"


def _plain(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    return value


def print_json(value: Any) -> None:
    """Pretty JSON on stdout, bypassing rich markup so scripts can parse it."""
    text = orjson.dumps(_plain(value), option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS)
    console.file.write(text.decode() + "\n")


def _row(table: Table, *cells: str) -> None:
    """Add a row of plain text: brackets in user content are not rich markup."""
    table.add_row(*(Text(cell) for cell in cells))


def show_contexts(contexts: Iterable[Context], title: str = "Contexts") -> None:
    """Narrow enough for an 80-column terminal; `show` has the rest."""
    table = Table(title=title, box=box.SIMPLE_HEAD)
    table.add_column("id", no_wrap=True)
    table.add_column("type")
    table.add_column("rev", justify="right")
    table.add_column("title", overflow="fold", min_width=12)
    for context in contexts:
        kind = context.context_type.value
        if context.state is not ContextState.ACTIVE:
            kind += f" ({context.state.value})"
        _row(table, context.context_id, kind, str(context.revision), context.title)
    console.print(table)


def _compact(value: Any) -> str:
    text = orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()
    return text if len(text) <= 120 else text[:117] + "..."


def show_context(context: Context, *, full: bool = False) -> None:
    """Its fields, then its messages (a long body or text cut unless `full`)."""
    table = Table(title=f"{context.context_type.value}: {context.title}", show_header=False)
    table.add_column("field", style="bold")
    table.add_column("value", overflow="fold")
    for name, value in context.model_dump(mode="json", exclude={"messages"}).items():
        if value in ({}, [], "", None):
            continue
        _row(table, name, _cut(value, full) if isinstance(value, str) else _compact(value))
    console.print(table)
    if isinstance(context, ConversationContext) and context.messages:
        show_messages(context.messages, full=full)


def _describe_part(part: Part) -> str:
    if isinstance(part, TextPart):
        return part.text
    if isinstance(part, ToolCallPart):
        return f"[tool call {part.name} {_compact(part.arguments)}]"
    if isinstance(part, ToolResultPart):
        body = " ".join(item.text for item in part.content if isinstance(item, TextPart))
        return f"[tool result {part.call_id}: {body}]"
    if isinstance(part, ThinkingPart):
        return "[redacted thinking]" if part.redacted else f"[thinking] {part.text}"
    if isinstance(part, (ImagePart, DocumentPart)):
        return f"[{part.kind} {part.url or part.media_type}]"
    assert_never(part)


def _body(message: Message) -> str:
    return "\n".join(_describe_part(part) for part in message.parts)


def show_messages(messages: Sequence[Message], *, full: bool = False) -> None:
    """A table of the messages, each body cut to PREVIEW_CHARS; with `full`, each whole,
    as plain text under a heading (laying megabytes out in a table takes minutes)."""
    if full:
        for message in messages:
            console.print(Text(f"#{message.seq or ''} {message.role.value}", style="bold"))
            console.file.write(_body(message) + "\n")
        return
    table = Table(title="Messages")
    table.add_column("#", justify="right")
    table.add_column("role")
    table.add_column("content", overflow="fold")
    for message in messages:
        _row(table, str(message.seq or ""), message.role.value, _cut(_body(message), full))
    console.print(table)


def _describe_changes(event: ContextEvent) -> str:
    """What an event did, in words: one line per operation."""
    if event.op == "create":
        return "created"
    added = [c for c in event.changes if c.get("path") == "/messages/-"]
    if added and len(added) == len(event.changes):
        return f"+{len(added)} message{'s' if len(added) > 1 else ''}"
    lines = []
    for change in event.changes:
        value = f" = {_compact(change['value'])}" if "value" in change else ""
        source = f" from {change['from']}" if "from" in change else ""
        lines.append(f"{change.get('op')} {change.get('path') or '/'}{source}{value}")
    return "\n".join(lines)


def _event_cells(event: ContextEvent) -> tuple[str, str, str, str]:
    return (
        str(event.revision),
        event.op,
        event.user_id or "(trusted)",
        event.created_at.strftime("%m-%d %H:%M:%S"),
    )


def show_events(events: Sequence[ContextEvent]) -> None:
    """One row per event; a branch column when some event is not on main."""
    branches = any(event.branch != "main" for event in events)
    table = Table(title="Events", box=box.SIMPLE_HEAD)
    table.add_column("rev", justify="right")
    table.add_column("op")
    table.add_column("user")
    table.add_column("when", no_wrap=True)
    if branches:
        table.add_column("branch")
    table.add_column("changes", overflow="fold")
    for event in events:
        where = (event.branch,) if branches else ()
        _row(table, *_event_cells(event), *where, _describe_changes(event))
    console.print(table)


def show_event(event: ContextEvent) -> None:
    """One event as it arrives (`loremaster watch`): a line, then its changes indented."""
    rev, op, user, _ = _event_cells(event)
    when = event.created_at.strftime("%H:%M:%S")
    where = "" if event.branch == "main" else f" on {event.branch}"
    console.print(Text(f"rev {rev} {op}{where} by {user} at {when}"), soft_wrap=True)
    for line in _describe_changes(event).splitlines():
        console.print(Text(f"  {line}"), soft_wrap=True)
    console.file.flush()


def show_history(versions: Sequence[ContextVersion]) -> None:
    """Number, full id (to pass to diff and rollback), branch, messages covered, message;
    --json has the rest."""
    table = Table(title="Versions", box=box.SIMPLE_HEAD)
    table.add_column("#", justify="right")
    table.add_column("version id", no_wrap=True)
    table.add_column("branch")
    table.add_column("msgs", justify="right")
    table.add_column("message", overflow="fold")
    for v in versions:
        tags = f" [{', '.join(v.tags)}]" if v.tags else ""
        _row(table, str(v.number), v.version_id, v.branch, str(v.message_seq), v.message + tags)
    console.print(table)


def show_branches(branches: Sequence[Branch]) -> None:
    table = Table(title="Branches", box=box.SIMPLE_HEAD)
    for column in ("name", "head", "forked from", "messages", "last change"):
        table.add_column(column)
    for b in branches:
        _row(
            table,
            b.name,
            (b.head_version_id or "-")[:8],
            (b.base_version_id or "-")[:8],
            str(b.message_count),
            b.last_modified.strftime("%m-%d %H:%M:%S"),
        )
    console.print(table)


def show_diff(diff: VersionDiff) -> None:
    console.print(Text(f"{diff.from_version_id} -> {diff.to_version_id}", style="bold"))
    for change in diff.patch:
        value = f" = {_compact(change['value'])}" if "value" in change else ""
        console.print(Text(f"  {change['op']} {change['path'] or '/'}{value}"))
    if diff.messages_removed:
        removed = plural(diff.messages_removed, "message")
        console.print(Text(f"  - {removed} no longer in view"))
    for message in diff.messages_added:
        console.print(Text(f"  + [{message.role.value}] {_compact(message.text)}"))


def show_merge(result: MergeResult) -> None:
    if result.merged:
        console.print(
            Text(
                f"merged {result.source} into {result.target}: revision {result.revision}, "
                f"{plural(len(result.changes), 'field change')}, "
                f"{plural(result.messages_added, 'message')}"
            )
        )
    else:
        conflicts = plural(len(result.conflicts), "conflict")
        console.print(Text(f"not merged: {conflicts}", style="bold red"))
    for conflict in result.conflicts:
        console.print(
            Text(
                f"  {conflict.path}: base {_compact(conflict.base)}, {result.source} "
                f"{_compact(conflict.source)}, {result.target} {_compact(conflict.target)}"
            )
        )


def show_conflicts(conflicts: Sequence[ContextConflict]) -> None:
    """One block per open conflict: its id, who wrote it, then each path's three sides."""
    if not conflicts:
        console.print(Text("no open conflicts"))
        return
    for conflict in conflicts:
        chooser = f", for {conflict.resolver} to choose" if conflict.resolver else ""
        writer = conflict.user_id or conflict.provider or "(trusted)"
        console.print(
            Text.assemble(
                (conflict.conflict_id, "bold"),
                f"  {conflict.strategy} by {writer} at revision {conflict.revision} "
                f"(written against {conflict.base_revision}){chooser}",
            ),
            soft_wrap=True,
        )
        for path in conflict.paths:
            console.print(
                Text(
                    f"  {path.path or '/'}: base {_compact(path.base)}, current "
                    f"{_compact(path.current)}, incoming {_compact(path.incoming)}"
                )
            )
    console.print(Text(plural(len(conflicts), "open conflict")))


def show_hits(hits: Sequence[SearchHit]) -> None:
    """One block per hit: title and where it matched, the id, the snippet."""
    if not hits:
        console.print(Text("no matches"))
        return
    for hit in hits:
        where = "title/description" if hit.message_seq is None else f"message #{hit.message_seq}"
        console.print(
            Text.assemble((hit.title, "bold"), f"  ({hit.context_type.value}, {where})"),
            soft_wrap=True,
        )
        console.print(Text(f"  {hit.context_id}"), soft_wrap=True)
        console.print(Text(f"  {hit.snippet}"))


def _grow(tree: Tree, value: Mapping[str, Any]) -> None:
    for key, item in value.items():
        if isinstance(item, Mapping) and item:
            _grow(tree.add(Text(str(key), style="bold")), item)
        else:
            tree.add(Text.assemble((str(key), "bold"), ": ", _compact(item)))


def show_mapping(title: str, value: Mapping[str, Any]) -> None:
    tree = Tree(Text(title, style="bold"))
    _grow(tree, value)
    console.print(tree)


def show_migrations(status: MigrationStatus) -> None:
    table = Table(title=f"Schema version {status.version}", box=box.SIMPLE_HEAD)
    for column in ("version", "name", "state"):
        table.add_column(column)
    for version, name, applied_at in status.applied:
        when = from_micros(applied_at).strftime("%Y-%m-%d %H:%M:%S")
        _row(table, f"{version:04d}", name, f"applied {when}")
    for version, name in status.pending:
        _row(table, f"{version:04d}", name, "pending")
    console.print(table)


def show_cleanup(report: CleanupReport) -> None:
    verb = "would" if report.dry_run else "did"
    console.print(
        Text(
            f"Retention {verb}: archive {plural(len(report.archived), 'context')}, "
            f"purge {plural(len(report.purged), 'deleted context')}, "
            f"trim {plural(report.events_trimmed, 'event')}, "
            f"prune {plural(report.versions_pruned, 'old version')}, "
            f"forget {plural(report.idempotency_keys_purged, 'expired idempotency key')}."
        )
    )
    for label, ids in (("archive", report.archived), ("purge", report.purged)):
        for context_id in ids:
            console.print(Text(f"  {label} {context_id}"))


_SEVERITY_STYLE = {"error": "bold red", "warning": "yellow", "info": "dim"}


def show_issues(result: ValidationResult) -> None:
    """One block per issue: severity, code and place; the message; the suggested fix."""
    if not result.issues:
        console.print(Text("valid: no issues", style="green"))
        return
    rank = {"error": 0, "warning": 1, "info": 2}
    for issue in sorted(result.issues, key=lambda i: rank[i.severity.value]):
        severity = issue.severity.value
        console.print(
            Text.assemble(
                (f"{severity:<8}", _SEVERITY_STYLE[severity]),
                (issue.code, "bold"),
                f"  at {issue.path or '/'}",
            ),
            soft_wrap=True,
        )
        console.print(Text(f"        {issue.message}"), soft_wrap=True)
        if issue.suggested_fix:
            console.print(Text(f"        fix: {issue.suggested_fix}"), soft_wrap=True)
    counts = ", ".join(
        plural(sum(i.severity.value == level for i in result.issues), level, many)
        for level, many in (("error", None), ("warning", None), ("info", "info"))
    )
    verdict = "valid" if result.is_valid else "not valid"
    console.print(Text(f"{verdict}: {counts}", style="bold"))
