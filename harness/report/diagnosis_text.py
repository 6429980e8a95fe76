"""`owb diagnose` findings as text: a terminal table, markdown and an HTML section (the compare report's)."""

from __future__ import annotations

import html

from rich.table import Table

from harness.report.diagnose import Finding, RunDiagnosis
from harness.report.format import fmt_number

COLUMNS = ("task", "kind", "count", "share %", "would move (pts)", "examples", "detail")


def _cells(task: str, f: Finding) -> list[str]:
    """One finding's cells: count 'unknown' when the run cannot tell, the effect signed."""
    count = "unknown" if f.count is None else str(f.count)
    share = fmt_number(100 * f.share if f.share is not None else None, ".1f")
    return [task, f.kind, count, share, fmt_number(f.effect, "+.1f"), ", ".join(f.examples), f.detail]


def _lines(diagnosis: RunDiagnosis) -> list[list[str]]:
    """Every finding's cells, and a line for each task with none."""
    lines = []
    for t in diagnosis.tasks:
        lines += [_cells(t.task, f) for f in t.findings] or [[t.task, "-", "", "", "", "", "nothing found"]]
    return lines


def _title(diagnosis: RunDiagnosis) -> str:
    scores = ", ".join(f"{t.task} {t.primary_metric} {fmt_number(t.value, '.1f')}" for t in diagnosis.tasks)
    return f"owb diagnose {diagnosis.run_id} ({diagnosis.model}): {scores}"


def diagnosis_table(diagnosis: RunDiagnosis) -> Table:
    """The findings for the terminal."""
    table = Table(title=_title(diagnosis), title_justify="left")
    for name in COLUMNS:
        table.add_column(name, justify="right" if name in ("count", "share %", "would move (pts)") else "left")
    for line in _lines(diagnosis):
        table.add_row(*line)
    return table


def diagnosis_markdown(diagnosis: RunDiagnosis) -> str:
    """The findings as a markdown table."""
    rows = ["| " + " | ".join(line).replace("\n", " ") + " |" for line in _lines(diagnosis)]
    return "\n".join([f"## {_title(diagnosis)}", "", "| " + " | ".join(COLUMNS) + " |",
                      "|---|---|---:|---:|---:|---|---|", *rows]) + "\n"


def diagnosis_html(diagnoses: list[RunDiagnosis]) -> str:
    """An HTML section with one findings table per run."""
    parts = ["<h2>Diagnosis</h2>"]
    for d in diagnoses:
        head = "".join(f"<th>{html.escape(c)}</th>" for c in COLUMNS)
        body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in line) + "</tr>" for line in _lines(d))
        parts.append(f'<h3>{html.escape(_title(d))}</h3><table class="diagnosis"><thead><tr>{head}</tr></thead>'
                     f"<tbody>{body}</tbody></table>")
    return "\n".join(parts)
