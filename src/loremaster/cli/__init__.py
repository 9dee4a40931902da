"""The ``loremaster`` command line."""

from __future__ import annotations

import sys

import click

from . import _translate, _versions  # noqa: F401  (they register their commands on `cli`)
from ._app import cli
from ._render import error_console

__all__ = ["cli", "main", "run"]


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; every error is one line on stderr and exit code 1."""
    try:
        result = cli.main(args=argv, prog_name="loremaster", standalone_mode=False)
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except click.ClickException as exc:
        error_console.print(
            f"Error: {exc.format_message()}", markup=False, highlight=False, soft_wrap=True
        )
        return 1
    except click.exceptions.Abort:
        error_console.print("Aborted.", markup=False)
        return 1
    return result if isinstance(result, int) else 0


def run() -> None:
    """The console script's entry point."""
    sys.exit(main())
