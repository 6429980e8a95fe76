"""One run as a row of a comparison: its metrics with CIs, the published claims measured like it, speed and cost."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from harness.config.cards import PublishedScore
from harness.config.taskspec import load_task_spec
from harness.core.errors import ConfigError
from harness.measure.perf import run_output_tokens_per_s
from harness.records.base import Percentiles
from harness.records.run import MetricSummary, RunRecord, TaskCost
from harness.records.sample import base_task, split_name
from harness.records.store import RunDir
from harness.report.verdict import DEFAULT_TOLERANCE, Verdict, judge
from harness.tasks.arguments import argument_values, split_arguments


@dataclass(frozen=True)
class ShownClaim:
    """A published claim shown beside a run of the same task, metric and thinking mode."""

    claim: PublishedScore
    outside_ci: bool  # the published value lies outside the run's measured 95% CI
    verdict: Verdict | None = None  # the equivalence test of run - claim (None: the run has no interval)

    def detail(self) -> str:
        """Benchmark, mode, protocol, notes and source in one line (footnote, tooltip)."""
        c = self.claim
        mode = f", thinking {c.thinking}" if c.thinking else ""
        notes = f"; {c.notes}" if c.notes else ""
        return f"{c.benchmark} {c.metric}{mode}: {c.protocol.describe()}{notes}. Source: {c.source}"


def _arguments(task: str, given: dict[str, str], claimed: dict[str, str]) -> tuple[dict[str, str], dict[str, str]]:
    """The run's and the claim's task arguments as the task holds them (a window as whole days, defaults filled
    in), so that `2024-08..2025-01` and `2024-08-01..2025-01-31` are one window."""
    try:
        spec = load_task_spec(task)
        return argument_values(spec, given), argument_values(spec, claimed)
    except ConfigError:  # a task that no longer exists, or a claim's bad value: compare as written
        return given, claimed


def claim_mismatch(record: RunRecord, task: str, metric: str, claim: PublishedScore) -> str | None:
    """Why a claim does not describe this run's task and metric (None: it does): another task or metric, thinking
    mode, owb protocol, samples per problem or task argument (e.g. the LiveCodeBench window)."""
    name, budget = split_name(task)
    base, given = split_arguments(name) if budget is None else (task, {})
    if claim.task != base or claim.metric != metric:
        return f"published as {claim.task} {claim.metric}" if claim.task == base else "another task"
    if claim.thinking not in (None, record.thinking):
        return f"published with thinking {claim.thinking}; this run thinking {record.thinking}"
    protocol = record.invocation.protocol
    if claim.protocol.name not in (None, protocol):
        return f"published under the {claim.protocol.name} protocol; this run {protocol or 'under none'}"
    samples = record.tasks[task].config.generation.samples_per_doc
    if claim.protocol.samples not in (None, samples):
        return f"published at k={claim.protocol.samples} samples per problem; this run k={samples}"
    ran, claimed = _arguments(base, given, claim.protocol.task_args)
    for key in claim.protocol.task_args:
        if claimed.get(key) != ran.get(key):
            return f"published with {base}@{key}={claimed.get(key)}; this run {key}={ran.get(key)}"
    return None


def matching_claims(record: RunRecord, task: str, metric: str) -> list[PublishedScore]:
    """The card's claims measured like this run: same owb task and metric, same thinking mode (or unstated), the
    same owb protocol where the claim names one, the same samples per problem where the claim states k, and the
    same task arguments (e.g. LiveCodeBench's window) where the claim gives them."""
    return [c for c in record.model.card.published if claim_mismatch(record, task, metric, c) is None]


def why_no_claim(record: RunRecord, task: str, metric: str) -> str:
    """Why no published figure sits beside this task and metric: the nearest claim's difference, or that the card
    publishes none for the task."""
    reasons = [r for c in record.model.card.published if (r := claim_mismatch(record, task, metric, c))]
    near = [r for r in reasons if r != "another task"]
    own = [r for r in near if not r.startswith("published as ")]
    if own or near:
        return "; ".join(dict.fromkeys(own or near))
    return f"{record.model.id} publishes no {split_arguments(split_name(task)[0])[0]} figure"


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
    no_claim: dict[tuple[str, str], str]  # why a headline (primary metric) column has no claim beside it
    output_tokens_per_s: float | None
    ttft_p50_s: float | None
    costs: dict[str, TaskCost]
    budgets: dict[str, tuple[str, int]]  # task@thinkN -> (the task, N), as recorded in its generation settings

    @property
    def label(self) -> str:
        """Short name of the run for plots and headers."""
        return f"{self.model} ({self.backend}, thinking {self.thinking})"


def load_row(path: Path, tolerance: float = DEFAULT_TOLERANCE) -> RunRow:
    """A comparison row from a run directory; each claim judged with `tolerance` points."""
    run_dir = RunDir(path)
    record = run_dir.read_run()
    metrics = {(t, m): v for t, e in record.tasks.items() for m, v in e.metrics.items()}
    claims: dict[tuple[str, str], list[ShownClaim]] = {}
    for (task, metric), summary in metrics.items():
        lo, hi = summary.ci95 or (float("-inf"), float("inf"))
        shown = [ShownClaim(c, not lo <= c.value <= hi, judge(run_dir, record.tasks[task], task, metric, c, tolerance))
                 for c in matching_claims(record, task, metric)]
        if shown:
            claims[(task, metric)] = shown
    primary = {t: e.primary_metric or next(iter(e.metrics), "") for t, e in record.tasks.items()}
    no_claim = {(t, m): why_no_claim(record, t, m) for t, m in primary.items() if m and (t, m) not in claims}
    ttft = Percentiles.of([s.ttft_s for t in record.tasks for s in run_dir.samples(t).stats()])
    return RunRow(
        run_id=record.run_id,
        model=record.model.id,
        backend=record.backend.name,
        thinking=record.thinking,
        metrics=metrics,
        primary=primary,
        published=claims,
        no_claim=no_claim,
        output_tokens_per_s=run_output_tokens_per_s(record),
        ttft_p50_s=ttft.p50 if ttft else None,
        costs={t: e.cost for t, e in record.tasks.items() if e.cost is not None},
        budgets={t: (base_task(t, b), b) for t, e in record.tasks.items()
                 if (b := e.config.generation.thinking_budget) is not None},
    )
