"""``python -m loremaster``: the command line."""

from .cli import run

run()
