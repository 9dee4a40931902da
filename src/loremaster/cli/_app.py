"""The ``loremaster`` command: a thin face of `ContextManager`.

Each command parses its options, opens a manager, makes one library call and shows the
result. Library errors become a one-line message and exit code 1.
"""

from __future__ import annotations

import asyncio
import functools
import itertools
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO, TypeVar

import click
import orjson
from click.core import ParameterSource
from rich.progress import Progress

from ..codec import inspect_blob
from ..errors import LoremasterError, UnsupportedFormat, ValidationFailed
from ..manager import ContextManager
from ..manager._dump import is_dump
from ..models import Context, ContextQuery, ContextState, ContextType, ProviderType
from ..storage import MigrationStatus
from ..validation import ContextValidator, ValidationResult, export_schemas
from . import _full, _render
from ._demo import run_demo
from ._files import STDOUT, output_file, write_file
from ._session import READ_COMMANDS, Interrupted, command_name, interrupted_import, run_session

__all__ = ["cli"]

T = TypeVar("T")

PROVIDER_CHOICE = click.Choice([*(provider.value for provider in ProviderType), "gemini"])
"""A provider option's values (``gemini`` is another name of ``google``)."""

EXPORT_FORMAT = "loremaster-export"
EXPORT_VERSION = 1


@dataclass(frozen=True)
class Options:
    database_url: str | None
    user_id: str | None
    as_json: bool
    reads: bool = False
    """The command only reads (it is in READ_COMMANDS): it never creates nor migrates."""

    def show(self, value: T, render: Callable[[T], None]) -> None:
        """JSON with --json, else the human rendering."""
        if self.as_json:
            _render.print_json(value)
        else:
            render(value)

    def run(self, work: Callable[[ContextManager], Awaitable[T]], *, migrate: bool = True) -> T:
        """Open a manager, run `work` with it, close it; library errors end the command.
        A write creates and migrates the database; a read needs it there and current
        (``migrate=False``: a read of any schema, a write leaving it as it is)."""
        return run_session(self.database_url, work, reads=self.reads, migrate=migrate)


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _loads(text: str | bytes) -> Any:
    """JSON as written, for the library to judge: integers exact (orjson makes one beyond
    64 bits a float, which the library could not tell from one written so), NaN and
    Infinity refused. Raises ValueError (RecursionError for absurd nesting)."""
    return json.loads(text, parse_constant=_refuse_constant)


def _parse_json(value: str, kind: type | None) -> Any:
    try:
        parsed = _loads(value)
    except (ValueError, RecursionError) as exc:
        raise click.BadParameter(f"not valid JSON ({exc})") from exc
    if kind is not None and not isinstance(parsed, kind):
        raise click.BadParameter(f"must be a JSON {'object' if kind is dict else 'array'}")
    return parsed


def json_value(kind: type | None = None) -> Callable[[click.Context, click.Parameter, Any], Any]:
    """A click callback that parses an option's value as JSON (of type `kind`)."""

    def callback(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
        return None if value is None else _parse_json(value, kind)

    return callback


def _read_json(path: Path) -> Any:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise click.ClickException(f"cannot read {path}: {exc.strerror}") from exc
    return _json_of(data, path)


def _json_of(data: bytes, source: Path) -> Any:
    try:
        return _loads(data)
    except (ValueError, RecursionError) as exc:
        raise click.ClickException(f"{source} is not valid JSON: {exc}") from exc


def _given(name: str) -> bool:
    """Whether the parameter `name` of the running command was given, not defaulted."""
    source = click.get_current_context().get_parameter_source(name)
    return source not in (None, ParameterSource.DEFAULT)


def common_options(fn: Callable[..., None]) -> Callable[..., None]:
    """--database-url, --user and --json, shared by every command."""

    @click.option(
        "--database-url",
        envvar="CONTEXT_DATABASE_URL",
        default=None,
        help="sqlite:///path.db or postgresql://... (default: CONTEXT_DATABASE_URL, "
        "else ./loremaster.db)",
    )
    @click.option("--user", "user_id", default=None, help="act as this user (default: trusted)")
    @click.option("--json", "as_json", is_flag=True, help="print JSON instead of tables")
    @functools.wraps(fn)
    def wrapper(
        database_url: str | None, user_id: str | None, as_json: bool, **kwargs: Any
    ) -> None:
        reads = command_name() in READ_COMMANDS
        try:
            fn(Options(database_url, user_id, as_json, reads), **kwargs)
        except KeyboardInterrupt as exc:
            raise Interrupted() from exc

    return wrapper


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="loremaster")
def cli() -> None:
    """loremaster: durable, versioned, shareable context for LLM applications."""


@cli.command()
@common_options
@click.option(
    "--type",
    "context_type",
    type=click.Choice([t.value for t in ContextType]),
    default=ContextType.CONVERSATION.value,
    show_default=True,
    help="the context's type (also of a --file that names none)",
)
@click.option("--title", help="the context's title (required unless --file)")
@click.option("--description", default="")
@click.option("--data", callback=json_value(dict), default=None, help="JSON object")
@click.option("--metadata", callback=json_value(dict), default=None, help="JSON object")
@click.option("--owner", default=None, help="owner (default: --user)")
@click.option("--collaborator", "collaborators", multiple=True, help="repeat for several")
@click.option(
    "--file", "file", type=click.Path(path_type=Path), help="a JSON file holding the context"
)
@click.option("--new-id", is_flag=True, help="with --file: store it under a new id (a copy)")
def create(
    options: Options,
    context_type: str,
    title: str | None,
    description: str,
    data: dict[str, Any] | None,
    metadata: dict[str, Any] | None,
    owner: str | None,
    collaborators: tuple[str, ...],
    file: Path | None,
    new_id: bool,
) -> None:
    """Create a context and print its id."""
    if file is not None:
        fields = _read_json(file)
        if not isinstance(fields, dict):
            raise click.ClickException(f"{file} must hold a JSON object")
        fields.setdefault("context_type", context_type)
        if fields["context_type"] != context_type and _given("context_type"):
            raise click.ClickException(
                f"--type {context_type}, but {file} holds a {fields['context_type']} context"
            )
        if new_id:
            fields.pop("context_id", None)
    elif title is None:
        raise click.ClickException("give --title (or --file)")
    else:
        fields = {
            "context_type": context_type,
            "title": title,
            "description": description,
            "data": data or {},
            "metadata": metadata or {},
            "owner_id": owner,
            "collaborators": list(collaborators),
        }
    context_id = options.run(lambda cm: cm.create_context(fields, user_id=options.user_id))
    if options.as_json:
        _render.print_json({"context_id": context_id})
    else:
        _render.console.print(context_id)


@cli.command()
@common_options
@click.argument("context_id")
@click.option(
    "--last",
    default=20,
    show_default=True,
    type=click.IntRange(min=0),
    help="messages to show (tables only)",
)
@click.option("--full", is_flag=True, help="show long messages whole (default: cut)")
@click.option("--branch", default="main", show_default=True, help="the context on this branch")
def show(options: Options, context_id: str, last: int, full: bool, branch: str) -> None:
    """Show a context (and its latest messages, long ones cut unless --full)."""

    async def work(cm: ContextManager) -> Context:
        if options.as_json:
            return await cm.get_context(context_id, user_id=options.user_id, branch=branch)
        context = await cm.get_context(
            context_id, user_id=options.user_id, include_messages=False, branch=branch
        )
        if getattr(context, "message_count", 0) and last > 0:
            messages = await cm.get_messages(
                context_id, user_id=options.user_id, limit=last, branch=branch
            )
            context = context.model_copy(update={"messages": messages})
        return context

    context = options.run(work)
    options.show(context, functools.partial(_render.show_context, full=full))


@cli.command(name="list")
@common_options
@click.option("--type", "context_type", type=click.Choice([t.value for t in ContextType]))
@click.option("--state", type=click.Choice([s.value for s in ContextState]))
@click.option("--owner", "owner_id")
@click.option("--collaborator")
@click.option("--title", "title_contains", help="title contains this text")
@click.option(
    "--metadata", "metadata_match", callback=json_value(dict), help="JSON the metadata holds"
)
@click.option(
    "--order-by",
    type=click.Choice(["created_at", "last_modified", "last_accessed", "title"]),
    default="last_modified",
    show_default=True,
)
@click.option("--ascending", is_flag=True)
@click.option("--limit", default=50, show_default=True)
@click.option("--offset", default=0)
@click.option("--cursor", help="next_cursor of the previous page")
def list_(options: Options, ascending: bool, **filters: Any) -> None:
    """List contexts, newest change first."""
    given = {key: value for key, value in filters.items() if value is not None}
    page = options.run(
        lambda cm: cm.query_contexts(user_id=options.user_id, descending=not ascending, **given)
    )
    if options.as_json:
        _render.print_json(
            {"items": [c.model_dump(mode="json") for c in page], "next_cursor": page.next_cursor}
        )
        return
    _render.show_contexts(page)
    if page.next_cursor:
        _render.console.print(f"more: --cursor {page.next_cursor}", soft_wrap=True)


@cli.command()
@common_options
@click.argument("text")
@click.option("--limit", default=20, show_default=True)
@click.option("--branch", default="main", show_default=True, help="search this branch's view")
def search(options: Options, text: str, limit: int, branch: str) -> None:
    """Full-text search over titles, descriptions and messages (as a branch shows them)."""
    hits = options.run(
        lambda cm: cm.search_contexts(text, user_id=options.user_id, limit=limit, branch=branch)
    )
    options.show(hits, _render.show_hits)


@cli.command()
@common_options
@click.argument("context_id")
@click.option("--role", type=click.Choice(["system", "user", "assistant", "tool"]))
@click.option("--content", help="the message text")
@click.option(
    "--file",
    "file",
    type=click.Path(path_type=Path),
    help="JSON file: one message or a list of messages",
)
@click.option("--branch", default="main", show_default=True, help="append on this branch")
@click.option(
    "--from",
    "source",
    type=PROVIDER_CHOICE,
    default=None,
    help="the provider whose message shape the file is in (default: detected)",
)
def append(
    options: Options,
    context_id: str,
    role: str | None,
    content: str | None,
    file: Path | None,
    branch: str,
    source: str | None,
) -> None:
    """Append messages to a conversation; prints the new revision. The file's messages
    may be neutral or in OpenAI's, Anthropic's or Gemini's own shape."""
    if file is not None:
        loaded = _read_json(file)
        messages = loaded if isinstance(loaded, list) else [loaded]
    elif role and content is not None:
        messages = [{"role": role, "content": content}]
    else:
        raise click.ClickException("give --role and --content, or --file")
    revision = options.run(
        lambda cm: cm.append_messages(
            context_id, messages, user_id=options.user_id, branch=branch, source=source
        )
    )
    if options.as_json:
        _render.print_json({"revision": revision})
    else:
        _render.console.print(f"revision {revision}")


@cli.command()
@common_options
@click.argument("context_id")
@click.argument("changes", callback=json_value())
@click.option("--expected-revision", type=int, help="fail unless the context is at this revision")
@click.option("--branch", default="main", show_default=True, help="change it on this branch")
def update(
    options: Options, context_id: str, changes: Any, expected_revision: int | None, branch: str
) -> None:
    """Change a context: CHANGES is a JSON merge patch (object) or JSON Patch (array)."""
    if not isinstance(changes, (dict, list)):
        raise click.ClickException("CHANGES must be a JSON object or array")
    context = options.run(
        lambda cm: cm.update_context(
            context_id,
            changes,
            user_id=options.user_id,
            expected_revision=expected_revision,
            branch=branch,
        )
    )
    options.show(context, _render.show_context)


@cli.command()
@common_options
@click.argument("context_id")
@click.option("--hard", is_flag=True, help="remove for good, with messages and history")
def delete(options: Options, context_id: str, hard: bool) -> None:
    """Delete a context (soft by default: restorable)."""
    options.run(lambda cm: cm.delete_context(context_id, user_id=options.user_id, hard_delete=hard))
    if options.as_json:
        _render.print_json({"deleted": context_id, "hard": hard})
    else:
        _render.console.print(f"deleted {context_id}{' for good' if hard else ''}")


@cli.command()
@common_options
@click.argument("context_id")
def restore(options: Options, context_id: str) -> None:
    """Bring back a soft-deleted context."""
    context = options.run(lambda cm: cm.restore_context(context_id, user_id=options.user_id))
    options.show(context, _render.show_context)


@cli.command()
@common_options
@click.argument("context_id")
@click.option("--since", "since_revision", default=0, help="only events after this revision")
@click.option("--limit", type=int, default=None)
@click.option("--branch", default=None, help="only changes made on this branch (default: all)")
def events(
    options: Options, context_id: str, since_revision: int, limit: int | None, branch: str | None
) -> None:
    """The audit log of a context: one event per committed change."""
    found = options.run(
        lambda cm: cm.get_events(
            context_id,
            user_id=options.user_id,
            since_revision=since_revision,
            limit=limit,
            branch=branch,
        )
    )
    options.show(found, _render.show_events)


def _progress(options: Options) -> Progress:
    return _full.progress_bar(options)


async def _all_contexts(
    cm: ContextManager, user_id: str | None, include_deleted: bool
) -> AsyncIterator[Context]:
    states = [None, ContextState.DELETED] if include_deleted else [None]
    for state in states:
        cursor: str | None = None
        while True:
            query = ContextQuery(
                state=state, order_by="created_at", descending=False, limit=200, cursor=cursor
            )
            page = await cm.query_contexts(query, user_id=user_id)
            for summary in page:
                yield summary
            if page.next_cursor is None:
                break
            cursor = page.next_cursor


@cli.command()
@common_options
@click.argument("context_ids", nargs=-1)
@click.option(
    "--output",
    "-o",
    type=click.Path(path_type=Path, dir_okay=False, allow_dash=True),
    default="-",
    help="file (default stdout); written whole or not at all",
)
@click.option("--include-deleted", is_flag=True)
@click.option("--branch", default="main", show_default=True, help="each context on this branch")
@click.option(
    "--full",
    is_flag=True,
    help="everything, to move a whole database: every context as stored, with every "
    "branch, version and event (JSON Lines; no --user)",
)
def export(
    options: Options,
    context_ids: tuple[str, ...],
    output: Path,
    include_deleted: bool,
    branch: str,
    full: bool,
) -> None:
    """Export contexts with their messages as one JSON document (all if no ids given), or
    with --full the whole database with its history."""
    if full:
        if context_ids or include_deleted or branch != "main":
            raise click.ClickException(
                "--full exports the whole database: give no ids, --include-deleted or --branch"
            )
        _full.export_full(options, output)
        return

    async def work(cm: ContextManager, output: BinaryIO) -> int:
        ids = list(context_ids)
        if not ids:
            ids = [c.context_id async for c in _all_contexts(cm, options.user_id, include_deleted)]
        header = {
            "format": EXPORT_FORMAT,
            "version": EXPORT_VERSION,
            "exported_at": datetime.now(UTC).isoformat(),
        }
        output.write(orjson.dumps(header)[:-1] + b', "contexts": [\n')
        with _progress(options) as progress:
            task = progress.add_task("exporting", total=len(ids))
            for index, context_id in enumerate(ids):
                context = await cm.get_context(
                    context_id, user_id=options.user_id, include_deleted=True, branch=branch
                )
                separator = b",\n" if index else b""
                output.write(separator + context.model_dump_json().encode())
                progress.advance(task)
        output.write(b"\n]}\n")
        return len(ids)

    with output_file(output) as stream:
        count = options.run(functools.partial(work, output=stream))
    _render.error_console.print(f"exported {_render.plural(count, 'context')}")


def _exported_contexts(document: Any) -> list[dict[str, Any]]:
    if isinstance(document, dict) and document.get("format") == EXPORT_FORMAT:
        if document.get("version") != EXPORT_VERSION:
            raise UnsupportedFormat(f"export version {document.get('version')!r} is not supported")
        contexts = document.get("contexts")
    elif isinstance(document, list):
        contexts = document
    else:
        raise UnsupportedFormat("not a loremaster export (nor a JSON list of contexts)")
    if not isinstance(contexts, list) or not all(isinstance(c, dict) for c in contexts):
        raise UnsupportedFormat("the export's contexts must be a list of JSON objects")
    return contexts


@cli.command(name="import")
@common_options
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False, allow_dash=True))
@click.option("--skip-existing", is_flag=True, help="skip contexts whose id is already stored")
def import_(options: Options, file: Path, skip_existing: bool) -> None:
    """Import contexts from a file written by `loremaster export`, or everything from a
    full dump (`export --full`); - reads standard input."""
    with _full.open_input(file) as source:
        first = source.readline()
        if is_dump(first):
            size = None if file == STDOUT else file.stat().st_size
            _full.import_full(options, itertools.chain([first], source), size, skip_existing)
            return
        document = _json_of(first + source.read(), file)

    async def work(cm: ContextManager) -> tuple[int, int]:
        # Sessions point at conversations: store those they may reference first.
        contexts = sorted(
            _exported_contexts(document), key=lambda c: c.get("context_type") == "session"
        )
        skipped = 0
        with _progress(options) as progress:
            task = progress.add_task("importing", total=len(contexts))
            for fields in contexts:
                try:
                    await cm.create_context(fields, user_id=options.user_id)
                    imported[0] += 1
                except ValidationFailed as exc:
                    if not (skip_existing and "exists" in exc.message):
                        raise
                    skipped += 1
                progress.advance(task)
        return imported[0], skipped

    imported = [0]
    try:
        created, skipped = options.run(work)
    except KeyboardInterrupt:
        raise interrupted_import(imported[0]) from None
    if options.as_json:
        _render.print_json({"imported": created, "skipped": skipped})
    else:
        _render.console.print(f"imported {_render.plural(created, 'context')}, skipped {skipped}")


@cli.command()
@common_options
def stats(options: Options) -> None:
    """Storage figures and this process's operation latencies."""

    async def work(cm: ContextManager) -> dict[str, Any]:
        # Counted now: a statistics view refreshed minutes ago is not what was asked.
        return {"health": await cm.health_check(), **await cm.get_performance_stats(max_age=0)}

    figures = options.run(work)
    if options.as_json:
        _render.print_json(figures)
    else:
        _render.show_mapping("loremaster stats", figures)


@cli.command()
@common_options
def health(options: Options) -> None:
    """Check that storage answers; exit 1 if it does not."""
    report = options.run(lambda cm: cm.health_check())
    if options.as_json:
        _render.print_json(report)
    else:
        _render.show_mapping("loremaster health", report)
        if report.get("storage", {}).get("read_only"):
            _render.console.print("read-only: reads work, writes are refused")
    if report["status"] != "ok":
        raise click.exceptions.Exit(1)


@cli.command()
@common_options
def demo(options: Options) -> None:
    """Create a small D&D campaign (a conversation, a session, a room) and show it."""
    options.run(lambda cm: run_demo(cm, as_json=options.as_json))


@cli.group()
def db() -> None:
    """Database schema: migrate, status."""


def _show_migrations(options: Options, status: MigrationStatus) -> None:
    if options.as_json:
        _render.print_json(
            {
                "version": status.version,
                "applied": [{"version": v, "name": n} for v, n, _ in status.applied],
                "pending": [{"version": v, "name": n} for v, n in status.pending],
            }
        )
    else:
        _render.show_migrations(status)


@db.command()
@common_options
def migrate(options: Options) -> None:
    """Apply pending schema migrations (initialize() does this too)."""
    _show_migrations(options, options.run(lambda cm: cm.migration_status()))


@db.command()
@common_options
def status(options: Options) -> None:
    """Show the applied and pending schema migrations; changes nothing."""
    _show_migrations(options, options.run(lambda cm: cm.migration_status(), migrate=False))


@cli.command()
@common_options
@click.option("--dry-run", is_flag=True, help="show what would go; change nothing")
def cleanup(options: Options, dry_run: bool) -> None:
    """Run retention now: archive idle contexts, purge old deleted ones, trim old events."""
    report = options.run(lambda cm: cm.run_cleanup(dry_run=dry_run))
    options.show(report, _render.show_cleanup)


@cli.group()
def codec() -> None:
    """Stored blobs: inspect a header, train a compression dictionary."""


@codec.command()
@click.argument("blob_file", type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="print JSON instead of a table")
def inspect(blob_file: Path, as_json: bool) -> None:
    """Show the envelope header of a blob file (format, compression, sizes, checksum)."""
    try:
        blob = blob_file.read_bytes()
    except OSError as exc:
        raise click.ClickException(f"cannot read {blob_file}: {exc.strerror}") from exc
    try:
        header = inspect_blob(blob).describe()
    except LoremasterError as exc:
        raise click.ClickException(exc.message) from exc
    if as_json:
        _render.print_json(header)
    else:
        _render.show_mapping(f"blob {blob_file.name}", header)


@codec.command(name="train-dictionary")
@common_options
@click.option("--type", "context_type", default="conversation", show_default=True)
@click.option("--samples", default=2000, show_default=True, help="stored messages to learn from")
@click.option("--size", default=16 * 1024, show_default=True, help="dictionary size in bytes")
def train_dictionary_command(options: Options, context_type: str, samples: int, size: int) -> None:
    """Train a zstd dictionary on stored message bodies and use it from now on."""
    dictionary_id = options.run(lambda cm: cm.train_dictionary(context_type, samples, size))
    if options.as_json:
        _render.print_json({"dictionary_id": dictionary_id})
    else:
        _render.console.print(f"dictionary {dictionary_id} trained and stored")


@cli.command()
@click.argument("file", type=click.Path(path_type=Path))
@click.option("--type", "context_type", type=click.Choice([t.value for t in ContextType]))
@click.option("--provider", type=click.Choice([p.value for p in ProviderType]))
@click.option(
    "--fix",
    "fixed_output",
    type=click.Path(path_type=Path),
    help="write the corrected context here",
)
@click.option("--json", "as_json", is_flag=True, help="print JSON instead of a table")
def validate(
    file: Path,
    context_type: str | None,
    provider: str | None,
    fixed_output: Path | None,
    as_json: bool,
) -> None:
    """Check a context file: schema, consistency, custom rules. Exit 1 on errors."""
    context = _read_json(file)

    async def check() -> ValidationResult:
        validator = ContextValidator(enable_auto_correction=fixed_output is not None)
        return await validator.validate_context(
            context, context_type=context_type, provider=provider
        )

    result = asyncio.run(check())
    if as_json:
        _render.print_json(result.model_dump(mode="json"))
    else:
        _render.show_issues(result)
    if fixed_output is not None:
        _write_fixed(fixed_output, file, result)
    if not result.is_valid:
        raise click.exceptions.Exit(1)


def _write_fixed(path: Path, source: Path, result: ValidationResult) -> None:
    """The corrected context to `path`; a valid one with nothing to correct as it was
    read (its bytes); an invalid one the corrections cannot make valid not at all, saying
    so."""
    if result.corrected_data is not None:
        note = f"wrote the corrected context to {path}"
        try:
            fixed = orjson.dumps(result.corrected_data, option=orjson.OPT_INDENT_2)
        except TypeError as exc:  # an integer beyond 64 bits, say
            raise click.ClickException(f"cannot write {path}: {exc}") from exc
    elif result.is_valid:
        note = f"nothing to correct: copied {source} to {path}"
        try:
            fixed = source.read_bytes()
        except OSError as exc:
            raise click.ClickException(f"cannot read {source}: {exc.strerror}") from exc
    else:
        _render.error_console.print(
            f"{path} not written: no automatic correction makes this context valid",
            markup=False,
            highlight=False,
            soft_wrap=True,
        )
        return
    try:
        write_file(path, fixed)
    except OSError as exc:
        raise click.ClickException(f"cannot write {path}: {exc.strerror}") from exc
    _render.error_console.print(note, markup=False, highlight=False, soft_wrap=True)


@cli.group()
def schema() -> None:
    """The JSON Schemas of the context types."""


@schema.command(name="export")
@click.option("--type", "context_type", type=click.Choice([t.value for t in ContextType]))
@click.option(
    "--output",
    "-o",
    type=click.Path(path_type=Path),
    help="a folder: one <type>.json per type (default: print JSON)",
)
def export_schema(context_type: str | None, output: Path | None) -> None:
    """Print (or write) the JSON Schema of each context type (or of one)."""
    schemas = export_schemas()
    if context_type is not None:
        schemas = {context_type: schemas[context_type]}
    if output is None:
        _render.print_json(schemas if context_type is None else schemas[context_type])
        return
    try:
        output.mkdir(parents=True, exist_ok=True)
        for name, document in schemas.items():
            write_file(output / f"{name}.json", orjson.dumps(document, option=orjson.OPT_INDENT_2))
    except OSError as exc:
        raise click.ClickException(f"cannot write to {output}: {exc.strerror}") from exc
    _render.error_console.print(f"wrote {_render.plural(len(schemas), 'schema')} to {output}")
