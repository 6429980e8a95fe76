"""The pipeline of `owb run`: documents -> prompts -> generate -> split -> score -> record, resumable."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from harness.backends.base import Backend, EngineRequest, Generation, GenRequest, backend_options, make_backend
from harness.config import ModelCard, Mode, load_card, stable_hash
from harness.data import Document, TaskData, default_data_dir
from harness.errors import ConfigError, DataError, Interrupted, StorageError
from harness.log import warn
from harness.metrics import document_values, summaries
from harness.perf import aggregate_perf, environment
from harness.pins import cached_commit
from harness.budget import generate_within_budget
from harness.cost import check_pricing, merge_energy, task_cost
from harness.energy import EnergyMeter
from harness.protocols import TaskPlan, plan_tasks, run_mode
from harness.prompts import Prompt
from harness.reasoning import split_output
from harness.records import (
    GenerationSettings,
    ModelInfo,
    RunOptions,
    RunRecord,
    SampleRecord,
    TaskConfig,
    TaskResult,
    sample_key,
)
from harness.results import RunDir
from harness.scorers.base import Scorer, ToScore
from harness.scorers.sandbox import unsafe_exec
from harness.tasks import Task, resolve_task

TRUNCATION_WARN_PCT = 5.0

Progress = Callable[[str, int], Callable[[int], None]]
"""progress(task, total) -> advance(n): how the CLI shows generation progress."""


def _no_progress(task: str, total: int) -> Callable[[int], None]:
    return lambda n: None


def request_seed(seed: int, key: str) -> int:
    """A distinct, reproducible 31-bit seed per sample key."""
    return int(hashlib.sha256(f"{seed}:{key}".encode()).hexdigest()[:8], 16) & 0x7FFFFFFF


def engine_request(opts: RunOptions) -> EngineRequest:
    """What the run asks of its engine: batch size, dtype, parallelism."""
    return EngineRequest(batch_size=opts.batch_size, dtype=opts.dtype, tp=opts.tp, pp=opts.pp, dp=opts.dp,
                         distributed_backend=opts.distributed_backend)


def run(opts: RunOptions, resume: Path | None = None, progress: Progress = _no_progress) -> RunDir:
    """Run (or finish) an evaluation and return its directory; finished samples are on disk at every moment."""
    if resume is not None:
        opts = RunDir(resume).read_run().invocation
    with unsafe_exec(opts.unsafe_exec):
        return _run(opts, resume, progress)


def _run(opts: RunOptions, resume: Path | None, progress: Progress) -> RunDir:
    record: RunRecord | None = None
    if resume is not None:
        run_dir = RunDir(resume)
        record = run_dir.read_run()
        opts, card = record.invocation, record.model.card
    else:
        card = load_card(opts.model)
    mode = run_mode(card, opts)
    check_pricing(opts)
    if opts.shard is not None and not 1 <= opts.shard[0] <= opts.shard[1]:
        raise ConfigError(f"--shard I/N needs 1 <= I <= N, not {opts.shard[0]}/{opts.shard[1]}")
    backend_options(opts.backend, card, engine_request(opts), opts.backend_args)  # a bad option fails before data
    plans = plan_tasks(card, mode, opts)
    data_dir = default_data_dir(Path(opts.data_dir) if opts.data_dir else None)
    datas = {p.task.name: p.task.documents(opts.data_source, data_dir, opts.limit) for p in plans}
    if opts.shard is not None:
        for name, data in datas.items():
            if len(data.docs) < opts.shard[1]:
                raise ConfigError(f"--shard {opts.shard[0]}/{opts.shard[1]}: task {name} has only {len(data.docs)} "
                                  f"documents, so some shards would get none; use at most {len(data.docs)} shards")
    backend = make_backend(opts.backend, card, engine_request(opts), opts.backend_args)
    scorers = Scorers()
    try:
        if record is None:
            run_dir, record = _new_run(opts, card, mode, backend, plans)
        with run_dir.writing():
            try:
                for plan in plans:
                    _run_task(plan, datas[plan.task.name], card, mode, opts, backend, run_dir, record, progress,
                              scorers.of(plan.task))
            except KeyboardInterrupt:
                raise Interrupted(str(run_dir.path)) from None
            except StorageError as exc:
                raise StorageError(f"{exc}; the samples written before are intact: free space, then "
                                   f"`owb run --resume {run_dir.path}`") from None
            record.backend_report = backend.report()
            for plan in plans:
                summarize_task(plan.task, run_dir, record, opts.seed, scorers.of(plan.task))
            record.status = "complete"
            record.updated_at = _now()
            run_dir.write_run(record)
    finally:
        scorers.close()
        backend.close()
    return run_dir


class Scorers:
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


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _new_run(opts: RunOptions, card: ModelCard, mode: Mode, backend: Backend,
             plans: list[TaskPlan]) -> tuple[RunDir, RunRecord]:
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    run_id = f"{stamp}-{card.id}-{opts.backend}-{stable_hash([opts.model_dump(mode='json'), time.time_ns()])[:6]}"
    run_dir = RunDir(Path(opts.output) / run_id)
    run_dir.create()
    described = backend.describe()
    card_json = card.model_dump(mode="json")
    record = RunRecord(
        run_id=run_id,
        created_at=_now(),
        updated_at=_now(),
        status="running",
        invocation=opts,
        model=ModelInfo(id=card.id, card=card, card_hash=stable_hash(card_json),
                        path=described.args.get("model_path"), revision=card.revision,
                        resolved_revision=_loaded_commit(card, described.args.get("model_path")),
                        dtype=described.args.get("dtype", card.dtype)),
        backend=described,
        environment=environment(),
        thinking=mode,
        seed=opts.seed,
        samples_per_doc=plans[0].samples if len({p.samples for p in plans}) == 1 else None,
    )
    run_dir.write_run(record)
    return run_dir, record


def _loaded_commit(card: ModelCard, path: str | None) -> str | None:
    """The commit of the card's Hub repo that the engine loaded (the Hub cache's snapshot for its revision)."""
    if card.hf_repo is None or path != card.hf_repo:
        return None
    return cached_commit(card.hf_repo, "model", card.revision)


def _checked_config(name: str, entry: TaskResult, config: TaskConfig, record: RunRecord) -> None:
    """A resumed task must produce the same samples: same data, prompts and decoding (and spec)."""
    if entry.config == config:
        return
    changed = [part for part in ("data", "prompt_hash", "generation", "spec_hash")
               if getattr(entry.config, part) != getattr(config, part)]
    if changed == ["spec_hash"] and record.upgraded_from == 1:
        # Schema 2 rewrote every task YAML's format (scorer references, metric specs): the hash moved, the task did not.
        warn(f"{name}: task spec format changed since schema 1 (data, prompts and decoding are unchanged)")
        entry.config = config
        return
    raise ConfigError(f"cannot resume: task {name} changed since the run started ({', '.join(changed)})")


def _run_task(plan: TaskPlan, data: TaskData, card: ModelCard, mode: Mode, opts: RunOptions, backend: Backend,
              run_dir: RunDir, record: RunRecord, progress: Progress, scorer: Scorer) -> None:
    task = plan.task
    run_dir.repair_samples(task.name)
    done = {s.key for s in run_dir.load_samples(task.name)}
    rendered = [(doc, task.prompt(doc, data, card, mode, backend)) for doc in data.docs]
    prompts = [prompt.text for _, prompt in rendered]  # every document's: shards of one task share the hash
    requests, docs = [], {}
    for doc, prompt in shard_of(rendered, opts.shard):
        for k in range(plan.samples):
            key = sample_key(task.name, doc.doc_id, k)
            docs[key] = (doc, k, prompt.text)
            if key not in done:
                requests.append(GenRequest(key, prompt.text, plan.sampling, plan.max_new_tokens,
                                           request_seed(opts.seed, key), prompt.stop))
    config = TaskConfig(spec_hash=task.spec_hash(), data=data.provenance(), prompt_hash=stable_hash(prompts),
                        generation=GenerationSettings.of(plan.sampling, plan.max_new_tokens, plan.samples, opts.seed,
                                                         plan.thinking_budget))
    entry = record.tasks.get(task.name)
    if entry is None:
        entry = record.tasks[task.name] = TaskResult(config=config)
    _checked_config(task.name, entry, config, record)
    run_dir.write_run(record)
    if not requests:
        return
    entry.scorer = scorer.describe()
    advance = progress(task.name, len(requests))
    before = entry.energy
    generations = (generate_within_budget(backend, requests, plan.thinking_budget, card) if plan.thinking_budget
                   else backend.generate(requests))
    with EnergyMeter() as meter:
        for batch, seconds in _timed_batches(generations, opts.batch_size or 16, backend.generates_in_background,
                                             meter):
            run_dir.append_samples(task.name, _to_records(batch, docs, card, scorer, backend))
            entry.gen_wall_s += seconds
            entry.energy = merge_energy(before, meter.reading())  # with each batch: a kill loses one batch's worth
            record.updated_at = _now()
            run_dir.write_run(record)
            advance(len(batch))
    entry.energy = merge_energy(before, meter.reading())


def shard_of(rendered: list[tuple[Document, Prompt]], shard: tuple[int, int] | None) -> list[tuple[Document, Prompt]]:
    """Shard I of N: documents sorted by prompt length (then id) and dealt round-robin, so every shard gets the same
    number of documents (within one) and of prompt characters (about); the same on every machine."""
    if shard is None:
        return rendered
    index, count = shard
    ordered = sorted(rendered, key=lambda pair: (len(pair[1].text), pair[0].doc_id))
    return [pair for position, pair in enumerate(ordered) if position % count == index - 1]


def _timed_batches(gens: Iterator[Generation], flush_every: int, background: bool,
                   meter: EnergyMeter) -> Iterator[tuple[list[Generation], float]]:
    """Group generations for scoring, with the seconds of generation behind each group: for an engine that goes on
    generating while owb scores (`generates_in_background`), the wall time since the previous group; otherwise the
    time spent waiting on the engine, with the energy meter paused while the group is scored."""
    batch: list[Generation] = []
    seconds = 0.0
    mark = time.perf_counter()
    while True:
        start = time.perf_counter()
        gen = next(gens, None)
        now = time.perf_counter()
        seconds += now - start
        if gen is not None:
            batch.append(gen)
        if batch and (gen is None or len(batch) >= flush_every):
            if background:
                seconds, mark = now - mark, now
            else:
                meter.pause()
            yield batch, seconds
            if not background:
                meter.resume()
            batch, seconds = [], 0.0
        if gen is None:
            return


@dataclass(frozen=True)
class _Graded:
    """What splitting and scoring decide about one raw output."""

    reasoning: str
    answer: str
    extracted: Any
    target: Any
    scores: dict[str, float]
    unclosed: bool
    extra: dict[str, Any]


DocIndex = dict[str, tuple[Document, int, str]]
"""sample key -> (document, sample index, rendered prompt)"""


def _grade(texts: Sequence[tuple[str, str, str]], docs: DocIndex, card: ModelCard, scorer: Scorer) -> list[_Graded]:
    """Split and score (key, prompt, raw output) triples."""
    splits = [split_output(text, card, prompt) for _, prompt, text in texts]
    items = [ToScore(sp.answer, docs[key][0].target, docs[key][0].fields, sp.unclosed)
             for (key, _, _), sp in zip(texts, splits, strict=True)]
    return [
        _Graded(sp.reasoning, sp.answer, scored.extracted, docs[key][0].target, scored.scores, sp.unclosed,
                scored.extra)
        for (key, _, _), sp, scored in zip(texts, splits, scorer.score_batch(items), strict=True)
    ]


def _to_records(batch: list[Generation], docs: DocIndex, card: ModelCard, scorer: Scorer,
                backend: Backend) -> list[SampleRecord]:
    records = []
    graded_batch = _grade([(g.key, docs[g.key][2], g.text) for g in batch], docs, card, scorer)
    for gen, graded in zip(batch, graded_batch, strict=True):
        doc, k, prompt = docs[gen.key]
        reasoning_tokens = (gen.reasoning_tokens if gen.reasoning_tokens is not None
                            else backend.count_tokens(graded.reasoning) if graded.reasoning else 0)
        t = gen.timings
        records.append(SampleRecord(
            key=gen.key, doc_id=doc.doc_id, sample_idx=k, prompt=prompt, raw_output=gen.text,
            reasoning=graded.reasoning, answer=graded.answer, extracted=graded.extracted, target=graded.target,
            scores=graded.scores, finish_reason=gen.finish_reason,
            truncated=graded.unclosed or gen.finish_reason == "length",
            prompt_tokens=gen.prompt_tokens, output_tokens=gen.output_tokens, reasoning_tokens=reasoning_tokens,
            answer_tokens=max(gen.output_tokens - reasoning_tokens, 0) if gen.output_tokens else 0,
            ttft_s=t.ttft_s, tpot_s=t.tpot_s, e2e_s=t.e2e_s, queue_s=t.queue_s, timing_scope=t.scope,
            **graded.extra,
        ))
    return records


def rescore(path: Path) -> RunDir:
    """Recompute every sample's split and scores from its stored raw output (no generation), then the metrics.

    Token counts and timings are kept as generated."""
    run_dir = RunDir(path)
    with run_dir.writing(), unsafe_exec(run_dir.read_run().invocation.unsafe_exec):
        return _rescore(run_dir)


def _rescore(run_dir: RunDir) -> RunDir:
    record = run_dir.read_run()
    opts, card = record.invocation, record.model.card
    data_dir = default_data_dir(Path(opts.data_dir) if opts.data_dir else None)
    tasks = [resolve_task(name, opts.lmeval_include) for name in record.tasks]
    scorers = Scorers()
    try:
        _rescore_tasks(run_dir, record, tasks, data_dir, card, scorers)
        for task in tasks:
            summarize_task(task, run_dir, record, opts.seed, scorers.of(task))
    finally:
        scorers.close()
    record.rescored_at = _now()
    run_dir.write_run(record)
    return run_dir


def _rescore_tasks(run_dir: RunDir, record: RunRecord, tasks: list[Task], data_dir: Path | None, card: ModelCard,
                   scorers: Scorers) -> None:
    opts = record.invocation
    for task in tasks:
        data = task.documents(opts.data_source, data_dir, opts.limit)
        entry = record.tasks[task.name]
        if data.provenance().docs_hash != entry.config.data.docs_hash:
            raise DataError(f"cannot rescore {task.name}: its documents changed since the run")
        k = entry.config.generation.samples_per_doc
        docs = {sample_key(task.name, d.doc_id, i): (d, i, "") for d in data.docs for i in range(k)}
        samples = run_dir.load_samples(task.name)
        scorer = scorers.of(task)
        graded = _grade([(s.key, s.prompt, s.raw_output) for s in samples], docs, card, scorer)
        entry.scorer = scorer.describe()
        rescored = [
            old.model_copy(update={
                "reasoning": new.reasoning, "answer": new.answer, "extracted": new.extracted, "target": new.target,
                "scores": new.scores, "truncated": new.unclosed or old.finish_reason == "length", **new.extra})
            for old, new in zip(samples, graded, strict=True)
        ]
        run_dir.rewrite_samples(task.name, rescored)


def summarize_task(task: Task, run_dir: RunDir, record: RunRecord, seed: int, scorer: Scorer) -> None:
    """Metrics with CIs over documents, truncation and perf, from every sample on disk, into the task's entry."""
    samples = run_dir.load_samples(task.name)
    if not samples:  # interrupted before its first batch: nothing to summarise yet
        return
    by_doc: dict[str, list[SampleRecord]] = {}
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
    entry.cost = task_cost(samples, entry.perf, entry.metrics.get(task.primary_metric), task.score_infos(),
                           entry.energy, record.invocation)
    entry.warnings = warnings
