"""``loremaster watch``, ``lock``, ``unlock``, ``conflicts`` and ``resolve``: playing at a
shared table."""

from __future__ import annotations

import contextlib

import click
import orjson

from ..manager import ContextManager
from ..models import ContextEvent, ContextLock
from . import _render
from ._app import Options, cli, common_options

__all__ = ["conflicts", "lock", "resolve", "unlock", "watch"]

POLL_SECONDS = 1.0
"""On PostgreSQL without Redis, how often `watch` reads the event log for other processes'
changes (with Redis, or on SQLite through its commit feed, they are heard as they land)."""


def _say(text: str) -> None:
    _render.console.print(text, markup=False, highlight=False, soft_wrap=True)


@cli.command()
@common_options
@click.argument("context_id")
@click.option(
    "--since-revision",
    type=click.IntRange(min=0),
    default=None,
    help="replay the changes after this revision first (default: only new ones)",
)
@click.option("--count", type=click.IntRange(min=1), default=None, help="stop after N events")
def watch(options: Options, context_id: str, since_revision: int | None, count: int | None) -> None:
    """Follow a context live: print each change as it is committed, until Ctrl-C
    (or --count events). --json prints one JSON object per line."""

    async def work(cm: ContextManager) -> None:
        heard = cm.settings.redis_url is not None or cm.storage.backend == "sqlite"
        poll = 30.0 if heard else POLL_SECONDS
        stream = await cm.subscribe(context_id, options.user_id, since_revision, poll_interval=poll)
        async with stream:
            _render.error_console.print(
                f"watching {context_id} after revision {stream.revision} (Ctrl-C stops)",
                markup=False,
                highlight=False,
                soft_wrap=True,
            )
            seen = 0
            async for event in stream:
                _print_event(options, event)
                seen += 1
                if count is not None and seen >= count:
                    break

    with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C is how a watch ends
        options.run(work)


def _print_event(options: Options, event: ContextEvent) -> None:
    if options.as_json:
        _render.console.file.write(orjson.dumps(event.model_dump(mode="json")).decode() + "\n")
        _render.console.file.flush()
    else:
        _render.show_event(event)


def _holder(options: Options, action: str) -> str:
    if options.user_id is None:
        raise click.ClickException(f"give --user: the user who will {action} the lock")
    return options.user_id


@cli.command()
@common_options
@click.argument("context_id")
@click.option(
    "--timeout",
    type=float,
    default=None,
    help="seconds it lasts (default: CONTEXT_LOCK_TIMEOUT); taking it again extends it",
)
def lock(options: Options, context_id: str, timeout: float | None) -> None:
    """Take the edit lock as --user: others' writes are refused until it expires or
    `loremaster unlock`."""
    holder = _holder(options, "hold")
    held = options.run(lambda cm: cm.acquire_context_lock(context_id, holder, timeout))
    options.show(held, _show_lock)


def _show_lock(held: ContextLock) -> None:
    until = held.expires_at.strftime("%Y-%m-%d %H:%M:%S UTC")
    _say(f"{held.context_id} locked by {held.holder} until {until} (token {held.token})")


@cli.command()
@common_options
@click.argument("context_id")
def unlock(options: Options, context_id: str) -> None:
    """Give up --user's edit lock (nothing happens if they do not hold it)."""
    holder = _holder(options, "give up")
    options.run(lambda cm: cm.release_context_lock(context_id, holder))
    if options.as_json:
        _render.print_json({"context_id": context_id, "user_id": holder, "locked": False})
    else:
        _say(f"{holder} holds no lock on {context_id}")


@cli.command()
@common_options
@click.argument("context_id")
def conflicts(options: Options, context_id: str) -> None:
    """The conflicts of a context waiting for a person (manual_merge, user_choice)."""
    found = options.run(lambda cm: cm.list_conflicts(context_id, options.user_id))
    options.show(found, _render.show_conflicts)


def _choices(ctx: click.Context, param: click.Parameter, value: tuple[str, ...]) -> dict[str, str]:
    chosen: dict[str, str] = {}
    for item in value:
        path, equals, side = item.rpartition("=")
        if not equals or side not in ("current", "incoming", "base"):
            raise click.BadParameter(f"{item!r} is not PATH=current|incoming|base")
        chosen[path] = side
    return chosen


@cli.command()
@common_options
@click.argument("conflict_id")
@click.argument("choices", nargs=-1, required=True, callback=_choices)
def resolve(options: Options, conflict_id: str, choices: dict[str, str]) -> None:
    """Settle a conflict: each of its paths takes a side, PATH=current (what was
    committed), PATH=incoming (the conflicting update) or PATH=base."""
    context = options.run(lambda cm: cm.resolve_conflict(conflict_id, choices, options.user_id))
    options.show(context, _render.show_context)
