"""GPU energy while a backend generates: NVML's total-energy counter where the GPU has one, else board power sampled
at ~10 Hz in a background thread and integrated (trapezoid); with peak memory, clocks and the enforced power limit."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from types import TracebackType
from typing import Any, Literal, TypeVar

from harness.core.stats import per
from harness.records.base import EnergyReading

T = TypeVar("T")


def integrate_power(times: Sequence[float], watts: Sequence[float]) -> float:
    """Joules from power samples (seconds, watts) by the trapezoid rule; spacing may be irregular."""
    if len(times) != len(watts):
        raise ValueError("times and watts differ in length")
    return sum(((times[i + 1] - times[i]) * (watts[i] + watts[i + 1]) / 2 for i in range(len(times) - 1)), 0.0)


def counter_delta(start: int, end: int, bits: int = 64) -> int:
    """The increase of a `bits`-wide unsigned counter from `start` to `end`, across at most one wrap-around."""
    return (end - start) % (1 << bits)


def joules_per_token(joules: float | None, output_tokens: int) -> float | None:
    """Energy per generated token; None without energy or tokens."""
    return per(joules, output_tokens)


def joules_per_correct(joules: float | None, correct: float) -> float | None:
    """Energy per correct answer (`correct` may be a fractional count such as a mean over samples); None without
    energy or correct answers."""
    return per(joules, correct)


def merge_energy(old: EnergyReading | None, new: EnergyReading | None) -> EnergyReading | None:
    """Energy of two sessions of one task (a resumed run): joules and seconds add up, peaks take the larger."""
    if old is None or new is None:
        return old or new
    joules, seconds = old.joules + new.joules, old.seconds + new.seconds
    return new.model_copy(update={
        "joules": joules, "seconds": seconds, "mean_watts": joules / seconds if seconds else new.mean_watts,
        "peak_watts": max(w for w in (old.peak_watts, new.peak_watts) if w is not None)
        if old.peak_watts is not None or new.peak_watts is not None else None,
        "peak_memory_bytes": max(m for m in (old.peak_memory_bytes, new.peak_memory_bytes) if m is not None)
        if old.peak_memory_bytes is not None or new.peak_memory_bytes is not None else None,
        "samples": old.samples + new.samples})


class EnergyMeter:
    """Context manager measuring one GPU through NVML (`nvidia-ml-py`) from entry to exit, except while paused (so a
    task's energy covers the same spans as its generation time); `reading()` is None where there is no NVML, no such
    GPU, or neither an energy counter nor power readings."""

    def __init__(self, device_index: int = 0, interval_s: float = 0.1) -> None:
        self.device_index = device_index
        self.interval_s = interval_s
        self._nvml: Any = None
        self._handle: Any = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._active = False
        self._segments: list[tuple[list[float], list[float]]] = []  # (times, watts) of each measured span
        self._memory: list[int] = []
        self._sm_clocks: list[int] = []
        self._mem_clocks: list[int] = []
        self._counter_mj: int | None = 0  # counter increase over closed spans; None once a read failed
        self._span_start_mj: int | None = None
        self._seconds = 0.0  # length of the closed spans
        self._span_start_s = 0.0
        self._power_limit_w: float | None = None

    def _call(self, fn: Callable[..., T], *args: Any) -> T | None:
        try:
            return fn(*args)
        except self._nvml.NVMLError:  # not supported on this GPU (or lost): that figure is left out
            return None

    def _sample(self) -> None:
        if not self._active:
            return
        nvml, handle = self._nvml, self._handle
        now = time.monotonic()
        milliwatts = self._call(nvml.nvmlDeviceGetPowerUsage, handle)
        memory = self._call(nvml.nvmlDeviceGetMemoryInfo, handle)
        clocks = [self._call(nvml.nvmlDeviceGetClockInfo, handle, kind) for kind in (nvml.NVML_CLOCK_SM,
                                                                                     nvml.NVML_CLOCK_MEM)]
        with self._lock:
            if not self._active:
                return
            if milliwatts is not None:
                self._segments[-1][0].append(now)
                self._segments[-1][1].append(milliwatts / 1000)
            if memory is not None:
                self._memory.append(int(memory.used))
            for values, mhz in zip((self._sm_clocks, self._mem_clocks), clocks, strict=True):
                if mhz is not None:
                    values.append(int(mhz))

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            self._sample()

    def _counter(self) -> int | None:
        return self._call(self._nvml.nvmlDeviceGetTotalEnergyConsumption, self._handle)

    def _counter_through(self, end_mj: int | None) -> int | None:
        """The counter's increase over the closed spans and the open one up to `end_mj`; None once a read failed."""
        if self._counter_mj is None or self._span_start_mj is None or end_mj is None:
            return None
        return self._counter_mj + counter_delta(self._span_start_mj, end_mj)

    def resume(self) -> None:
        """Start a measured span."""
        if self._nvml is None or self._active:
            return
        with self._lock:
            self._segments.append(([], []))
            self._span_start_mj = self._counter()
            self._span_start_s = time.monotonic()
            self._active = True
        self._sample()

    def pause(self) -> None:
        """End the current span; what happens until `resume()` is not counted."""
        if self._nvml is None or not self._active:
            return
        self._sample()
        end_mj = self._counter()
        with self._lock:
            self._active = False
            self._seconds += time.monotonic() - self._span_start_s
            self._counter_mj = self._counter_through(end_mj)

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
        self.resume()
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
        self.pause()
        self._call(self._nvml.nvmlShutdown)

    def reading(self) -> EnergyReading | None:
        """The measured spans' energy and conditions so far (an open span up to now), or None where nothing could
        be measured."""
        if self._nvml is None:
            return None
        with self._lock:
            seconds, counter_mj = self._seconds, self._counter_mj
            segments = [(list(t), list(w)) for t, w in self._segments]
            if self._active:
                seconds += time.monotonic() - self._span_start_s
                counter_mj = self._counter_through(self._counter())
        if seconds <= 0:
            return None
        method: Literal["energy_counter", "power_samples"]
        if counter_mj is not None:
            joules, method = counter_mj / 1000, "energy_counter"
        elif any(len(w) >= 2 for _, w in segments):
            joules, method = sum(integrate_power(t, w) for t, w in segments), "power_samples"
        else:
            return None
        watts = [w for _, span in segments for w in span]
        return EnergyReading(
            joules=joules, seconds=seconds, mean_watts=joules / seconds,
            peak_watts=max(watts, default=None), peak_memory_bytes=max(self._memory, default=None),
            sm_clock_mhz=_mean(self._sm_clocks), mem_clock_mhz=_mean(self._mem_clocks),
            power_limit_w=self._power_limit_w, method=method, samples=len(watts))


def _mean(values: list[int]) -> float | None:
    return sum(values) / len(values) if values else None
