"""How a command opens the database: a command that writes creates and migrates it as
needed; one that only reads never does (a missing file, or a schema behind this
loremaster, is a one-line error saying what to run)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar
from urllib.parse import urlsplit

import click

from ..config import database_address, sqlite_file
from ..errors import DatabaseNotFound, LoremasterError
from ..manager import ContextManager
from ._render import error_console

__all__ = [
    "READ_COMMANDS",
    "Interrupted",
    "command_name",
    "install_log_handler",
    "interrupted_import",
    "run_session",
]

T = TypeVar("T")

READ_COMMANDS = frozenset(
    {
        "branch list",
        "calls",
        "conflicts",
        "db status",
        "diff",
        "events",
        "export",
        "export-for",
        "health",
        "history",
        "list",
        "search",
        "show",
        "stats",
        "tokens",
        "version show",
        "watch",
    }
)
"""Commands that only read: they open the database as it is, never creating a file nor
migrating a schema. Every other command with the common options writes."""


class Interrupted(Exception):
    """Ctrl-C ended a command: one line on stderr (with what was done, if it says) and exit
    code 130."""

    def __init__(self, done: str = "") -> None:
        super().__init__(done)
        self.done = done


def interrupted_import(imported: int) -> Interrupted:
    """Ctrl-C during an import: what landed, and how to go on."""
    return Interrupted(
        f"{imported:,} context{'' if imported == 1 else 's'} stored before it; the same "
        "command with --skip-existing goes on from there"
    )


def command_name() -> str:
    """The running command's name below ``loremaster``: ``list``, ``db status``..."""
    ctx: click.Context | None = click.get_current_context()
    names = []
    while ctx is not None and ctx.parent is not None:
        names.append(ctx.info_name or "")
        ctx = ctx.parent
    return " ".join(reversed(names))


def _creates_it(url: str) -> str:
    if urlsplit(url).scheme != "sqlite":
        return "create it (createdb), then run `loremaster db migrate`"
    target = sqlite_file(url)
    if target.read_only or target.immutable:
        return "a read-only URL never creates one"
    return "`loremaster db migrate` creates it (so does any command that writes)"


async def _require_schema(manager: ContextManager) -> None:
    status = await manager.migration_status()
    if not status.pending:
        return
    where = database_address(manager.settings.database_url)
    if not status.applied:
        found = f"{where} holds no loremaster schema"
    else:
        found = (
            f"the schema of {where} is at version {status.version}, "
            f"{len(status.pending)} migration(s) behind this loremaster"
        )
    raise click.ClickException(f"{found}: run `loremaster db migrate` first")


def run_session(
    database_url: str | None,
    work: Callable[[ContextManager], Awaitable[T]],
    *,
    reads: bool,
    migrate: bool = True,
) -> T:
    """Open a manager, run `work` with it, close it; library errors end the command.

    A write opens the database creating and migrating it (``migrate=False``: as it is);
    a read opens it as it is and needs its schema current (``migrate=False``: any).
    """

    async def session() -> T:
        manager = ContextManager(database_url=database_url, auto_cleanup=False)
        try:
            if reads:
                await manager.initialize(migrate=False, create=False)
            else:
                await manager.initialize(migrate=migrate)
        except DatabaseNotFound as exc:
            url = manager.settings.database_url
            raise click.ClickException(f"{exc.message}; {_creates_it(url)}") from exc
        try:
            if reads and migrate:
                await _require_schema(manager)
            return await work(manager)
        finally:
            await manager.close()

    try:
        return asyncio.run(session())
    except LoremasterError as exc:
        raise click.ClickException(exc.message) from exc


class _OneLine(logging.Handler):
    """The library's warnings (PostgreSQL not answering, retrying...) as one line each on
    stderr, as they happen."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = record.getMessage()
        except Exception:  # a malformed log call must not end the command
            self.handleError(record)
            return
        error_console.print(f"loremaster: {message}", markup=False, highlight=False, soft_wrap=True)


def install_log_handler() -> None:
    """Show the library's warnings on stderr (once per process)."""
    logger = logging.getLogger("loremaster")
    if not any(isinstance(handler, _OneLine) for handler in logger.handlers):
        logger.addHandler(_OneLine(logging.WARNING))
