"""`owb view`: a read-only local web viewer over run directories (or, with --export, a static copy of it)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from harness.cli.app import console
from harness.view.serve import serve, write_export

RunsDirs = Annotated[Optional[list[Path]], typer.Argument(help="folders searched for run directories (default: runs)",
                                                          metavar="RUNS_DIR")]


def view(
    runs: RunsDirs = None,
    host: Annotated[str, typer.Option(help="address to listen on; the default is this machine only",
                                      metavar="ADDRESS")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="port to listen on (0: any free port)", min=0, max=65535,
                                      metavar="N")] = 8765,
    export: Annotated[Optional[Path], typer.Option(help="write a static copy (leaderboard, run pages, failed and "
                                                      "disagreeing samples; capped at 20 MB) here, no server",
                                                   metavar="DIR")] = None,
) -> None:
    """Browse runs in a web browser: leaderboard, run pages, every sample, paired diffs and plots. Read-only."""
    roots = runs or [Path("runs")]
    if export is not None:
        files, size, omitted = write_export(roots, export)
        console.print(f"wrote {files} files ({size / 2**20:.1f} MB) to {export}/index.html"
                      + (f"; {omitted} samples left out for the size cap" if omitted else ""),
                      markup=False, highlight=False)
        return

    def announce(line: str) -> None:
        console.print(line, markup=False, highlight=False, soft_wrap=True)
        sys.stdout.flush()

    serve(roots, host, port, announce)
