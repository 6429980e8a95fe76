"""bench.json: one `owb bench`, its parameters, the GPUs it metered, its roofline and levels. A level holds
`vllm bench serve`'s result keys and units (`duration`, `completed`, `output_throughput`, `mean_ttft_ms`,
`p99_itl_ms`, ... and the per-request arrays `ttfts`, `itls`, `latencies`, ...), so one script reads both tools'
files; every level says the scope of its figures."""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import ConfigDict, model_validator

from harness.records.base import SCHEMA_VERSION, BackendInfo, EnergyReading, Environment, Record

Scope = Literal["client", "engine", "batch"]  # HTTP client clock | the engine's own clocks | a batch's shared timings
Mode = Literal["load", "waves"]  # vLLM's semaphore and arrivals | batches with a barrier (`vllm bench latency`)
Rate = float | Literal["inf"]  # requests per second, as vLLM writes it
LATENCIES = ("ttft", "ttft_content", "tpot", "itl", "e2el", "client_queue_time")
STAT_KEY = re.compile(rf"^(mean|median|std|p\d+(?:\.\d+)?)_({'|'.join(LATENCIES)})_ms$")
TokenSource = Literal["usage", "retokenized", "engine"]


class GPUEnergy(Record):
    """One GPU over a measured span: its energy, power, clocks, throttling and memory (NVML)."""

    index: int  # NVML's (PCI order)
    uuid: str
    name: str | None = None
    joules: float
    method: Literal["energy_counter", "power_samples"]
    peak_watts: float | None = None
    idle_watts: float | None = None  # its draw with the engine idle, measured before the levels
    sm_clock_mhz: float | None = None  # mean of the samples
    mem_clock_mhz: float | None = None
    power_limit_w: float | None = None
    throttle_reasons: list[str] = []  # every clock-event reason seen in the samples (idle excluded)
    peak_memory_bytes: int | None = None  # device-wide memory in use (all processes), the largest sample
    process_memory_bytes: dict[str, int] = {}  # pid -> its largest use, where NVML reports processes


class MeteredEnergy(EnergyReading):
    """The energy of every GPU metered, summed (joules, memory, limits), each GPU's own reading, and the idle
    baseline: net joules are what the span drew above idle."""

    gpus: list[GPUEnergy] = []
    idle_watts: float | None = None  # summed over the GPUs
    net_joules: float | None = None  # joules - idle_watts x seconds


class BenchLevel(Record):
    """One level of `owb bench`: the load, then vLLM's aggregates and per-request arrays. Latency statistics are
    `{mean,median,std,pN}_{ttft,ttft_content,tpot,itl,e2el,client_queue_time}_ms` keys, as vLLM writes them."""

    model_config = ConfigDict(extra="allow")

    mode: Mode = "load"
    max_concurrency: int | None  # requests in flight (None: no limit); the wave size in waves mode
    request_rate: Rate = "inf"
    burstiness: float = 1.0
    scope: Scope
    duration: float  # first dispatch to last completion (energy meter and warm-up outside it)
    completed: int
    failed: int = 0
    total_input_tokens: int
    total_output_tokens: int
    request_throughput: float  # completed / duration
    request_goodput: float | None = None  # requests meeting every objective / duration (null without objectives)
    output_throughput: float  # output tokens / duration
    total_token_throughput: float  # (input + output tokens) / duration
    input_lens: list[int] = []  # per request, in the order sent (failed ones included, as vLLM)
    output_lens: list[int] = []
    output_len_sources: list[TokenSource] = []  # usage, re-tokenised text, or the engine's own count
    ttfts: list[float | None] = []  # seconds, first event with choices
    ttfts_content: list[float | None] = []  # seconds, first event with text
    itls: list[list[float]] = []  # seconds, gaps between choice events (per chunk)
    latencies: list[float | None] = []  # seconds, E2EL
    start_times: list[float | None] = []  # perf_counter seconds at the send
    queue_times: list[float | None] = []  # seconds, client queue (arrival to send)
    errors: list[str] = []  # "" for a completed request
    energy: MeteredEnergy | None = None  # every metered GPU over the level (null: none metered)
    joules_per_output_token: float | None = None  # gross
    net_joules_per_output_token: float | None = None  # above the idle baseline
    usd: float | None = None  # duration x GPUs x the hourly price per GPU
    usd_per_1m_output_tokens: float | None = None

    @model_validator(mode="after")
    def _stat_keys(self) -> BenchLevel:
        for key, value in (self.model_extra or {}).items():
            if not STAT_KEY.match(key) or not (value is None or isinstance(value, (int, float))):
                raise ValueError(f"unknown field '{key}'")
        return self

    def stat(self, name: str) -> float | None:
        """A latency statistic by vLLM's key, e.g. `p99_ttft_ms` (None where it was not measured)."""
        if not STAT_KEY.match(name):
            raise KeyError(name)
        value = (self.model_extra or {}).get(name)
        return None if value is None else float(value)

    @property
    def concurrency(self) -> int | None:
        """The level's requests in flight (bench.json before the load generator called it `concurrency`)."""
        return self.max_concurrency


class GPUBandwidth(Record):
    """Measured copy bandwidth of one GPU used by the engine."""

    device: str  # cuda:N as the engine's process sees it, or cpu
    gb_s: float


class Roofline(Record):
    """Measured memory bandwidth, the batch-1 decode limit it implies (per tensor-parallel rank), and the measured
    batch-1 decode."""

    memory: str
    memory_bandwidth_gb_s: float  # the slowest device used: (read + write) / time of a device-to-device copy
    weight_dtype_bytes: int  # bytes per element of most of the weights
    decode_weight_bytes: int  # weights read per token (MoE: shared parts + top-k routed experts), all ranks
    decode_kv_bytes: int | None = None  # KV cache read per token at `context_tokens`, all ranks (schema 1: absent)
    context_tokens: int | None = None  # input + half the output: the mean context of a decode step
    batch1_decode_limit_tok_s: float
    batch1_decode_measured_tok_s: float | None
    batch1_share_of_limit: float | None
    tensor_parallel_size: int = 1
    pipeline_parallel_size: int = 1
    rank_weight_bytes: int | None = None  # what one tensor-parallel rank reads per token
    rank_kv_bytes: int | None = None
    weight_bytes_source: str | None = None  # "checkpoint" (real dtypes) or "config" (one dtype)
    weight_dtypes: dict[str, int] = {}  # dtype -> decode bytes of that dtype
    kv_dtype_bytes: int | None = None
    bandwidths: list[GPUBandwidth] = []


class BenchParams(Record):
    """What `owb bench` was asked for: the workload, the load shapes, warm-up, objectives and statistics."""

    input_len: int | None  # exact prompt tokens (None: a run's prompts, --from-run)
    output_len: int | None  # exact output tokens, EOS ignored (None: each request the run's length)
    num_prompts: int
    concurrency: list[int]  # the levels' requests in flight (0: no limit)
    ignore_eos: bool
    warmup: str
    seed: int
    mode: Mode = "load"
    request_rates: list[Rate] = ["inf"]
    burstiness: float = 1.0
    num_warmups: int | None = None
    temperature: float = 0.0
    goodput: str | None = None  # the objectives, "ttft:MS tpot:MS e2el:MS"
    metric_percentiles: list[float] = [50.0, 90.0, 99.0]
    from_run: str | None = None  # the run whose prompts and output lengths are the workload
    gpu_hourly_usd: float | None = None  # price of one GPU per hour


class GPUDevice(Record):
    """A GPU of this machine, as NVML lists it."""

    index: int
    uuid: str
    name: str
    memory_bytes: int


class SweepProbe(Record):
    """One point of a sweep: the request rate or concurrency tried, the share of requests meeting every objective
    in each repeat, and whether their median reached the target."""

    value: float
    attainment: list[float]
    met: bool


class SweepResult(Record):
    """The highest request rate (or concurrency) whose requests met the objectives, found by bisection."""

    over: Literal["request_rate", "max_concurrency"]
    goodput: str
    target_attainment: float  # the share of requests that must meet every objective
    repeats: int
    best: float | None  # None: not even the lowest point met them
    probes: list[SweepProbe]


class BenchCost(Record):
    """Dollars of the GPUs: the hourly price of one, how many the engine used, and the start-up on its own."""

    gpu_hourly_usd: float
    gpus: int
    startup_s: float | None
    startup_usd: float | None


class BenchModel(Record):
    """The model a bench ran: card, path, and whether its weights were random."""

    id: str
    card_hash: str
    path: str
    random_weights: bool


class BenchRecord(Record):
    """bench.json: one `owb bench`."""

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
    gpus: list[GPUDevice] = []  # every GPU NVML lists
    metered_gpus: list[str] = []  # the UUIDs whose energy the levels hold (the engine's, or --energy-gpus)
    cuda_visible_devices: str | None = None
    prefix_caching: bool | None = None  # off for engines owb starts; a server's, from its /metrics
    startup_s: float | None = None  # starting the engine (loading the model) or connecting to the server
    cost: BenchCost | None = None
    sweep: SweepResult | None = None

    @model_validator(mode="before")
    @classmethod
    def _levels_before_the_load_generator(cls, data: Any) -> Any:
        """bench.json written before the load generator (waves, seconds, owb's names) in today's fields."""
        if not isinstance(data, dict) or not any("wall_s" in lvl for lvl in data.get("levels") or []):
            return data
        served = (data.get("backend") or {}).get("name") == "openai"
        params = {"mode": "waves", **(data.get("params") or {})}
        return {**data, "params": params, "levels": [_old_level(lvl, served) for lvl in data["levels"]]}


def _old_level(lvl: dict[str, Any], served: bool) -> dict[str, Any]:
    """A level as owb wrote it before the load generator: waves, owb's names, latencies in seconds."""
    scope = lvl.get("timing_scope")
    level: dict[str, Any] = {
        "mode": "waves", "max_concurrency": lvl["concurrency"],
        "scope": "batch" if scope == "batch" else "client" if served else "engine",
        "duration": lvl["wall_s"], "completed": lvl["requests"], "total_input_tokens": lvl["prompt_tokens"],
        "total_output_tokens": lvl["output_tokens"], "request_throughput": lvl["request_throughput"],
        "output_throughput": lvl["output_tokens_per_s"], "total_token_throughput": lvl["total_tokens_per_s"],
        "energy": lvl.get("energy"), "joules_per_output_token": lvl.get("joules_per_output_token")}
    for old, new in (("ttft_s", "ttft"), ("tpot_s", "tpot"), ("e2e_s", "e2el"), ("itl_s", "itl")):
        stats = lvl.get(old) or {}
        for key, name in (("mean", "mean"), ("p50", "median"), ("p50", "p50"), ("p90", "p90"), ("p99", "p99")):
            if key in stats:
                level[f"{name}_{new}_ms"] = 1000 * stats[key]
    return level
