"""A task's summary from every sample on disk: metrics with CIs over documents, truncation, speed and cost; and the
scorers a command shares across its tasks."""

from __future__ import annotations

from harness.core.log import warn
from harness.measure.cost import task_cost
from harness.measure.perf import aggregate_perf
from harness.measure.speed import speed_context
from harness.records.run import RunRecord
from harness.records.sample import SampleStats
from harness.records.store import RunDir
from harness.scoring.base import Scorer
from harness.scoring.metrics import document_values, summaries
from harness.tasks.base import Task

TRUNCATION_WARN_PCT = 5.0


class ScorerPool:
    """One scorer per task for a whole command (grading and then summarising), all closed at the end."""

    def __init__(self) -> None:
        self._made: dict[str, Scorer] = {}

    def of(self, task: Task) -> Scorer:
        """The task's scorer, made on first use; tasks of one spec (a task under several thinking budgets) share it."""
        key = task.spec_hash()
        if key not in self._made:
            self._made[key] = task.scorer()
        return self._made[key]

    def close(self) -> None:
        """Stop every scorer's workers."""
        for scorer in self._made.values():
            scorer.close()


def summarize_task(task: Task, run_dir: RunDir, record: RunRecord, seed: int, scorer: Scorer) -> None:
    """Metrics with CIs over documents, truncation and perf, from every sample on disk, into the task's entry."""
    samples = list(run_dir.samples(task.name).stats())  # no texts: a run's outputs are never all in memory
    if not samples:  # interrupted before its first batch: nothing to summarise yet
        return
    by_doc: dict[str, list[SampleStats]] = {}
    for s in sorted(samples, key=lambda s: s.doc_id):  # document order fixed: intervals never depend on finish order
        by_doc.setdefault(s.doc_id, []).append(s)
    k_max = max(len(v) for v in by_doc.values())
    per_doc = [document_values(task.metrics, sorted(v, key=lambda s: s.sample_idx), k_max, scorer)
               for v in by_doc.values()]
    truncated = 100.0 * sum(s.truncated for s in samples) / len(samples)
    entry = record.tasks[task.name]
    warnings = []
    if truncated > TRUNCATION_WARN_PCT:
        warnings.append(f"{task.name}: {truncated:.1f}% of samples were truncated (hit max_new_tokens or an "
                        "unclosed think block); raise --max-new-tokens")
        warn(warnings[-1])
    entry.n = len(by_doc)
    entry.n_samples = len(samples)
    entry.primary_metric = task.primary_metric
    entry.metrics = summaries(task.metrics, per_doc, task.score_infos(), seed)
    entry.truncated_rate = truncated
    entry.perf = aggregate_perf(samples, entry.gen_wall_s)
    context = speed_context(record.backend, record.backend_report, [s.timing_scope for s in samples])
    entry.perf = entry.perf.model_copy(update=context.model_dump())
    entry.cost = task_cost(samples, entry.perf, entry.metrics.get(task.primary_metric), task.score_infos(),
                           entry.energy, record.invocation)
    entry.warnings = warnings
