"""The verdict on a published claim beside a run: an equivalence test of run - claim against +-tolerance.

The run's 95% interval is its metric's (clustered by problem: Wilson over documents, or the bootstrap over
documents); the claim's own sampling error, where its protocol states k, is a Wilson interval over the n problems
times k samples it averaged (an upper bound: spread between problems only narrows it). The two are combined into an
interval of the difference by the MOVER method (Newcombe): `consistent` when it lies inside +-tolerance, `below` or
`above` when it lies wholly on that side of 0, else `inconclusive`, with the problems or samples per problem that
would separate a difference of the observed size.
"""

from __future__ import annotations

import math
from typing import Literal

from pydantic import BaseModel

from harness.config.cards import PublishedScore
from harness.core.stats import Z95, wilson
from harness.records.run import MetricSummary, TaskResult
from harness.records.store import RunDir

DEFAULT_TOLERANCE = 5.0  # points
Outcome = Literal["consistent", "below", "above", "inconclusive"]


class Sizing(BaseModel):
    """What would separate a difference of the observed size from 0 (normal approximation, about)."""

    problems: int | None  # documents needed at the run's samples per problem (None: no number suffices)
    samples_per_problem: int | None  # samples per problem needed on the run's documents (None: no number suffices)
    note: str


class Verdict(BaseModel):
    """A claim judged against a run: the difference run - claim with its 95% interval, and the outcome."""

    verdict: Outcome
    run: float
    claim: float
    difference: float
    ci95: tuple[float, float]
    tolerance: float
    claim_interval: tuple[float, float] | None  # the claim's own 95% sampling interval (None: not counted)
    claim_error: str  # how the claim's own error was counted, or why not
    sizing: Sizing | None = None  # when inconclusive

    def describe(self) -> str:
        """'below: run - claim -12.4 [-15.6, -9.3] points, tolerance +-5' and, when inconclusive, the sizing."""
        lo, hi = self.ci95
        text = (f"{self.verdict}: run - claim {self.difference:+.1f} [{lo:+.1f}, {hi:+.1f}], tolerance "
                f"+-{self.tolerance:g}; claim's own error: {self.claim_error}")
        return text + (f"; {self.sizing.note}" if self.sizing else "")


def decide(lo: float, hi: float, tolerance: float) -> Outcome:
    """The rule: inside +-tolerance is consistent; else wholly below or above 0; else inconclusive."""
    if -tolerance <= lo and hi <= tolerance:
        return "consistent"
    if hi < 0:
        return "below"
    if lo > 0:
        return "above"
    return "inconclusive"


def claim_interval(value: float, problems: int, samples: int, scale: float = 100.0) -> tuple[float, float]:
    """The claim's own 95% sampling interval: Wilson over problems x samples draws at the claimed proportion."""
    lo, hi = wilson(min(max(value / scale, 0.0), 1.0), problems * samples)
    return scale * lo, scale * hi


def difference_interval(run: float, run_ci: tuple[float, float], claim: float,
                        claim_ci: tuple[float, float]) -> tuple[float, float]:
    """95% interval of run - claim from the two intervals (MOVER: each side's distances added in quadrature)."""
    d = run - claim
    lower = d - math.hypot(run - run_ci[0], claim_ci[1] - claim)
    upper = d + math.hypot(run_ci[1] - run, claim - claim_ci[0])
    return lower, upper


Interval = tuple[float, float]


def _claim_side(claim: PublishedScore, summary: MetricSummary, result: TaskResult) -> tuple[Interval | None, str]:
    """The claim's own interval and how it was counted: over n problems x k samples where its protocol states k (one
    draw per problem for a vote or pass@k), none where it does not."""
    k = claim.protocol.samples
    n = result.n or 0
    if k is None:
        return None, "not counted (k not stated)"
    if summary.scale != "percent" or n == 0:
        return None, "not counted (not a percentage)" if n else "not counted (no documents)"
    draws = k if summary.score is not None else 1
    interval = claim_interval(claim.value, n, draws)
    return interval, f"Wilson over {n} problems x {draws} sample{'s' if draws > 1 else ''}"


def judge(run_dir: RunDir, result: TaskResult, task: str, metric: str, claim: PublishedScore,
          tolerance: float = DEFAULT_TOLERANCE) -> Verdict | None:
    """The verdict on one claim beside a task metric of a run (None: the run has no interval for it)."""
    summary = result.metrics.get(metric)
    if summary is None or summary.value is None or summary.ci95 is None:
        return None
    claim_ci, how = _claim_side(claim, summary, result)
    lo, hi = difference_interval(summary.value, summary.ci95, claim.value, claim_ci or (claim.value, claim.value))
    outcome = decide(lo, hi, tolerance)
    verdict = Verdict(verdict=outcome, run=summary.value, claim=claim.value, difference=summary.value - claim.value,
                      ci95=(lo, hi), tolerance=tolerance, claim_interval=claim_ci, claim_error=how)
    if outcome == "inconclusive":
        verdict.sizing = sizing(run_dir, result, task, summary, verdict)
    return verdict


def within_problem_variance(run_dir: RunDir, task: str, score: str) -> float | None:
    """Mean over documents of the unbiased variance of a per-sample score among a document's samples (None: under
    two samples per document). Streams the samples' stats."""
    sums: dict[str, list[float]] = {}
    for s in run_dir.samples(task).stats():
        acc = sums.setdefault(s.doc_id, [0.0, 0.0, 0.0])
        value = s.scores[score]
        acc[0] += 1
        acc[1] += value
        acc[2] += value * value
    spreads = [(sq - total * total / count) / (count - 1) for count, total, sq in sums.values() if count > 1]
    return sum(spreads) / len(spreads) if spreads and len(spreads) == len(sums) else None


def sizing(run_dir: RunDir, result: TaskResult, task: str, summary: MetricSummary, verdict: Verdict) -> Sizing:
    """Problems (at the run's k) or samples per problem (on the run's problems) that would put a difference of the
    observed size outside the 95% interval: the run's per-document variance split into between-problem and
    within-problem parts (sigma_b^2 + sigma_w^2 / k), the claim's own error held fixed."""
    n, k = result.n or 0, result.config.generation.samples_per_doc
    scale = 100.0 if summary.scale == "percent" else 1.0
    gap = abs(verdict.difference)
    if summary.stderr is None or n < 2 or gap == 0:
        return Sizing(problems=None, samples_per_problem=None, note="a zero difference cannot be separated from 0"
                      if gap == 0 else "too few documents to size")
    claim_se = (max(verdict.claim_interval) - verdict.claim) / Z95 if verdict.claim_interval else 0.0
    room = (gap / Z95) ** 2 - claim_se**2  # the run's variance (points^2) that would separate the gap
    if room <= 0:
        return Sizing(problems=None, samples_per_problem=None,
                      note=f"the claim's own error alone is wider than the {gap:.1f}-point difference")
    per_doc = n * (summary.stderr / scale) ** 2  # sigma_b^2 + sigma_w^2 / k, as a proportion's variance
    if per_doc == 0:
        return Sizing(problems=None, samples_per_problem=None, note="every document scored alike: no spread to size")
    within = within_problem_variance(run_dir, task, summary.score) if summary.score and k > 1 else None
    between = max(per_doc - within / k, 0.0) if within is not None else per_doc
    problems = math.ceil(per_doc * scale**2 / room)
    spare = room * n / scale**2 - between
    samples = math.ceil(within / spare) if within and spare > 0 else None
    options = [f"about {problems} problems at k={k}"]
    if samples is not None:
        options.append(f"k = {samples} samples per problem on these {n}")
    elif within is not None:
        options.append(f"no k on these {n} problems (the spread between problems alone is too wide)")
    return Sizing(problems=problems, samples_per_problem=samples,
                  note=f"to separate a {gap:.1f}-point difference: " + ", or ".join(options))
