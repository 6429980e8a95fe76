"""bench.json: one `owb bench` sweep, its parameters, roofline and levels."""

from __future__ import annotations

from harness.records.base import (
    SCHEMA_VERSION,
    BackendInfo,
    EnergyReading,
    Environment,
    Percentiles,
    Record,
    TimingScope,
)


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
