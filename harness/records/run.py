"""run.json: one evaluation run. The layout follows Inspect AI's EvalLog tree: a run holds its invocation, model,
backend, environment and one result per task; each task result holds its config, metric summaries, perf and cost;
samples live one per line beside it."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import ConfigDict

from harness.config.base import DataSource, Mode
from harness.config.cards import ModelCard, Sampling
from harness.records.base import SCHEMA_VERSION, BackendInfo, EnergyReading, Environment, Percentiles, Record


class MetricSummary(Record):
    """A metric's mean over documents with its uncertainty, and how to read it."""

    value: float | None
    stderr: float | None
    ci95: tuple[float, float] | None
    score: str | None = None  # the per-sample score whose per-document mean this is (what paired tests pair)
    higher_is_better: bool | None = True  # None: a description (e.g. output length), not checked for drops
    scale: Literal["percent", "raw"] = "percent"


class PerfSummary(Record):
    """Token totals, throughput over generation wall time, and latency percentiles of a task."""

    wall_s: float
    prompt_tokens: int
    output_tokens: int
    reasoning_tokens: int
    answer_tokens: int
    output_tokens_per_s: float | None
    ttft_s: Percentiles | None
    tpot_s: Percentiles | None
    e2e_s: Percentiles | None
    timing_scope: str | list[str] | None  # one scope, or every scope seen when samples differ
    latency_scope: Literal["client", "engine", "batch"] | None = None  # whose clock the latencies are on
    throughput_scope: str | None = None  # what output_tokens_per_s measures: a closed batch, or the load it ran under
    prefix_caching: bool | None = None  # whether the engine reused cached prefixes (None: not known)


class DataProvenance(Record):
    """Where a task's documents came from, with hashes to tell data apart."""

    source: str
    location: str
    revision: str | None
    resolved_revision: str | None = None  # the commit the Hub cache held for `revision` (Hub data only)
    file_sha256: str | None
    docs_hash: str


class GenerationSettings(Record):
    """The decoding a task's samples were generated with."""

    temperature: float
    top_p: float
    top_k: int
    min_p: float
    repetition_penalty: float
    presence_penalty: float
    greedy: bool
    max_new_tokens: int
    samples_per_doc: int
    seed: int
    thinking_budget: int | None = None  # thinking cut at this many tokens, then the answer (None: no budget)

    @classmethod
    def of(cls, sampling: Sampling, max_new_tokens: int, samples_per_doc: int, seed: int,
           thinking_budget: int | None = None) -> GenerationSettings:
        """Settings from a sampling config and the run's budget, K, seed and thinking budget."""
        return cls(**sampling.model_dump(), greedy=sampling.greedy, max_new_tokens=max_new_tokens,
                   samples_per_doc=samples_per_doc, seed=seed, thinking_budget=thinking_budget)


class TaskConfig(Record):
    """What decides a task's samples: its spec, data, prompts and decoding (resume and check compare it)."""

    spec_hash: str
    data: DataProvenance
    prompt_hash: str
    generation: GenerationSettings


class TaskCost(Record):
    """What a task's answers cost: tokens, GPU energy and dollars (null where not measured or not priced)."""

    correct: float | None  # samples whose primary score is 1 (0/1-scored tasks only)
    output_tokens_per_sample: float | None  # None: no token was counted (replayed outputs)
    reasoning_tokens_per_sample: float | None
    answer_tokens_per_sample: float | None
    output_tokens_per_correct: float | None
    energy: EnergyReading | None  # board energy of the GPUs metered over the task's generation (NVML; null: none)
    joules_per_output_token: float | None
    joules_per_correct: float | None
    usd: float | None
    usd_per_1m_output_tokens: float | None
    usd_per_1k_correct: float | None
    pricing: str | None  # how the dollars were computed
    gpus: int | None = None  # GPUs priced (tensor x pipeline x data parallel) when priced by the GPU-hour


class TaskResult(Record):
    """One task of a run: its config while running, and its metrics, truncation and perf once summarised."""

    config: TaskConfig
    gen_wall_s: float = 0.0
    energy: EnergyReading | None = None  # summed over the sessions that generated this task (resumes)
    scorer: dict[str, Any] = {}
    n: int | None = None
    n_samples: int | None = None
    primary_metric: str | None = None
    metrics: dict[str, MetricSummary] = {}
    truncated_rate: float | None = None
    perf: PerfSummary | None = None
    cost: TaskCost | None = None
    warnings: list[str] = []


class RunOptions(Record):
    """Everything `owb run` was asked for; stored as run.json's `invocation` so --resume can rebuild the run."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    model: str = "tiny-qwen2"
    label: str | None = None  # names the run where no card is given (replayed outputs)
    backend: str = "hf"
    tasks: tuple[str, ...] = ("gsm8k", "math500")
    lmeval_include: tuple[str, ...] = ()  # directories of extra lm-evaluation-harness task YAMLs
    limit: int | None = None
    samples: int | None = None  # K per document (None: 1, or the protocol's per-task K)
    thinking: Mode | None = None
    greedy: bool = False
    max_new_tokens: int | None = None
    protocol: str | None = None  # a named evaluation protocol (e.g. r1), recorded so claims can match on it
    thinking_budget: tuple[int, ...] = ()  # each N runs every task as task@thinkN (thinking cut at N tokens)
    shard: tuple[int, int] | None = None  # (I, N): this run generates shard I of N of every task's documents
    unsafe_exec: bool = False  # run model-written code without a sandbox where none isolates (--unsafe-exec)
    gpu_hourly_usd: float | None = None  # price of the GPU(s) per hour: dollars from generation wall time
    price_in_usd: float | None = None  # API price per 1M prompt tokens
    price_out_usd: float | None = None  # API price per 1M output tokens
    data_source: DataSource = "auto"
    data_dir: str | None = None
    output: str = "runs"
    seed: int = 1234
    batch_size: int | None = None
    dtype: str | None = None
    tp: int | None = None
    pp: int | None = None
    dp: int | None = None
    distributed_backend: str | None = None
    backend_args: dict[str, Any] = {}
    compress: Literal["none", "gzip", "zstd"] = "none"  # how samples files are written (read transparently either way)


class ModelInfo(Record):
    """The model a run evaluated: its card (in full), where it was loaded from, and at which revision."""

    id: str
    card: ModelCard
    card_hash: str
    path: str | None
    revision: str | None
    resolved_revision: str | None = None  # the commit actually loaded from the Hub cache (Hub models only)
    dtype: str | None


class RunRecord(Record):
    """run.json: one evaluation run."""

    schema_version: int = SCHEMA_VERSION
    upgraded_from: int | None = None  # the schema a record was written with, when it was read from an older one
    run_id: str
    created_at: str
    updated_at: str
    rescored_at: str | None = None
    merged_from: list[str] = []  # the run ids of the shards `owb merge` joined into this run
    status: Literal["running", "complete"]
    invocation: RunOptions
    model: ModelInfo
    backend: BackendInfo
    backend_report: dict[str, Any] = {}  # what the engine observed in the run's last session (e.g. per replica)
    environment: Environment
    thinking: Mode
    seed: int
    samples_per_doc: int | None  # K, when every task has the same (each task's own is in its config)
    tasks: dict[str, TaskResult] = {}
