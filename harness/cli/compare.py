"""`owb compare` (runs side by side, with the published claims) and `owb check` (a paired regression test)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Literal, Optional

import typer

from harness.cli.app import console
from harness.cli.options import RunDirs
from harness.core.errors import ConfigError
from harness.core.log import warn
from harness.records.store import RunDir
from harness.report.check import check
from harness.report.compare_json import to_json
from harness.report.diagnose import diagnose_run
from harness.report.export import to_csv, to_html, to_markdown
from harness.report.rows import RunRow, load_row
from harness.report.tables import compare_table
from harness.report.verdict import DEFAULT_TOLERANCE

FORMATS = {".md": "md", ".csv": "csv", ".html": "html", ".json": "json"}
Tolerance = Annotated[float, typer.Option(min=0, help="points within which a run is consistent with a claim",
                                         metavar="POINTS")]


def _written(fmt: str, runs: list[Path], rows: list[RunRow], tolerance: float) -> str:
    """The comparison in a file format; json and html carry each run's diagnosis too."""
    if fmt == "md":
        return to_markdown(rows)
    if fmt == "csv":
        return to_csv(rows)
    diagnoses = [diagnose_run(path, tolerance) for path in runs]
    return to_html(rows, diagnoses) if fmt == "html" else to_json(rows, diagnoses, tolerance)


def run_dirs(paths: list[Path]) -> list[Path]:
    """The run directories named, a directory of runs standing for the runs in it; incomplete runs are named."""
    found: list[Path] = []
    for path in paths:
        inside = sorted(p for p in path.iterdir() if (p / "run.json").is_file()) if path.is_dir() else []
        found += inside if not (path / "run.json").is_file() and inside else [path]
    for path in found:
        if (path / "run.json").is_file():
            record = RunDir(path).read_run()
            if record.status != "complete":
                warn(f"run {path} is not complete (status {record.status}): its figures cover the samples written "
                     "so far")
            if not any(RunDir(path).samples(task).exists() for task in record.tasks):
                warn(f"run {path} has no samples yet")
    return found


def compare(
    runs: RunDirs,
    format: Annotated[Optional[Literal["md", "csv", "html", "json"]], typer.Option(
        "--format", help="write a file format instead of the terminal table", metavar="md|csv|html|json")] = None,
    out: Annotated[Optional[Path], typer.Option(help="write to this file instead of stdout", metavar="FILE")] = None,
    tolerance: Tolerance = DEFAULT_TOLERANCE,
) -> None:
    """Compare runs side by side: metrics with CIs, published claims with verdicts, speed."""
    paths = run_dirs(runs)
    rows = [load_row(path, tolerance) for path in paths]
    if format is None and out is None:
        console.print(compare_table(rows))
        return
    fmt = format or FORMATS.get(out.suffix if out else "", "md")
    if out is not None and not out.parent.is_dir():
        raise ConfigError(f"cannot write {out}: the directory {out.parent} does not exist")
    text = _written(fmt, paths, rows, tolerance)
    if out is None:
        sys.stdout.write(text)
    else:
        out.write_text(text)
        console.print(f"wrote {out}")


def check_cmd(
    baseline: Annotated[Path, typer.Option(help="the reference run directory", metavar="RUN_DIR")],
    candidate: Annotated[Path, typer.Option(help="the run directory to check", metavar="RUN_DIR")],
    max_drop: Annotated[float, typer.Option(min=0, help="points a metric may drop before it can fail",
                                                  metavar="POINTS")] = 2.0,
    alpha: Annotated[float, typer.Option(help="significance level of the paired test, between 0 and 1",
                                               metavar="ALPHA")] = 0.05,
    max_slowdown: Annotated[Optional[float], typer.Option(help="percent output tok/s may drop", metavar="PCT")] = None,
    allow_config_change: Annotated[bool, typer.Option(help="compare runs whose generation settings differ",
                                                                metavar="")] = False,
    summary: Annotated[Optional[Path], typer.Option(help="also append the markdown here (CI job summary)",
                                                                 metavar="FILE")] = None,
) -> None:
    """Paired per-document comparison of two runs; exit 1 on a significant regression."""
    if not 0 < alpha < 1:
        raise ConfigError(f"--alpha is a significance level between 0 and 1 (e.g. 0.05), not {alpha:g}")
    failed, markdown = check(baseline, candidate, max_drop, alpha, max_slowdown, allow_config_change)
    sys.stdout.write(markdown + "\n")
    if summary is not None:
        with summary.open("a") as handle:
            handle.write(markdown + "\n")
    if failed:
        raise typer.Exit(1)
