"""The pipeline of `owb run`: documents -> prompts -> generate -> split -> score -> record, resumable; every finished
sample is on disk before the next batch is scored."""

from __future__ import annotations

import hashlib
import shutil
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from harness.config.base import Mode
from harness.config.cards import ModelCard, load_card, unnamed_card
from harness.core.errors import ConfigError, Interrupted, StorageError
from harness.core.hashing import stable_hash
from harness.core.hub import cached_commit
from harness.core.log import warn
from harness.engines.base import Backend, EngineRequest, Generation, GenRequest
from harness.engines.registry import backend_class, backend_options, make_backend
from harness.measure.cost import check_pricing
from harness.measure.energy import EnergyMeter, engine_gpus, merge_energy
from harness.measure.environment import environment
from harness.pipeline.budget import generate_within_budget
from harness.pipeline.grade import Slot, to_records
from harness.pipeline.plan import TaskPlan, plan_tasks, run_mode
from harness.pipeline.summarize import ScorerPool, summarize_task
from harness.records.base import EnergyReading, new_id, utc_now
from harness.records.run import GenerationSettings, ModelInfo, RunOptions, RunRecord, TaskConfig, TaskResult
from harness.records.sample import SampleRecord, sample_key
from harness.records.store import RunDir
from harness.sandbox.base import unsafe_exec
from harness.tasks.data import Document, TaskData, default_data_dir
from harness.tasks.prompts import Prompt

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


@dataclass(frozen=True)
class Prepared:
    """What a run needs before its engine starts, all checked: card, mode, plans and every task's documents."""

    opts: RunOptions
    card: ModelCard
    mode: Mode
    plans: list[TaskPlan]
    datas: dict[str, TaskData]
    resumed: tuple[RunDir, RunRecord] | None  # the run being resumed, and its record


def _card(opts: RunOptions) -> ModelCard:
    """The run's card: --model, or for a backend that runs no model (replay) a card named by --label."""
    if opts.model:
        return load_card(opts.model)
    if backend_class(opts.backend).needs_card:
        raise ConfigError(f"--model is required with --backend {opts.backend} (`owb list models` shows the cards)")
    return unnamed_card(opts.label or opts.backend)


def prepare(opts: RunOptions, resume: Path | None) -> Prepared:
    """Everything a bad option, card, task or data path can fail, before any engine starts."""
    resumed = (RunDir(resume, opts.compress), RunDir(resume).read_run()) if resume is not None else None
    card = resumed[1].model.card if resumed is not None else _card(opts)
    mode = run_mode(card, opts)
    check_pricing(opts)
    if opts.shard is not None and not 1 <= opts.shard[0] <= opts.shard[1]:
        raise ConfigError(f"--shard I/N needs 1 <= I <= N, not {opts.shard[0]}/{opts.shard[1]}")
    plans = plan_tasks(card, mode, opts)  # task names are checked before an engine's packages are imported
    backend_options(opts.backend, card, engine_request(opts), opts.backend_args)  # a bad option fails before data
    data_dir = default_data_dir(Path(opts.data_dir) if opts.data_dir else None)
    datas = {p.task.name: p.task.documents(opts.data_source, data_dir, opts.limit) for p in plans}
    if opts.shard is not None:
        for name, data in datas.items():
            if len(data.docs) < opts.shard[1]:
                raise ConfigError(f"--shard {opts.shard[0]}/{opts.shard[1]}: task {name} has only {len(data.docs)} "
                                  f"documents, so some shards would get none; use at most {len(data.docs)} shards")
    return Prepared(opts, card, mode, plans, datas, resumed)


def _run(opts: RunOptions, resume: Path | None, progress: Progress) -> RunDir:
    ready = prepare(opts, resume)
    backend = make_backend(opts.backend, ready.card, engine_request(opts), opts.backend_args)
    scorers = ScorerPool()
    try:
        run_dir, record = ready.resumed or _new_run(ready, backend)
        session = RunSession(opts, ready.card, ready.mode, backend, run_dir, record, scorers, progress)
        try:
            with run_dir.writing():
                session.generate_all(ready.plans, ready.datas)
                session.finish(ready.plans)
        except Exception:
            if ready.resumed is None:
                _discard_if_empty(run_dir, ready.plans)
            raise
    finally:
        scorers.close()
        backend.close()
    return run_dir


def _discard_if_empty(run_dir: RunDir, plans: list[TaskPlan]) -> None:
    """A new run that failed before its first sample holds nothing to resume: its directory is removed, so no
    `running` run with nothing in it is left behind."""
    if not any(run_dir.samples(plan.task.name).exists() for plan in plans):
        shutil.rmtree(run_dir.path, ignore_errors=True)


def _new_run(ready: Prepared, backend: Backend) -> tuple[RunDir, RunRecord]:
    opts, card, plans = ready.opts, ready.card, ready.plans
    run_id = new_id(card.id, opts.backend, stable_hash([opts.model_dump(mode="json"), time.time_ns()])[:6])
    run_dir = RunDir(Path(opts.output) / run_id, opts.compress)
    run_dir.create()
    described = backend.describe()
    now = utc_now()
    record = RunRecord(
        run_id=run_id,
        created_at=now,
        updated_at=now,
        status="running",
        invocation=opts,
        model=ModelInfo(id=card.id, card=card, card_hash=stable_hash(card.model_dump(mode="json")),
                        path=described.args.get("model_path"), revision=card.revision,
                        resolved_revision=_loaded_commit(card, described.args.get("model_path")),
                        dtype=described.args.get("dtype", card.dtype)),
        backend=described,
        environment=environment(),
        thinking=ready.mode,
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


@dataclass
class RunSession:
    """One session of a run (new, or resumed): the engine, the run directory and record it writes, the scorers of
    its tasks and how progress is shown."""

    opts: RunOptions
    card: ModelCard
    mode: Mode
    backend: Backend
    run_dir: RunDir
    record: RunRecord
    scorers: ScorerPool
    progress: Progress

    def generate_all(self, plans: list[TaskPlan], datas: dict[str, TaskData]) -> None:
        """Every plan's missing samples; an interrupt or a full disk says how to finish the run."""
        try:
            for plan in plans:
                self.run_task(plan, datas[plan.task.name])
        except KeyboardInterrupt:
            raise Interrupted(str(self.run_dir.path)) from None
        except StorageError as exc:
            raise StorageError(f"{exc}; the samples written before are intact: free space, then "
                               f"`owb run --resume {self.run_dir.path}`") from None

    def finish(self, plans: list[TaskPlan]) -> None:
        """Summarise every task from its samples on disk and mark the run complete."""
        self.record.backend_report = self.backend.report()
        for plan in plans:
            summarize_task(plan.task, self.run_dir, self.record, self.opts.seed, self.scorers.of(plan.task))
        self.record.status = "complete"
        self.record.updated_at = utc_now()
        self.run_dir.write_run(self.record)

    def run_task(self, plan: TaskPlan, data: TaskData) -> None:
        """Generate, grade and append the samples of one task that are not on disk yet."""
        self.run_dir.samples(plan.task.name).repair()
        requests, slots, config = self._requests(plan, data)
        entry = self.record.tasks.get(plan.task.name)
        if entry is None:
            entry = self.record.tasks[plan.task.name] = TaskResult(config=config)
        _checked_config(plan.task.name, entry, config, self.record)
        self.run_dir.write_run(self.record)
        if requests:
            self._generate(plan, entry, requests, slots)

    def _requests(self, plan: TaskPlan, data: TaskData) -> tuple[list[GenRequest], dict[str, Slot], TaskConfig]:
        """The requests of the samples not on disk, the slot of every sample of this shard, and the task's config."""
        task, opts = plan.task, self.opts
        done = self.run_dir.samples(task.name).keys()
        rendered = [(doc, task.prompt(doc, data, self.card, self.mode, self.backend)) for doc in data.docs]
        requests, slots = [], {}
        for doc, prompt in shard_of(rendered, opts.shard):
            for k in range(plan.samples):
                key = sample_key(task.name, doc.doc_id, k)
                slots[key] = Slot(doc, k, prompt.text)
                if key not in done:
                    requests.append(GenRequest(key, prompt.text, plan.sampling, plan.max_new_tokens,
                                               request_seed(opts.seed, key), prompt.stop))
        config = TaskConfig(spec_hash=task.spec_hash(), data=data.provenance(),
                            prompt_hash=stable_hash([prompt.text for _, prompt in rendered]),  # shards share it
                            generation=GenerationSettings.of(plan.sampling, plan.max_new_tokens, plan.samples,
                                                             opts.seed, plan.thinking_budget))
        return requests, slots, config

    def _generate(self, plan: TaskPlan, entry: TaskResult, requests: list[GenRequest], slots: dict[str, Slot]) -> None:
        """Generate the requests; each batch is graded on a second thread while the next one generates, then
        appended and recorded (time, energy) in order."""
        scorer, backend = self.scorers.of(plan.task), self.backend
        entry.scorer = scorer.describe()
        generations = (generate_within_budget(backend, requests, plan.thinking_budget, self.card)
                       if plan.thinking_budget else backend.generate(requests))
        progress = Recorded(plan.task.name, entry, entry.energy, self.progress(plan.task.name, len(requests)))
        with EnergyMeter(engine_gpus(backend, engine_request(self.opts))) as meter, \
                ThreadPoolExecutor(max_workers=1, thread_name_prefix="owb-grade") as grader:
            pending: tuple[Future[list[SampleRecord]], float] | None = None
            for batch, seconds in _timed_batches(generations, self.opts.batch_size or 16,
                                                 backend.generates_in_background, meter):
                graded = grader.submit(to_records, batch, slots, self.card, scorer, backend)
                if pending is not None:
                    self._record(progress, *pending, meter)
                pending = graded, seconds
            if pending is not None:
                self._record(progress, *pending, meter)
        entry.energy = merge_energy(progress.energy_before, meter.reading())

    def _record(self, progress: Recorded, graded: Future[list[SampleRecord]], seconds: float,
                meter: EnergyMeter) -> None:
        """Append a graded batch and record its generation time and the energy so far (a kill loses one batch)."""
        records = graded.result()
        self.run_dir.append_samples(progress.task, records)
        if self.backend.measures_speed:  # replayed outputs took no generation time: speed stays unknown
            progress.entry.gen_wall_s += seconds
        progress.entry.energy = merge_energy(progress.energy_before, meter.reading())
        self.record.updated_at = utc_now()
        self.run_dir.write_run(self.record)
        progress.advance(len(records))


@dataclass(frozen=True)
class Recorded:
    """Where a task's finished batches are recorded: its entry in run.json, the energy of earlier sessions (resumes)
    and the progress bar."""

    task: str
    entry: TaskResult
    energy_before: EnergyReading | None
    advance: Callable[[int], None]


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
