"""`owb list` (the model cards and tasks) and `owb pin` (Hub branch names written as commits)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Literal, Optional

import typer
from rich.table import Table

from harness.cli.app import console
from harness.config.cards import all_cards
from harness.config.pins import pin_file
from harness.core.paths import CARDS_DIR, TASKS_DIR
from harness.tasks.base import all_tasks


def _models() -> list[dict[str, str]]:
    return [{"id": card.id, "family": card.family, "architecture": card.architecture,
             "source": card.hf_repo or card.local_path or card.package or f"tiny:{card.tiny}",
             "thinking": f"{card.thinking.kind} ({card.thinking.default})", "license": card.license}
            for card in all_cards()]


def _tasks() -> list[dict[str, str]]:
    return [{"task": spec.name, "scorer": spec.scorer.name, "metrics": ", ".join(m.name for m in spec.metrics),
             "description": spec.description} for spec in all_tasks()]


def list_(
    what: Annotated[Literal["models", "tasks"], typer.Argument(help="what to list", metavar="models|tasks")],
    json_out: Annotated[bool, typer.Option("--json", help="print JSON (one object per card or task)", metavar="")
                        ] = False,
) -> None:
    """List the model cards or the tasks."""
    rows = _models() if what == "models" else _tasks()
    if json_out:
        sys.stdout.write(json.dumps(rows, indent=1) + "\n")
        return
    table = Table(*rows[0])
    for column in table.columns:
        column.overflow = "fold"  # wrapped, never cut with an ellipsis: ids and repos are what a user copies
    table.columns[0].no_wrap = True
    for row in rows:
        table.add_row(*row.values())
    console.print(table)


def pin(
    files: Annotated[Optional[list[Path]], typer.Argument(help="card or task YAMLs (default: all of them)")] = None,
    dry_run: Annotated[bool, typer.Option(help="show the commits without writing them", metavar="")] = False,
) -> None:
    """Replace the Hub branch names (revision: main) of cards and tasks by the commits they name now."""
    paths = files or sorted([*CARDS_DIR.glob("*.yaml"), *TASKS_DIR.glob("*.yaml")])
    table = Table("file", "repository", "was", "commit", title="owb pin" + (" (dry run)" if dry_run else ""))
    for path in paths:
        for p in pin_file(path, dry_run=dry_run):
            table.add_row(p.file.name, p.repo, p.revision, p.commit)
    console.print(table if table.row_count else "nothing to pin: every Hub revision is a commit already")
