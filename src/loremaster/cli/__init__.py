"""The ``loremaster`` command line."""

from __future__ import annotations

import sys

import click

from . import _calls, _collab, _mcp, _providers, _serve, _translate, _versions  # noqa: F401  (they register commands)
from ._app import cli
from ._render import console, error_console
from ._session import Interrupted, install_log_handler

__all__ = ["cli", "main", "run"]


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; every error is one line on stderr and exit code 1 (Ctrl-C: 130)."""
    install_log_handler()
    try:
        result = cli.main(args=argv, prog_name="loremaster", standalone_mode=False)
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except click.exceptions.NoArgsIsHelpError as exc:  # bare `loremaster` (or a group)
        console.file.write(exc.format_message() + "\n")
        return 0
    except click.ClickException as exc:
        error_console.print(
            f"Error: {exc.format_message()}", markup=False, highlight=False, soft_wrap=True
        )
        return 1
    except Interrupted as exc:
        error_console.print(f"Interrupted. {exc.done}".strip(), markup=False, soft_wrap=True)
        return 130
    except click.exceptions.Abort as exc:
        if isinstance(exc.__cause__, KeyboardInterrupt):
            error_console.print("Interrupted.", markup=False)
            return 130
        error_console.print("Aborted.", markup=False)
        return 1
    return result if isinstance(result, int) else 0


def run() -> None:
    """The console script's entry point."""
    sys.exit(main())
