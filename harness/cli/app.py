"""The typer application every command registers on, and the consoles they print to (results on stdout, progress,
warnings and errors on stderr)."""

from __future__ import annotations

import sys
from typing import Annotated

import typer
from rich.console import Console

from harness import __version__

app = typer.Typer(no_args_is_help=True, pretty_exceptions_enable=False,
                  context_settings={"help_option_names": ["-h", "--help"]},
                  help="Open-Weight Bench: quality and speed of open-weight LLMs in one results file.")
console = Console(width=None if sys.stdout.isatty() else 120)
err = Console(stderr=True)


def _print_version(value: bool) -> None:
    if value:
        console.print(f"owb {__version__}")
        raise typer.Exit()


@app.callback()
def options(version: Annotated[bool, typer.Option("--version", help="print owb's version and exit", metavar="",
                                                  is_eager=True, callback=_print_version)] = False) -> None:
    """Open-Weight Bench: quality and speed of open-weight LLMs in one results file."""
