"""``loremaster export --full`` and ``loremaster import`` of a full dump: moving a whole
database, everything it stores, to another (SQLite to PostgreSQL, say)."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

import click
from rich.progress import (
    BarColumn,
    DownloadColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    TextColumn,
    TimeRemainingColumn,
)

from ..errors import LoremasterError
from ..manager import ContextManager
from ..manager._transfer import ImportReport
from . import _render
from ._files import STDOUT, output_file
from ._session import interrupted_import

if TYPE_CHECKING:
    from ._app import Options

__all__ = ["export_full", "import_full", "open_input", "progress_bar"]


def progress_bar(options: Options, *, in_bytes: bool = False) -> Progress:
    """A progress bar on stderr, counting items (or bytes); off with --json and when
    stderr is not a terminal."""
    count: ProgressColumn = DownloadColumn() if in_bytes else MofNCompleteColumn()
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        count,
        TimeRemainingColumn(),
        console=_render.error_console,
        transient=True,
        disable=options.as_json or not _render.error_console.is_terminal,
    )


@contextlib.contextmanager
def open_input(path: Path) -> Iterator[BinaryIO]:
    """`path` opened for reading bytes (standard input for ``-``); a file that cannot
    be read is a one-line CLI error."""
    if path == STDOUT:
        yield sys.stdin.buffer
        return
    try:
        stream = open(path, "rb")  # noqa: SIM115  (closed below; open errors are ours)
    except OSError as exc:
        raise click.ClickException(f"cannot read {path}: {exc.strerror}") from exc
    with stream:
        yield stream


def export_full(options: Options, output: Path) -> None:
    """Write every context of the database, with everything stored of it, to `output`."""

    async def work(cm: ContextManager) -> dict[str, int]:
        written = {"contexts": 0, "lines": 0, "bytes": 0}
        with progress_bar(options) as bar:
            task = bar.add_task("exporting", total=None)

            def advance(contexts: int, _: int) -> None:
                written["contexts"] = contexts
                bar.update(task, completed=contexts)

            dump = cm.export_full(options.user_id, progress=advance)  # refuses a --user
            if not bar.disable:
                bar.update(task, total=await _context_count(cm))
            with output_file(output) as stream:
                async for line in dump:
                    stream.write(line)
                    written["lines"] += 1
                    written["bytes"] += len(line)
        return written

    written = options.run(work)
    if options.as_json and output != STDOUT:
        _render.print_json(written)
    else:
        _render.error_console.print(
            f"exported {_render.plural(written['contexts'], 'context')} "
            f"({written['lines']:,} lines, {written['bytes']:,} bytes)",
            markup=False,
            highlight=False,
        )


async def _context_count(cm: ContextManager) -> int | None:
    """How many contexts there are, for the progress bar; None where the figures cannot be
    refreshed (a read-only standby): the export goes on without a total."""
    try:
        count = (await cm.get_performance_stats(max_age=0))["storage"]["contexts"]
    except LoremasterError:
        return None
    return int(count)


def import_full(
    options: Options, lines: Iterable[bytes], size: int | None, skip_existing: bool
) -> None:
    """Store every context of a full dump read from `lines` (`size` bytes, if known)."""

    async def work(cm: ContextManager) -> ImportReport:
        with progress_bar(options, in_bytes=True) as bar:
            task = bar.add_task("importing", total=size)

            def advance(contexts: int, read: int) -> None:
                imported[0] = contexts
                bar.update(task, completed=read, description=f"importing ({contexts:,})")

            return await cm.import_full(
                lines, options.user_id, skip_existing=skip_existing, progress=advance
            )

    imported = [0]
    try:
        report = options.run(work)
    except KeyboardInterrupt:
        raise interrupted_import(imported[0]) from None
    if options.as_json:
        _render.print_json(
            {"imported": report.imported, "skipped": report.skipped, "lines": report.lines}
        )
    else:
        _render.console.print(
            f"imported {_render.plural(report.imported, 'context')}, skipped {report.skipped}",
            markup=False,
        )
