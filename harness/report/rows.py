"""One run as a row of a comparison: its metrics with CIs, the published claims measured like it, speed and cost."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from harness.config.cards import PublishedScore
from harness.measure.perf import run_output_tokens_per_s
from harness.records.base import Percentiles
from harness.records.run import MetricSummary, RunRecord, TaskCost
from harness.records.sample import base_task
from harness.records.store import RunDir


@dataclass(frozen=True)
class ShownClaim:
    """A published claim shown beside a run of the same task, metric and thinking mode."""

    claim: PublishedScore
    outside_ci: bool  # the published value lies outside the run's measured 95% CI

    def detail(self) -> str:
        """Benchmark, mode, protocol, notes and source in one line (footnote, tooltip)."""
        c = self.claim
        mode = f", thinking {c.thinking}" if c.thinking else ""
        notes = f"; {c.notes}" if c.notes else ""
        return f"{c.benchmark} {c.metric}{mode}: {c.protocol.describe()}{notes}. Source: {c.source}"


def matching_claims(record: RunRecord, task: str, metric: str) -> list[PublishedScore]:
    """The card's claims measured like this run: same owb task and metric, same thinking mode (or unstated), the
    same owb protocol where the claim names one, and the same samples per problem where the claim states k."""
    protocol = record.invocation.protocol
    samples = record.tasks[task].config.generation.samples_per_doc
    return [c for c in record.model.card.published
            if c.task == task and c.metric == metric and c.thinking in (None, record.thinking)
            and (c.protocol.name is None or c.protocol.name == protocol)
            and (c.protocol.samples is None or c.protocol.samples == samples)]


@dataclass(frozen=True)
class RunRow:
    """One run as a row of a comparison: who ran, the metrics with CIs, the published claims, the speed."""

    run_id: str
    model: str
    backend: str
    thinking: str
    metrics: dict[tuple[str, str], MetricSummary]
    primary: dict[str, str]
    published: dict[tuple[str, str], list[ShownClaim]]
    output_tokens_per_s: float | None
    ttft_p50_s: float | None
    costs: dict[str, TaskCost]
    budgets: dict[str, tuple[str, int]]  # task@thinkN -> (the task, N), as recorded in its generation settings

    @property
    def label(self) -> str:
        """Short name of the run for plots and headers."""
        return f"{self.model} ({self.backend}, thinking {self.thinking})"


def load_row(path: Path) -> RunRow:
    """A comparison row from a run directory."""
    run_dir = RunDir(path)
    record = run_dir.read_run()
    metrics = {(t, m): v for t, e in record.tasks.items() for m, v in e.metrics.items()}
    claims: dict[tuple[str, str], list[ShownClaim]] = {}
    for (task, metric), summary in metrics.items():
        lo, hi = summary.ci95 or (float("-inf"), float("inf"))
        shown = [ShownClaim(c, not lo <= c.value <= hi) for c in matching_claims(record, task, metric)]
        if shown:
            claims[(task, metric)] = shown
    ttft = Percentiles.of([s.ttft_s for t in record.tasks for s in run_dir.load_samples(t)])
    return RunRow(
        run_id=record.run_id,
        model=record.model.id,
        backend=record.backend.name,
        thinking=record.thinking,
        metrics=metrics,
        primary={t: e.primary_metric or next(iter(e.metrics), "") for t, e in record.tasks.items()},
        published=claims,
        output_tokens_per_s=run_output_tokens_per_s(record),
        ttft_p50_s=ttft.p50 if ttft else None,
        costs={t: e.cost for t, e in record.tasks.items() if e.cost is not None},
        budgets={t: (base_task(t, b), b) for t, e in record.tasks.items()
                 if (b := e.config.generation.thinking_budget) is not None},
    )
