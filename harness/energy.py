"""GPU energy while a backend generates: NVML's total-energy counter where the GPU has one, else board power sampled
at ~10 Hz in a background thread and integrated (trapezoid); with peak memory, clocks and the enforced power limit."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from types import TracebackType
from typing import Any, Literal, TypeVar

from pydantic import BaseModel

T = TypeVar("T")


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


def integrate_power(times: Sequence[float], watts: Sequence[float]) -> float:
    """Joules from power samples (seconds, watts) by the trapezoid rule; spacing may be irregular."""
    if len(times) != len(watts):
        raise ValueError("times and watts differ in length")
    return sum(((times[i + 1] - times[i]) * (watts[i] + watts[i + 1]) / 2 for i in range(len(times) - 1)), 0.0)


def counter_delta(start: int, end: int, bits: int = 64) -> int:
    """The increase of a `bits`-wide unsigned counter from `start` to `end`, across at most one wrap-around."""
    return (end - start) % (1 << bits)


def _per(joules: float | None, count: float) -> float | None:
    return None if joules is None or count <= 0 else joules / count


def joules_per_token(joules: float | None, output_tokens: int) -> float | None:
    """Energy per generated token; None without energy or tokens."""
    return _per(joules, output_tokens)


def joules_per_correct(joules: float | None, correct: float) -> float | None:
    """Energy per correct answer (`correct` may be a fractional count such as a mean over samples); None without
    energy or correct answers."""
    return _per(joules, correct)


class EnergyMeter:
    """Context manager measuring one GPU through NVML (`nvidia-ml-py`) from entry to exit; `reading()` is None where
    there is no NVML, no such GPU, or neither an energy counter nor power readings."""

    def __init__(self, device_index: int = 0, interval_s: float = 0.1) -> None:
        self.device_index = device_index
        self.interval_s = interval_s
        self._nvml: Any = None
        self._handle: Any = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._times: list[float] = []
        self._watts: list[float] = []
        self._memory: list[int] = []
        self._sm_clocks: list[int] = []
        self._mem_clocks: list[int] = []
        self._start_mj: int | None = None
        self._end_mj: int | None = None
        self._start_s = self._end_s = 0.0
        self._power_limit_w: float | None = None

    def _call(self, fn: Callable[..., T], *args: Any) -> T | None:
        try:
            return fn(*args)
        except self._nvml.NVMLError:  # not supported on this GPU (or lost): that figure is left out
            return None

    def _sample(self) -> None:
        nvml, handle = self._nvml, self._handle
        now = time.monotonic()
        milliwatts = self._call(nvml.nvmlDeviceGetPowerUsage, handle)
        if milliwatts is not None:
            self._times.append(now)
            self._watts.append(milliwatts / 1000)
        memory = self._call(nvml.nvmlDeviceGetMemoryInfo, handle)
        if memory is not None:
            self._memory.append(int(memory.used))
        for clocks, kind in ((self._sm_clocks, nvml.NVML_CLOCK_SM), (self._mem_clocks, nvml.NVML_CLOCK_MEM)):
            mhz = self._call(nvml.nvmlDeviceGetClockInfo, handle, kind)
            if mhz is not None:
                clocks.append(int(mhz))

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            self._sample()

    def __enter__(self) -> EnergyMeter:
        try:
            import pynvml
        except ImportError:
            return self
        try:
            pynvml.nvmlInit()
            self._handle = pynvml.nvmlDeviceGetHandleByIndex(self.device_index)
        except pynvml.NVMLError:  # no driver library, no GPU, no such index: this meter reads None
            return self
        self._nvml = pynvml
        limit = self._call(pynvml.nvmlDeviceGetEnforcedPowerLimit, self._handle)
        self._power_limit_w = None if limit is None else limit / 1000
        self._start_mj = self._call(pynvml.nvmlDeviceGetTotalEnergyConsumption, self._handle)
        self._start_s = time.monotonic()
        self._sample()
        self._thread = threading.Thread(target=self._run, name="owb-energy", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self._nvml is None:
            return
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self._sample()
        self._end_mj = self._call(self._nvml.nvmlDeviceGetTotalEnergyConsumption, self._handle)
        self._end_s = time.monotonic()
        self._call(self._nvml.nvmlShutdown)

    def reading(self) -> EnergyReading | None:
        """The measured span's energy and conditions, or None where nothing could be measured."""
        if self._nvml is None or self._end_s <= self._start_s:
            return None
        method: Literal["energy_counter", "power_samples"]
        if self._start_mj is not None and self._end_mj is not None:
            joules, method = counter_delta(self._start_mj, self._end_mj) / 1000, "energy_counter"
        elif len(self._watts) >= 2:
            joules, method = integrate_power(self._times, self._watts), "power_samples"
        else:
            return None
        seconds = self._end_s - self._start_s
        return EnergyReading(
            joules=joules, seconds=seconds, mean_watts=joules / seconds,
            peak_watts=max(self._watts, default=None), peak_memory_bytes=max(self._memory, default=None),
            sm_clock_mhz=_mean(self._sm_clocks), mem_clock_mhz=_mean(self._mem_clocks),
            power_limit_w=self._power_limit_w, method=method, samples=len(self._watts))


def _mean(values: list[int]) -> float | None:
    return sum(values) / len(values) if values else None
