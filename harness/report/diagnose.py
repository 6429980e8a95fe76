"""`owb diagnose`: why a run scores what it scores, per task. One streamed pass over each task's samples runs the
per-sample detectors (harness.report.detectors); the task-level ones compare the settings and the sample size.

Each finding is a kind, how many samples show it and their share, example documents and, where computable, the
points of the primary metric it would move: share x (the others' mean score - theirs), i.e. what the task would
score if these samples scored like the rest (for truncation, an upper bound on what a larger budget buys: the
samples that finished are the easier ones).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import BaseModel

from harness.records.run import RunRecord
from harness.records.sample import SampleRecord
from harness.records.store import RunDir
from harness.report.detectors import SAMPLE_DETECTORS, SampleContext
from harness.report.settings import base_name, setting_differences
from harness.report.verdict import DEFAULT_TOLERANCE

EXAMPLES = 3  # example documents per finding


class Finding(BaseModel):
    """One cause found in a task of a run."""

    kind: str
    count: int | None  # samples that show it (settings: differences; too_few_samples: documents); None: unknown
    share: float | None  # of the task's samples, 0-1 (None: not a per-sample finding, or unknown)
    examples: list[str] = []  # document ids
    effect: float | None = None  # points of the primary metric if these samples scored like the rest
    detail: str
    differences: list[str] = []  # settings_differ: each difference named


class TaskDiagnosis(BaseModel):
    """The findings of one task."""

    task: str
    samples: int
    primary_metric: str | None
    value: float | None
    findings: list[Finding]


class RunDiagnosis(BaseModel):
    """The findings of every task of a run."""

    run_id: str
    model: str
    path: str
    tasks: list[TaskDiagnosis]


@dataclass
class Tally:
    """Samples a detector flagged, streamed: how many, their scores, example documents, and how many were unknown."""

    count: int = 0
    unknown: int = 0
    scored: int = 0
    score_sum: float = 0.0
    also: Counter[str] = field(default_factory=Counter)  # the other kinds flagged on the same samples
    examples: list[str] = field(default_factory=list)

    def add(self, sample: SampleRecord, score: float | None, also: list[str]) -> None:
        """Count a flagged sample, and the other kinds flagged on it."""
        self.count += 1
        self.also.update(also)
        if score is not None:
            self.scored += 1
            self.score_sum += score
        if len(self.examples) < EXAMPLES and sample.doc_id not in self.examples:
            self.examples.append(sample.doc_id)


HINTS = {
    "truncation": "hit the token budget (max_new_tokens {budget}); a larger --max-new-tokens lets those still "
                  "working finish (not those in a loop)",
    "no_answer": "the scorer found no answer to grade (no final answer in the expected form)",
    "unclosed_thinking": "the think block never closed, so no answer followed it",
    "unopened_thinking": "thinking was on but no think block was opened (by the model or the prompt)",
    "repetition": "the output ends in a loop (one phrase repeated to the end)",
    "empty_output": "the model wrote nothing",
}


def _per_sample_finding(kind: str, tally: Tally, everyone: Tally, scale: float, budget: int) -> Finding | None:
    """A detector's tally as a finding (None: it flagged nothing); the effect where the samples were scored."""
    if tally.count == 0:
        if tally.unknown < everyone.count:
            return None
        return Finding(kind=kind, count=None, share=None,
                       detail="unknown: this run's scorer did not record it (an older run; `owb rescore` records it)")
    share = tally.count / everyone.count
    text = f"{tally.count} of {everyone.count} samples: {HINTS[kind].format(budget=budget)}"
    effect = None
    rest = everyone.scored - tally.scored
    if tally.scored and rest:
        mine, others = tally.score_sum / tally.scored, (everyone.score_sum - tally.score_sum) / rest
        effect = scale * share * (others - mine)
        text += f"; they score {scale * mine:.1f} against {scale * others:.1f} for the rest"
    if tally.also:
        text += "; of these also " + ", ".join(f"{other} {n}" for other, n in tally.also.items())
    if tally.unknown:
        text += f"; {tally.unknown} samples unknown"
    return Finding(kind=kind, count=tally.count, share=share, examples=tally.examples, effect=effect, detail=text)


def settings_differ(run_dir: RunDir, record: RunRecord, task: str, tolerance: float) -> Finding | None:
    """The task's settings against the card's recommendation, the claims' protocols and the repository's card."""
    found = setting_differences(record, task)
    if not found:
        return None
    return Finding(kind="settings_differ", count=len(found), share=None, differences=found,
                   detail=f"{len(found)} setting(s) differ: " + "; ".join(found))


def _claimed_k(record: RunRecord, task: str) -> int | None:
    ks = [c.protocol.samples for c in record.model.card.published
          if c.task == base_name(task) and c.protocol.samples is not None and c.thinking in (None, record.thinking)]
    return max(ks) if ks else None


def too_few_samples(run_dir: RunDir, record: RunRecord, task: str, tolerance: float) -> Finding | None:
    """The primary metric's 95% CI is wider than +-tolerance, or k is below the claims' k: a verdict cannot be
    decided at this size."""
    result = record.tasks[task]
    summary = result.metrics.get(result.primary_metric or "")
    if summary is None or summary.ci95 is None or summary.value is None or not result.n:
        return None
    half = (summary.ci95[1] - summary.ci95[0]) / 2
    k, claimed = result.config.generation.samples_per_doc, _claimed_k(record, task)
    reasons = []
    if half > tolerance:
        needed = math.ceil(result.n * (half / tolerance) ** 2)
        reasons.append(f"the 95% CI is +-{half:.1f} points over {result.n} documents at k={k}, wider than the "
                       f"+-{tolerance:g} tolerance (about {needed} documents would narrow it to +-{tolerance:g})")
    if claimed is not None and k < claimed:
        reasons.append(f"k={k} samples per problem where the claims use k={claimed}")
    if not reasons:
        return None
    limit = record.invocation.limit
    scope = f"; the run scored only its first {limit} documents (--limit)" if limit is not None else ""
    return Finding(kind="too_few_samples", count=result.n, share=None, detail="; ".join(reasons) + scope)


TaskDetector = Callable[[RunDir, RunRecord, str, float], Finding | None]
TASK_DETECTORS: dict[str, TaskDetector] = {"settings_differ": settings_differ, "too_few_samples": too_few_samples}


def diagnose_task(run_dir: RunDir, record: RunRecord, task: str, tolerance: float = DEFAULT_TOLERANCE) -> TaskDiagnosis:
    """Every finding of one task: the per-sample detectors over its streamed samples, then the task-level ones."""
    result = record.tasks[task]
    summary = result.metrics.get(result.primary_metric or "")
    score = summary.score if summary is not None else None
    scale = 100.0 if summary is None or summary.scale == "percent" else 1.0
    ctx = SampleContext(record.model.card, record.thinking)
    tallies = {kind: Tally() for kind in SAMPLE_DETECTORS}
    everyone = Tally()
    for sample in run_dir.samples(task).records():
        value = sample.scores.get(score) if score else None
        everyone.add(sample, value, [])
        flags = {kind: detect(sample, ctx) for kind, detect in SAMPLE_DETECTORS.items()}
        flagged = [kind for kind, flag in flags.items() if flag]
        for kind in flagged:
            tallies[kind].add(sample, value, [other for other in flagged if other != kind])
        for kind in (kind for kind, flag in flags.items() if flag is None):
            tallies[kind].unknown += 1
    budget = result.config.generation.max_new_tokens
    findings = [f for kind, tally in tallies.items()
                if everyone.count and (f := _per_sample_finding(kind, tally, everyone, scale, budget))]
    findings += [f for detect in TASK_DETECTORS.values() if (f := detect(run_dir, record, task, tolerance))]
    return TaskDiagnosis(task=task, samples=everyone.count, primary_metric=result.primary_metric,
                         value=summary.value if summary else None, findings=findings)


def diagnose_run(path: Path, tolerance: float = DEFAULT_TOLERANCE) -> RunDiagnosis:
    """The findings of every task of the run in `path`."""
    run_dir = RunDir(path)
    record = run_dir.read_run()
    return RunDiagnosis(run_id=record.run_id, model=record.model.id, path=str(path),
                        tasks=[diagnose_task(run_dir, record, task, tolerance) for task in record.tasks])
