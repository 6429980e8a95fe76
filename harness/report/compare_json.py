"""`owb compare --format json`: every figure of the comparison table (metrics with their intervals, the claims with
their verdicts, costs, speed) and each run's diagnosis, as one typed document."""

from __future__ import annotations

from pydantic import BaseModel

from harness.config.cards import PublishedScore
from harness.records.run import MetricSummary, TaskCost
from harness.report.diagnose import RunDiagnosis
from harness.report.rows import RunRow, ShownClaim
from harness.report.verdict import Verdict


class ClaimEntry(BaseModel):
    """A published claim beside a run's metric: the claim in full, its footnote text and its verdict."""

    claim: PublishedScore
    detail: str
    outside_ci: bool
    verdict: Verdict | None


class MetricEntry(BaseModel):
    """One task metric of a run: its summary (value, stderr, 95% CI, descriptor) and the claims beside it, or why
    none is."""

    task: str
    metric: str
    primary: bool
    summary: MetricSummary
    claims: list[ClaimEntry]
    no_claim: str | None


class RunEntry(BaseModel):
    """One row of the comparison, and the run's diagnosis."""

    run_id: str
    model: str
    backend: str
    thinking: str
    label: str
    metrics: list[MetricEntry]
    costs: dict[str, TaskCost]
    thinking_budgets: dict[str, int]  # task@thinkN -> N
    output_tokens_per_s: float | None
    ttft_p50_s: float | None
    diagnosis: RunDiagnosis | None


class CompareReport(BaseModel):
    """The whole comparison."""

    tolerance: float
    runs: list[RunEntry]


def _claim(shown: ShownClaim) -> ClaimEntry:
    return ClaimEntry(claim=shown.claim, detail=shown.detail(), outside_ci=shown.outside_ci, verdict=shown.verdict)


def run_entry(row: RunRow, diagnosis: RunDiagnosis | None) -> RunEntry:
    """A row of the comparison with every figure it shows."""
    metrics = [MetricEntry(task=t, metric=m, primary=row.primary.get(t) == m, summary=summary,
                           claims=[_claim(s) for s in row.published.get((t, m), [])], no_claim=row.no_claim.get((t, m)))
               for (t, m), summary in row.metrics.items()]
    return RunEntry(run_id=row.run_id, model=row.model, backend=row.backend, thinking=row.thinking, label=row.label,
                    metrics=metrics, costs=row.costs, thinking_budgets={t: b for t, (_, b) in row.budgets.items()},
                    output_tokens_per_s=row.output_tokens_per_s, ttft_p50_s=row.ttft_p50_s, diagnosis=diagnosis)


def to_json(rows: list[RunRow], diagnoses: list[RunDiagnosis], tolerance: float) -> str:
    """The comparison and the diagnoses as indented JSON."""
    report = CompareReport(tolerance=tolerance,
                           runs=[run_entry(r, d) for r, d in zip(rows, diagnoses, strict=True)])
    return report.model_dump_json(indent=2) + "\n"
