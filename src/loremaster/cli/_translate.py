"""``loremaster translate``: a provider's request body fragment in another's format."""

from __future__ import annotations

from pathlib import Path
from typing import IO

import click
import orjson

from ..errors import LoremasterError
from ..models import MigrationResult
from ..translation import ContextTranslator
from . import _render
from ._app import PROVIDER_CHOICE, Options, cli, common_options
from ._files import payload_output_option, write_file

__all__ = ["migrate", "translate_command"]

_PROVIDERS = PROVIDER_CHOICE


@cli.command("translate")
@click.argument("file", type=click.File("rb"))
@click.option("--from", "source", type=_PROVIDERS, required=True, help="the FILE's format")
@click.option("--to", "target", type=_PROVIDERS, required=True, help="the format to write")
@click.option("--model", default=None, help="the target model (limits, signatures, features)")
@payload_output_option
def translate_command(
    file: IO[bytes], source: str, target: str, model: str | None, output: Path | None
) -> None:
    """Translate FILE, a JSON request body fragment ({"system", "messages"} for anthropic,
    {"messages"} for openai, {"system_instruction", "contents"} for google; - reads
    stdin), into another provider's format.

    The payload goes to stdout (or --output), the report of what was converted, moved
    or dropped to stderr (to stdout with --output)."""
    try:
        payload = orjson.loads(file.read())
    except orjson.JSONDecodeError as exc:
        raise click.ClickException(f"{file.name} is not valid JSON: {exc}") from exc
    if not isinstance(payload, dict):
        raise click.ClickException(f"{file.name} must hold a JSON object")
    translator = ContextTranslator()
    try:
        messages = translator.from_provider(payload, source)
        result = translator.to_provider(messages, target, model)
    except LoremasterError as exc:
        raise click.ClickException(exc.message) from exc
    if output is None:
        _render.print_json(result.payload)
    else:
        write_file(output, orjson.dumps(result.payload, option=orjson.OPT_INDENT_2) + b"\n")
    report_to = _render.error_console if output is None else _render.console
    report_to.file.write(f"{result.report}\n")


@cli.command()
@common_options
@click.argument("context_id")
@click.option("--to", "target", type=_PROVIDERS, required=True, help="the provider to move to")
@click.option("--from", "source", type=_PROVIDERS, default=None, help="default: its primary")
@click.option("--model", default=None, help="the target model (window, features)")
@click.option(
    "--drop-history", is_flag=True, help="drop the oldest messages that do not fit the window"
)
@click.option(
    "--refuse-loss", is_flag=True, help="leave the context as it is if data would be lost"
)
@click.option("--branch", default="main", show_default=True, help="migrate it on this branch")
def migrate(
    options: Options,
    context_id: str,
    target: str,
    source: str | None,
    model: str | None,
    drop_history: bool,
    refuse_loss: bool,
    branch: str,
) -> None:
    """Move a conversation to another provider's format (versions before and after);
    exit code 1 if it was left untouched."""
    settings = {
        "model": model,
        "preserve_history": not drop_history,
        "on_loss": "refuse" if refuse_loss else "convert",
    }
    result = options.run(
        lambda cm: cm.migrate_context(
            context_id, source, target, settings, options.user_id, branch=branch
        )
    )
    options.show(result, _show_migration)
    if not result.migrated:
        raise click.exceptions.Exit(1)


def _show_migration(result: MigrationResult) -> None:
    if not result.migrated:
        _render.console.print(f"not migrated: {result.reason}", markup=False)
        return
    source = result.from_provider.value if result.from_provider else "?"
    _render.console.print(
        f"migrated {source} -> {result.to_provider.value}: {result.messages_before} -> "
        f"{result.messages_after} messages, {result.tokens:,} tokens of "
        f"{result.context_window:,}{'' if result.fits else ' (does not fit)'}, "
        f"{'lossless' if result.lossless else 'lossy'}; versions {result.version_before} "
        f"-> {result.version_after}",
        markup=False,
    )
    for change in result.changes:
        _render.console.print(f"  {change.code} {change.path}: {change.detail}", markup=False)
