"""``loremaster calls``: the calls to AI providers recorded in a context."""

from __future__ import annotations

from collections.abc import Sequence

import click
from rich import box
from rich.table import Table
from rich.text import Text

from ..models import ProviderCall
from . import _render
from ._app import Options, cli, common_options

__all__ = ["calls", "show_calls"]


@cli.command()
@common_options
@click.argument("context_id")
@click.option("--limit", default=50, show_default=True, help="the newest this many")
@click.option("--branch", default=None, help="only the calls recorded on this branch")
def calls(options: Options, context_id: str, limit: int, branch: str | None) -> None:
    """The calls to AI providers recorded in a context, newest first: time, provider,
    model, tokens, latency and cost (record them with ContextManager.record_calls or
    complete)."""
    found = options.run(lambda cm: cm.get_calls(context_id, options.user_id, limit, branch=branch))
    options.show(found, show_calls)


def show_calls(found: Sequence[ProviderCall]) -> None:
    branches = any(call.branch != "main" for call in found)
    table = Table(title="Calls", box=box.SIMPLE_HEAD)
    table.add_column("time (UTC)", no_wrap=True)
    if branches:
        table.add_column("branch", overflow="fold")
    table.add_column("provider")
    table.add_column("model", no_wrap=True)
    table.add_column("tokens in/out", overflow="fold")
    table.add_column("ms", justify="right")
    table.add_column("cost $", justify="right")
    for call in found:
        error = call.call.get("error", {})
        outcome = f"failed {error.get('status') or error.get('type', '')}".strip()
        cells = [
            call.created_at.strftime("%m-%d %H:%M"),
            *([call.branch] if branches else []),
            call.provider.value,
            call.model,
            outcome if call.failed else f"{call.input_tokens}/{call.output_tokens}",
            f"{call.latency_ms:.0f}",
            "" if call.cost_usd is None else f"{call.cost_usd:.6f}",
        ]
        table.add_row(*(Text(cell) for cell in cells))
    _render.console.print(table)
    if not found:
        _render.console.print("no calls recorded")
