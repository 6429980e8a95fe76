"""`owb list` (the model cards and tasks) and `owb pin` (Hub branch names written as commits)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from harness.cli.app import console
from harness.config.cards import all_cards
from harness.config.pins import pin_file
from harness.core.errors import ConfigError
from harness.core.paths import CARDS_DIR, TASKS_DIR
from harness.tasks.base import all_tasks


def list_(what: Annotated[str, typer.Argument(help="models | tasks")]) -> None:
    """List the model cards or the tasks."""
    if what == "models":
        table = Table("id", "family", "architecture", "source", "thinking", "license")
        for card in all_cards():
            source = card.hf_repo or card.local_path or card.package or f"tiny:{card.tiny}"
            table.add_row(card.id, card.family, card.architecture, source,
                          f"{card.thinking.kind} ({card.thinking.default})", card.license)
    elif what == "tasks":
        table = Table("task", "scorer", "metrics", "description")
        for spec in all_tasks():
            table.add_row(spec.name, spec.scorer.name, ", ".join(m.name for m in spec.metrics), spec.description)
    else:
        raise ConfigError(f"owb list takes 'models' or 'tasks', not '{what}'")
    console.print(table)


def pin(
    files: Annotated[Optional[list[Path]], typer.Argument(help="card or task YAMLs (default: all of them)")] = None,
    dry_run: Annotated[bool, typer.Option(help="show the commits without writing them")] = False,
) -> None:
    """Replace the Hub branch names (revision: main) of cards and tasks by the commits they name now."""
    paths = files or sorted([*CARDS_DIR.glob("*.yaml"), *TASKS_DIR.glob("*.yaml")])
    table = Table("file", "repository", "was", "commit", title="owb pin" + (" (dry run)" if dry_run else ""))
    for path in paths:
        for p in pin_file(path, dry_run=dry_run):
            table.add_row(p.file.name, p.repo, p.revision, p.commit)
    console.print(table if table.row_count else "nothing to pin: every Hub revision is a commit already")
