"""suite.json as typed records: a key is present exactly when its field was set (written with exclude_unset), so a
step stopped by its time limit leaves out what it did not reach; `Recorder` rewrites a record's file atomically."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from harness.records.base import Environment
from harness.records.store import atomic_write_text

SCHEMA = "owb-gpu-suite/1"


class Model(BaseModel):
    """Base of the suite's records: unknown fields are an error."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class DecodeBytes(Model):
    """Bytes one batch-1 decode step reads at a context length (harness.measure.roofline.decode_bytes)."""

    weights: int
    kv: int
    context: int
    dtype: str


class PathResult(Model):
    """One measured path: median seconds, output tokens and tokens/s (or why not), and figures derived from them."""

    wall_s: float | None = None
    runs_s: list[float] | None = None
    output_tokens: int | None = None
    output_tokens_per_s: float | None = None
    warmup_s: float | None = None
    ttft_p50_s: float | None = None  # owb's per-request medians, where the path returned owb Generations
    tpot_p50_s: float | None = None
    fast_path_kept: bool | None = None  # an owb fast path switches itself off when it fails
    warnings: list[str] | None = None
    speedup_vs_plain: float | None = None  # tokens/s over plain `generate`'s
    share_of_limit: float | None = None  # tokens/s over the batch-1 decode limit
    error: str | None = None
    skipped: str | None = None

    def measured(self) -> bool:
        """Whether the path has a throughput (neither an error nor skipped)."""
        return self.output_tokens_per_s is not None


class HfPaths(Model):
    """The hf paths of one scope, in the order they run."""

    plain_generate: PathResult | None = None
    owb_static: PathResult | None = None
    owb_continuous: PathResult | None = None

    def paths(self) -> list[tuple[str, PathResult]]:
        """The paths measured so far, in order."""
        found = (("plain_generate", self.plain_generate), ("owb_static", self.owb_static),
                 ("owb_continuous", self.owb_continuous))
        return [(name, path) for name, path in found if path is not None]


class HfBatch1(HfPaths):
    """The hf paths on the first prompt alone."""


class BatchShape(Model):
    """All prompts, `batch` at a time, each `output_len` tokens."""

    batch: int
    prompts: int
    output_len: int


class HfBatched(HfPaths, BatchShape):
    """The hf paths over all prompts, `batch` at a time (the shape's fields first, as suite.json has them)."""


class HfResult(Model):
    """Plain `generate` beside owb's hf fast paths on one model shape."""

    card: str
    device: str
    dtype: str
    load_s: float
    prompt_len: int
    decode_bytes: DecodeBytes
    batch1: HfBatch1 | None = None
    batched: HfBatched | None = None
    batch1_limit_tok_s: float | None = None  # bandwidth / decode bytes


class VllmScope(Model):
    """Raw vLLM beside owb's vLLM backend, in one scope (all prompts, or one alone)."""

    raw: PathResult
    owb: PathResult
    requests: int
    owb_overhead_pct: float

    def paths(self) -> list[tuple[str, PathResult]]:
        """The two paths, raw first."""
        return [("raw", self.raw), ("owb", self.owb)]


class VllmResult(Model):
    """Raw vLLM beside owb's vLLM backend on one model shape."""

    card: str
    engine_start_s: float
    prompt_len: int
    engine_args: dict[str, Any]
    decode_bytes: DecodeBytes
    batched: VllmScope | None = None
    batch1: VllmScope | None = None
    batch1_limit_tok_s: float | None = None


class Bandwidth(Model):
    """Measured device memory bandwidth."""

    device: str
    bytes_per_s: float
    gb_s: float
    method: str


class OwbRunResult(Model):
    """A complete `owb run`, timed from process start to exit, with its own perf summary."""

    model: str
    weights_write_s: float
    command: list[str] | None = None
    exit_code: int | None = None
    wall_s: float | None = None
    error: str | None = None
    run_status: str | None = None
    n: int | None = None
    prompt_tokens: int | None = None
    output_tokens: int | None = None
    engine_wall_s: float | None = None
    engine_output_tokens_per_s: float | None = None
    end_to_end_output_tokens_per_s: float | None = None
    truncated_rate_pct: float | None = None


class LmevalInfo(Model):
    """lm-eval's version and engine, and whether it tokenises the prompts as the suite did."""

    lm_eval: str
    engine_start_s: float | None = None  # vllm
    engine_args: dict[str, Any] | None = None  # vllm
    batch: int | None = None  # hf
    prompt_tokens_match: bool


class LmevalResult(PathResult, LmevalInfo):
    """lm-eval's `generate_until` through one of its backends: its info, then the path's figures (in that order)."""

    vs_raw_vllm: float | None = None
    vs_plain_generate: float | None = None


class Lmeval(Model):
    """lm-eval's two backends."""

    vllm: LmevalResult | None = None
    hf: LmevalResult | None = None


class FirstDifference(Model):
    """Where a path's tokens first differ from the reference."""

    request: str
    position: int
    got: list[int]
    want: list[int]
    got_eos: bool


class SmokeCheck(Model):
    """One path's tokens against the reference (or the error it raised)."""

    identical: bool | None = None
    mismatched: list[str] | None = None
    fast_path_kept: bool | None = None
    warnings: list[str] | None = None
    first_difference: FirstDifference | None = None
    error: str | None = None


class SmokeResult(Model):
    """The token-identity smoke: each owb path against plain greedy `generate`."""

    model: str
    device: str
    dtype: str
    prompts: int
    tokens: int
    reference: str
    paths: dict[str, SmokeCheck] = Field(default_factory=dict)

    def add(self, name: str, check: SmokeCheck) -> None:
        """Record one path's check."""
        self.paths = {**self.paths, name: check}


class StepStatus(Model):
    """How a step ended, and why where it did not finish."""

    status: Literal["ok", "failed", "timeout", "skipped"]
    reason: str | None = None
    wall_s: float | None = None


class Params(Model):
    """The workload the suite ran."""

    models: dict[str, str]  # label -> card id or card YAML path
    run_model: str
    prompts: int
    output_len: int
    batch: int
    batch1_tokens: int
    repeats: int
    max_model_len: int
    vllm_args: dict[str, Any]
    data: str
    tokenizer: str
    prompt_tokens: str
    budget_s: int | float


class ServeFigures(Model):
    """One tool's figures on one run of a level, under `vllm bench serve`'s keys and units."""

    output_throughput: float
    request_throughput: float
    duration: float
    mean_ttft_ms: float | None
    p99_ttft_ms: float | None
    median_tpot_ms: float | None
    median_itl_ms: float | None
    completed: int
    total_output_tokens: int
    total_input_tokens: int


class ServeLevel(Model):
    """One load level (requests in flight, all sent at once) on the served model: each tool's runs, alternated."""

    max_concurrency: int
    vllm: list[ServeFigures] = Field(default_factory=list)
    owb: list[ServeFigures] = Field(default_factory=list)


class ServeResult(Model):
    """`owb bench --backend openai` beside `vllm bench serve` on one `vllm serve` of the run model's shape."""

    card: str
    input_len: int
    output_len: int
    num_prompts: int
    server_args: list[str]
    server_start_s: float | None = None
    levels: list[ServeLevel] = Field(default_factory=list)


class SuiteRecord(Model):
    """suite.json; a step's process writes the same record with its own sections and its entry in `steps`."""

    suite_schema: str | None = Field(default=None, validation_alias="schema", serialization_alias="schema")
    mode: str | None = None
    device_name: str | None = None
    updated_at: str | None = None
    params: Params | None = None
    steps: dict[str, StepStatus] = Field(default_factory=dict)
    environment: Environment | None = None
    bandwidth: Bandwidth | None = None
    serve: ServeResult | None = None
    vllm: dict[str, VllmResult] = Field(default_factory=dict)
    hf: dict[str, HfResult] = Field(default_factory=dict)
    owb_run: OwbRunResult | None = None
    lmeval: Lmeval | None = None
    smoke: SmokeResult | None = None

    def dump(self) -> str:
        """The record as JSON: the fields that were set, by their JSON names."""
        return self.model_dump_json(indent=2, by_alias=True, exclude_unset=True)

    @classmethod
    def read(cls, path: Path) -> SuiteRecord:
        """The record in a file (an empty one where there is no file)."""
        return cls.model_validate_json(path.read_text()) if path.is_file() else cls()


M = TypeVar("M", bound=BaseModel)


def merge(dst: M, src: BaseModel) -> M:
    """Merge the fields set in `src` into `dst` recursively (records and dicts merge, anything else replaces), as
    suite.json has always merged a step's results; returns dst."""
    for name in src.model_fields_set:
        old = getattr(dst, name) if name in dst.model_fields_set else None
        setattr(dst, name, _merged(old, getattr(src, name)))
    return dst


def _merged(old: Any, new: Any) -> Any:
    """`new` merged over `old`."""
    if isinstance(old, BaseModel) and type(old) is type(new):
        return merge(old, new)
    if isinstance(old, dict) and isinstance(new, dict):
        return {**old, **{key: _merged(old.get(key), value) for key, value in new.items()}}
    return new


class Recorder:
    """A suite record kept in memory and rewritten atomically to its file on every `save`, so a step stopped by its
    time limit keeps what it finished."""

    def __init__(self, path: Path, data: SuiteRecord | None = None) -> None:
        self.path = path
        self.data = data if data is not None else SuiteRecord()

    def save(self) -> None:
        """Write the record (atomically: a reader never sees half a file)."""
        atomic_write_text(self.path, self.data.dump())
