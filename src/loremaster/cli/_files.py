"""Files the CLI writes: whole or not at all.

Every file a command writes goes to a temporary file beside it, renamed over the target
only once everything is written and flushed to disk. A command that fails midway (a
missing context, a full disk, Ctrl-C) leaves the old file as it was and no temporary file
behind.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

import click

__all__ = ["STDOUT", "output_file", "payload_output_option", "write_file"]

STDOUT = Path("-")
"""The path that means standard output (written as it comes: there is no old file)."""

payload_output_option = click.option(
    "--output",
    "-o",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="write the payload here (whole or not at all)",
)
"""``--output FILE`` of the commands that print a provider payload."""


@contextlib.contextmanager
def output_file(path: Path) -> Iterator[BinaryIO]:
    """A binary file that becomes `path` when the block ends normally (or standard output
    for ``-``). On any error the temporary file is removed, `path` is untouched, and an
    `OSError` becomes a one-line CLI error."""
    if path == STDOUT:
        stream = sys.stdout.buffer
        yield stream
        stream.flush()
        return
    temporary = _create_beside(path)
    try:
        with open(temporary, "wb") as stream:
            yield stream
            stream.flush()
            os.fsync(stream.fileno())
        _keep_mode(path, temporary)
        os.replace(temporary, path)
    except BaseException as exc:
        with contextlib.suppress(FileNotFoundError):
            temporary.unlink()
        if isinstance(exc, OSError):
            raise click.ClickException(f"cannot write {path}: {exc.strerror or exc}") from exc
        raise
    _sync_folder(path.parent)


def write_file(path: Path, data: bytes) -> None:
    """Write `data` to `path` whole, through `output_file`."""
    with output_file(path) as stream:
        stream.write(data)


def _create_beside(path: Path) -> Path:
    """A new, empty file in `path`'s folder (created with the usual permissions: the
    umask applies), hidden and named after it."""
    for _ in range(100):
        temporary = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
        try:
            os.close(os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
        except FileExistsError:
            continue
        except OSError as exc:
            raise click.ClickException(f"cannot write {path}: {exc.strerror or exc}") from exc
        return temporary
    raise click.ClickException(f"cannot write {path}: no free temporary name beside it")


def _keep_mode(path: Path, temporary: Path) -> None:
    """A file written again keeps the permissions it had."""
    with contextlib.suppress(FileNotFoundError):
        os.chmod(temporary, path.stat().st_mode & 0o7777)


def _sync_folder(folder: Path) -> None:
    """Make the rename itself durable (best effort: not every system can)."""
    with contextlib.suppress(OSError):
        descriptor = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)
