"""The comparison of runs as text cells (header, one row per run, published claims as numbered footnotes), shared by
the terminal, markdown and HTML renderings."""

from __future__ import annotations

from dataclasses import dataclass

from harness.report.format import fmt_metric, fmt_number
from harness.report.rows import RunRow, ShownClaim


def metric_columns(rows: list[RunRow]) -> list[tuple[str, str]]:
    return list(dict.fromkeys(key for row in rows for key in row.metrics))

COST_COLUMNS = (("tok/correct", "output_tokens_per_correct", ".0f"), ("J/correct", "joules_per_correct", ".1f"),
                ("$/1k correct", "usd_per_1k_correct", ".3f"))


def _cost_columns(rows: list[RunRow]) -> list[tuple[str, str, str, str]]:
    """(task, label, field, format) for each cost figure some run measured."""
    tasks = list(dict.fromkeys(t for r in rows for t in r.costs))
    return [(t, label, field, fmt) for t in tasks for label, field, fmt in COST_COLUMNS
            if any(getattr(r.costs.get(t), field, None) is not None for r in rows)]

OUTSIDE_CI = "*"
LEGEND = f"{OUTSIDE_CI} the published value lies outside this run's 95% CI"
VERDICT_LEGEND = ("verdict: consistent when the 95% interval of run - claim lies inside +-tolerance, below or above "
                  "when it lies wholly on that side of 0, else inconclusive")


def _claim_cell(shown: ShownClaim, ref: int) -> str:
    """'83.9* [1] below': the claim, whether it lies outside the run's CI, its footnote and its verdict."""
    verdict = f" {shown.verdict.verdict}" if shown.verdict else ""
    return f"{shown.claim.value:.1f}{OUTSIDE_CI if shown.outside_ci else ''} [{ref}]{verdict}"


def _no_claim(row: RunRow, column: tuple[str, str], notes: dict[str, int]) -> str:
    """A headline column's cell without a claim: a dash and the footnote that says why."""
    why = row.no_claim.get(column)
    return f"- [{notes.setdefault(f'no claim: {why}', len(notes) + 1)}]" if why else "-"


@dataclass(frozen=True)
class Cells:
    """The comparison as text: header, one row per run, footnotes for the published claims and, per claim cell,
    the claims' details (tooltips)."""

    header: list[str]
    body: list[list[str]]
    footnotes: list[str]
    details: dict[tuple[int, int], str]
    verdicts: list[str]  # one line per judged claim: run, task metric, claim, the difference's interval, sizing


def comparison_cells(rows: list[RunRow]) -> Cells:
    """A value-with-CI column per task metric, then its published claims (numbered footnotes), then speed."""
    columns = metric_columns(rows)
    claimed = [c for c in columns if any(c in r.published or c in r.no_claim for r in rows)]
    costs = _cost_columns(rows)
    header = ["run", "model", "backend", "thinking", *[f"{t} {m}" for t, m in columns],
              *[f"{t} {m} (published)" for t, m in claimed], *[f"{t} {label}" for t, label, _, _ in costs],
              "out tok/s", "ttft p50 s"]
    notes: dict[str, int] = {}
    body, details, verdicts = [], {}, []
    for i, r in enumerate(rows):
        claim_cells = []
        for j, c in enumerate(claimed):
            shown = r.published.get(c, [])
            refs = [notes.setdefault(s.detail(), len(notes) + 1) for s in shown]
            claim_cells.append("; ".join(_claim_cell(s, n) for s, n in zip(shown, refs, strict=True))
                               or _no_claim(r, c, notes))
            verdicts += [f"{r.run_id} {c[0]} {c[1]} vs {s.claim.value:g} [{n}]: {s.verdict.describe()}"
                         for s, n in zip(shown, refs, strict=True) if s.verdict]
            if shown:
                details[(i, 4 + len(columns) + j)] = " | ".join(
                    s.detail() + (f" Verdict {s.verdict.describe()}" if s.verdict else "") for s in shown)
            elif c in r.no_claim:
                details[(i, 4 + len(columns) + j)] = f"no claim: {r.no_claim[c]}"
        cost_cells = [fmt_number(getattr(r.costs.get(t), field, None), fmt) for t, _, field, fmt in costs]
        body.append([r.run_id, r.model, r.backend, r.thinking, *[fmt_metric(r.metrics.get(c)) for c in columns],
                     *claim_cells, *cost_cells, fmt_number(r.output_tokens_per_s, ".1f"),
                     fmt_number(r.ttft_p50_s, ".3f")])
    footnotes = [f"[{n}] {text}" for text, n in notes.items()] + ([LEGEND] if notes else [])
    return Cells(header, body, footnotes + ([VERDICT_LEGEND] if verdicts else []), details, verdicts)
