"""`owb rescore`: every stored raw output split and scored again with the current code, then the metrics; nothing is
generated."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from harness.config.cards import ModelCard
from harness.core.errors import ConfigError, DataError
from harness.core.iteration import batched
from harness.core.log import warn
from harness.pipeline.grade import Slot, grade
from harness.pipeline.plan import resolve_task
from harness.pipeline.summarize import ScorerPool, summarize_task
from harness.records.base import utc_now
from harness.records.run import RunRecord
from harness.records.sample import SampleRecord
from harness.records.store import RunDir
from harness.sandbox.base import unsafe_exec
from harness.scoring.base import Scorer
from harness.tasks.base import Task
from harness.tasks.data import Document, default_data_dir

RESCORE_BATCH = 64  # samples graded at once


def rescore(path: Path) -> RunDir:
    """Recompute every sample's split and scores from its stored raw output (no generation), then the metrics.

    Token counts and timings are kept as generated."""
    run_dir = RunDir(path)  # a rewritten samples file keeps its compression
    record = run_dir.read_run()
    if not any(run_dir.samples(task).exists() for task in record.tasks):
        raise ConfigError(f"run {path} has no samples to rescore (status {record.status})"
                          + ("" if record.status == "complete" else f"; finish it with `owb run --resume {path}`"))
    if record.status != "complete":
        warn(f"run {path} is not complete: rescoring the samples on disk; `owb run --resume {path}` finishes it")
    with run_dir.writing(), unsafe_exec(record.invocation.unsafe_exec):
        return _rescore(run_dir)


def _rescore(run_dir: RunDir) -> RunDir:
    record = run_dir.read_run()
    opts, card = record.invocation, record.model.card
    data_dir = default_data_dir(Path(opts.data_dir) if opts.data_dir else None)
    tasks = [resolve_task(name, opts.lmeval_include) for name in record.tasks]
    scorers = ScorerPool()
    try:
        _rescore_tasks(run_dir, record, tasks, data_dir, card, scorers)
        for task in tasks:
            summarize_task(task, run_dir, record, opts.seed, scorers.of(task))
    finally:
        scorers.close()
    record.rescored_at = utc_now()
    run_dir.write_run(record)
    return run_dir


def _rescore_tasks(run_dir: RunDir, record: RunRecord, tasks: list[Task], data_dir: Path | None, card: ModelCard,
                   scorers: ScorerPool) -> None:
    opts = record.invocation
    for task in tasks:
        data = task.documents(opts.data_source, data_dir, opts.limit)
        entry = record.tasks[task.name]
        if data.provenance().docs_hash != entry.config.data.docs_hash:
            raise DataError(f"cannot rescore {task.name}: its documents changed since the run")
        scorer = scorers.of(task)
        entry.scorer = scorer.describe()
        samples = run_dir.samples(task.name)
        samples.rewrite(_regraded(samples.records(), {d.doc_id: d for d in data.docs}, card, scorer))


def _regraded(samples: Iterator[SampleRecord], docs: dict[str, Document], card: ModelCard,
              scorer: Scorer) -> Iterator[SampleRecord]:
    """The samples split and scored again, a batch at a time (a run's texts are never all in memory)."""
    for batch in batched(samples, RESCORE_BATCH):
        graded = grade([(Slot(docs[s.doc_id], s.sample_idx, s.prompt), s.raw_output) for s in batch], card, scorer)
        for old, new in zip(batch, graded, strict=True):
            yield old.model_copy(update={**new.fields(),
                                         "truncated": new.split.unclosed or old.finish_reason == "length"})
