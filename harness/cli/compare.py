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
from harness.report.compare_json import to_json
from harness.report.diagnose import diagnose_run
from harness.report.export import to_csv, to_html, to_markdown
from harness.report.rows import RunRow, load_row
from harness.report.tables import compare_table
from harness.report.verdict import DEFAULT_TOLERANCE

FORMATS = {".md": "md", ".csv": "csv", ".html": "html", ".json": "json"}
Tolerance = Annotated[float, typer.Option(min=0, help="points within which a run is consistent with a claim")]


def _written(fmt: str, runs: list[Path], rows: list[RunRow], tolerance: float) -> str:
    """The comparison in a file format; json and html carry each run's diagnosis too."""
    if fmt == "md":
        return to_markdown(rows)
    if fmt == "csv":
        return to_csv(rows)
    diagnoses = [diagnose_run(path, tolerance) for path in runs]
    return to_html(rows, diagnoses) if fmt == "html" else to_json(rows, diagnoses, tolerance)


def compare(
    runs: RunDirs,
    format: Annotated[Optional[str], typer.Option("--format", help="md | csv | html | json")] = None,
    out: Annotated[Optional[Path], typer.Option(help="write to this file instead of stdout")] = None,
    tolerance: Tolerance = DEFAULT_TOLERANCE,
) -> None:
    """Compare runs side by side: metrics with CIs, published claims with verdicts, speed."""
    rows = [load_row(path, tolerance) for path in runs]
    if format is None and out is None:
        console.print(compare_table(rows))
        return
    fmt = format or FORMATS.get(out.suffix if out else "", "md")
    if fmt not in FORMATS.values():
        raise ConfigError(f"--format must be md, csv, html or json, not '{fmt}'")
    text = _written(fmt, runs, rows, tolerance)
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
