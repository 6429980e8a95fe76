"""The typer application every command registers on, and the consoles they print to (results on stdout, progress,
warnings and errors on stderr)."""

from __future__ import annotations

import sys

import typer
from rich.console import Console

app = typer.Typer(add_completion=False, no_args_is_help=False, pretty_exceptions_enable=False,
                  help="Open-Weight Bench: quality and speed of open-weight LLMs in one results file.")
console = Console(width=None if sys.stdout.isatty() else 120)
err = Console(stderr=True)
