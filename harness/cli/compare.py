"""`owb compare` (runs side by side, with the published claims) and `owb check` (a paired regression test)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from harness.cli.app import console
from harness.cli.options import RunDirs
from harness.core.errors import ConfigError
from harness.report.check import check
from harness.report.export import to_csv, to_html, to_markdown
from harness.report.rows import load_row
from harness.report.tables import compare_table

WRITERS = {"md": to_markdown, "csv": to_csv, "html": to_html}


def compare(
    runs: RunDirs,
    format: Annotated[Optional[str], typer.Option("--format", help="md | csv | html")] = None,
    out: Annotated[Optional[Path], typer.Option(help="write to this file instead of stdout")] = None,
) -> None:
    """Compare runs side by side: metrics with CIs, published claims, speed."""
    rows = [load_row(path) for path in runs]
    if format is None and out is None:
        console.print(compare_table(rows))
        return
    fmt = format or {".md": "md", ".csv": "csv", ".html": "html"}.get(out.suffix if out else "", "md")
    if fmt not in WRITERS:
        raise ConfigError(f"--format must be md, csv or html, not '{fmt}'")
    text = WRITERS[fmt](rows)
    if out is None:
        sys.stdout.write(text)
    else:
        out.write_text(text)
        console.print(f"wrote {out}")


def check_cmd(
    baseline: Annotated[Path, typer.Option(help="the reference run directory")],
    candidate: Annotated[Path, typer.Option(help="the run directory to check")],
    max_drop: Annotated[float, typer.Option(help="points a metric may drop before it can fail")] = 2.0,
    alpha: Annotated[float, typer.Option(help="significance level of the paired test")] = 0.05,
    max_slowdown: Annotated[Optional[float], typer.Option(help="percent output tok/s may drop")] = None,
    allow_config_change: Annotated[bool, typer.Option(help="compare runs whose generation settings differ")] = False,
    summary: Annotated[Optional[Path], typer.Option(help="also append the markdown here (CI job summary)")] = None,
) -> None:
    """Paired per-document comparison of two runs; exit 1 on a significant regression."""
    failed, markdown = check(baseline, candidate, max_drop, alpha, max_slowdown, allow_config_change)
    sys.stdout.write(markdown + "\n")
    if summary is not None:
        with summary.open("a") as handle:
            handle.write(markdown + "\n")
    if failed:
        raise typer.Exit(1)
