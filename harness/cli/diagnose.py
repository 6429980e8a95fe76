"""`owb diagnose` (why a run scores what it scores: truncation, missing answers, thinking blocks, loops, settings,
sample size) and `owb diff` (the engine-drift audit of two runs)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Literal, Optional

import typer

from harness.cli.app import console
from harness.report.diagnose import diagnose_run
from harness.report.diagnosis_text import diagnosis_markdown, diagnosis_table
from harness.report.drift import diff_runs
from harness.report.drift_text import drift_markdown
from harness.report.verdict import DEFAULT_TOLERANCE

Format = Annotated[Optional[Literal["md", "json"]], typer.Option("--format", help="md | json (default: a table)",
                                                                      metavar="md|json")]


def diagnose(
    run: Annotated[Path, typer.Argument(help="the run directory")],
    format: Format = None,
    tolerance: Annotated[float, typer.Option(min=0, help="points a 95% CI may span either side (too_few_samples)",
                                          metavar="POINTS")]
    = DEFAULT_TOLERANCE,
) -> None:
    """Per task: truncation, missing answers, thinking blocks, loops, empty outputs, settings and sample size."""
    found = diagnose_run(run, tolerance)
    if format == "json":
        sys.stdout.write(found.model_dump_json(indent=2) + "\n")
    elif format == "md":
        sys.stdout.write(diagnosis_markdown(found))
    else:
        console.print(diagnosis_table(found))


def diff(
    run_a: Annotated[Path, typer.Argument(help="the reference run directory")],
    run_b: Annotated[Path, typer.Argument(help="the run directory audited against it")],
    alpha: Annotated[float, typer.Option(help="significance level of the paired tests", metavar="ALPHA")] = 0.05,
    format: Annotated[Optional[Literal["md", "json"]], typer.Option("--format", help="md | json",
                                                                    metavar="md|json")] = None,
) -> None:
    """Engine drift between two runs of one model on the same documents: settings, flipped documents, paired tests,
    greedy output identity and first divergence, and whether the change is within noise."""
    report = diff_runs(run_a, run_b, alpha)
    sys.stdout.write(report.model_dump_json(indent=2) + "\n" if format == "json" else drift_markdown(report))
