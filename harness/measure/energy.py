"""GPU energy while an engine generates, on every GPU it uses: the engine's visible devices mapped to NVML by UUID
(CUDA_VISIBLE_DEVICES), or a server's GPUs named by NVML index or UUID; each GPU's total-energy counter where it has
one (else board power sampled at ~10 Hz and integrated), peak power, clocks, clock-event (throttle) reasons and
memory (per process where NVML lists them), summed over the GPUs, with an idle baseline for net joules."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Literal

from harness.core.log import warn
from harness.core.stats import per
from harness.engines.base import EngineRequest
from harness.engines.stream import Served
from harness.records.base import EnergyReading
from harness.records.bench import GPUEnergy, MeteredEnergy

# NVML's clock-event reasons by bit (an idle GPU, bit 0x1, is not held back, so it is left out)
THROTTLE_REASONS = {0x2: "applications_clocks_setting", 0x4: "sw_power_cap", 0x8: "hw_slowdown",
                    0x10: "sync_boost", 0x20: "sw_thermal_slowdown", 0x40: "hw_thermal_slowdown",
                    0x80: "hw_power_brake_slowdown", 0x100: "display_clock_setting"}


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


@dataclass(frozen=True)
class GPUSelection:
    """The GPUs a meter reads: CUDA ordinals as an engine in this process sees them (CUDA_VISIBLE_DEVICES maps them
    to physical GPUs), and GPUs named by NVML index or UUID (a server's, on this machine)."""

    ordinals: tuple[int, ...] = ()
    named: tuple[str, ...] = ()

    @classmethod
    def visible(cls, count: int = 1) -> GPUSelection:
        """The first `count` devices this process sees."""
        return cls(ordinals=tuple(range(count)))


def engine_gpus(backend: object, request: EngineRequest) -> GPUSelection:
    """What to meter for an engine: a served model's GPUs on this machine (none unless the user named them:
    `energy_gpus`), else the tp x pp x dp devices an engine in this process sees."""
    if isinstance(backend, Served):
        return GPUSelection(named=backend.local_gpus())
    return GPUSelection.visible((request.tp or 1) * (request.pp or 1) * (request.dp or 1))


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class _NVML:
    """NVML calls that answer None where a function is missing, unsupported or failing."""

    def __init__(self, module: Any) -> None:
        self.module = module

    def __call__(self, name: str, *args: Any) -> Any:
        fn: Callable[..., Any] | None = getattr(self.module, name, None)
        if fn is None:
            return None
        try:
            return fn(*args)
        except self.module.NVMLError:
            return None

    def all_uuids(self) -> list[tuple[int, str]]:
        """(index, UUID) of every device NVML lists."""
        count = self("nvmlDeviceGetCount") or 0
        return [(i, _text(self("nvmlDeviceGetUUID", self("nvmlDeviceGetHandleByIndex", i)))) for i in range(count)]


def physical_ids(selection: GPUSelection, visible: str | None) -> list[str]:
    """The NVML indices or UUIDs (prefixes allowed, as CUDA takes them) a selection names: its ordinals through
    CUDA_VISIBLE_DEVICES (unset: ordinal = index; CUDA stops at an entry it cannot read) and its named GPUs."""
    if visible is None:
        mapped = [str(i) for i in selection.ordinals]
    else:
        entries = []
        for entry in (e.strip() for e in visible.split(",")):
            if not entry or entry.startswith("-"):
                break
            entries.append(entry)
        mapped = [entries[i] for i in selection.ordinals if i < len(entries)]
    return [*mapped, *selection.named]


def _resolve(nvml: _NVML, ident: str) -> tuple[int, str, Any] | None:
    """(NVML index, UUID, handle) of a GPU named by index or UUID prefix; None (warned) where none matches."""
    if ident.isdigit():
        handle = nvml("nvmlDeviceGetHandleByIndex", int(ident))
        uuid = nvml("nvmlDeviceGetUUID", handle) if handle is not None else None
        found = None if handle is None else (int(ident), _text(uuid) if uuid is not None else f"index-{ident}", handle)
    else:
        matches = [(i, u) for i, u in nvml.all_uuids() if u.startswith(ident)]
        found = (matches[0][0], matches[0][1], nvml("nvmlDeviceGetHandleByIndex", matches[0][0])) if len(
            matches) == 1 else None
    if found is None:
        warn(f"no GPU '{ident}' to meter (NVML lists {nvml('nvmlDeviceGetCount') or 0}); its energy is left out")
    return found


@dataclass
class _GPU:
    """One metered GPU: its identity, and the samples and counter readings of the measured spans."""

    index: int
    uuid: str
    handle: Any
    name: str | None = None
    power_limit_w: float | None = None
    idle_watts: float | None = None
    segments: list[tuple[list[float], list[float]]] = field(default_factory=list)  # (times, watts) per span
    memory: list[int] = field(default_factory=list)
    sm_clocks: list[int] = field(default_factory=list)
    mem_clocks: list[int] = field(default_factory=list)
    throttle: int = 0
    processes: dict[str, int] = field(default_factory=dict)
    counter_mj: int | None = 0  # increase over closed spans; None once a read failed
    span_start_mj: int | None = None

    def sample(self, nvml: _NVML, now: float) -> float | None:
        """Read power, memory, clocks, clock-event reasons and processes; the watts read."""
        milliwatts = nvml("nvmlDeviceGetPowerUsage", self.handle)
        memory = nvml("nvmlDeviceGetMemoryInfo", self.handle)
        for values, kind in ((self.sm_clocks, "NVML_CLOCK_SM"), (self.mem_clocks, "NVML_CLOCK_MEM")):
            mhz = nvml("nvmlDeviceGetClockInfo", self.handle, getattr(nvml.module, kind, 0))
            if mhz is not None:
                values.append(int(mhz))
        reasons = nvml("nvmlDeviceGetCurrentClocksEventReasons", self.handle)
        if reasons is None:
            reasons = nvml("nvmlDeviceGetCurrentClocksThrottleReasons", self.handle)
        self.throttle |= int(reasons or 0)
        for proc in nvml("nvmlDeviceGetComputeRunningProcesses", self.handle) or []:
            used = getattr(proc, "usedGpuMemory", None)
            if used is not None:
                self.processes[str(proc.pid)] = max(self.processes.get(str(proc.pid), 0), int(used))
        if memory is not None:
            self.memory.append(int(memory.used))
        if milliwatts is None:
            return None
        self.segments[-1][0].append(now)
        self.segments[-1][1].append(milliwatts / 1000)
        return float(milliwatts) / 1000

    def counter_through(self, end_mj: int | None) -> int | None:
        """The counter's increase over the closed spans and the open one up to `end_mj`."""
        if self.counter_mj is None or self.span_start_mj is None or end_mj is None:
            return None
        return self.counter_mj + counter_delta(self.span_start_mj, end_mj)

    def energy(self, counter_mj: int | None) -> GPUEnergy | None:
        """This GPU's reading: the counter's joules, else the integrated power samples; None without either."""
        method: Literal["energy_counter", "power_samples"]
        if counter_mj is not None:
            joules, method = counter_mj / 1000, "energy_counter"
        elif any(len(w) >= 2 for _, w in self.segments):
            joules, method = sum(integrate_power(t, w) for t, w in self.segments), "power_samples"
        else:
            return None
        watts = [w for _, span in self.segments for w in span]
        reasons = [name for bit, name in THROTTLE_REASONS.items() if self.throttle & bit]
        return GPUEnergy(index=self.index, uuid=self.uuid, name=self.name, joules=joules, method=method,
                         peak_watts=max(watts, default=None), idle_watts=self.idle_watts,
                         sm_clock_mhz=_mean(self.sm_clocks), mem_clock_mhz=_mean(self.mem_clocks),
                         power_limit_w=self.power_limit_w, throttle_reasons=reasons,
                         peak_memory_bytes=max(self.memory, default=None), process_memory_bytes=dict(self.processes))


def _mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


class EnergyMeter:
    """Context manager measuring the selected GPUs through NVML (`nvidia-ml-py`) from entry to exit, except while
    paused (so a task's energy covers the same spans as its generation time). With no selection it reads the first
    GPU this process sees; an empty selection reads nothing. `reading()` is None where there is no NVML, no such
    GPU, or neither an energy counter nor power readings."""

    def __init__(self, gpus: GPUSelection | None = None, interval_s: float = 0.1,
                 idle_watts: Mapping[str, float] | None = None) -> None:
        self.selection = GPUSelection.visible(1) if gpus is None else gpus
        self.interval_s = interval_s
        self.idle = dict(idle_watts or {})  # UUID -> watts with the engine idle
        self._nvml: _NVML | None = None
        self._gpus: list[_GPU] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._active = False
        self._rounds: list[float] = []  # summed watts of each sampling round
        self._seconds = 0.0  # length of the closed spans
        self._span_start_s = 0.0

    def _sample(self) -> None:
        if not self._active or self._nvml is None:
            return
        now = time.monotonic()
        with self._lock:
            if not self._active:
                return
            watts = [gpu.sample(self._nvml, now) for gpu in self._gpus]
            if watts and all(w is not None for w in watts):
                self._rounds.append(sum(w for w in watts if w is not None))

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            self._sample()

    def _counter(self, gpu: _GPU) -> int | None:
        assert self._nvml is not None
        value = self._nvml("nvmlDeviceGetTotalEnergyConsumption", gpu.handle)
        return None if value is None else int(value)

    def resume(self) -> None:
        """Start a measured span."""
        if self._nvml is None or self._active:
            return
        with self._lock:
            for gpu in self._gpus:
                gpu.segments.append(([], []))
                gpu.span_start_mj = self._counter(gpu)
            self._span_start_s = time.monotonic()
            self._active = True
        self._sample()

    def pause(self) -> None:
        """End the current span; what happens until `resume()` is not counted."""
        if self._nvml is None or not self._active:
            return
        self._sample()
        ends = [self._counter(gpu) for gpu in self._gpus]
        with self._lock:
            self._active = False
            self._seconds += time.monotonic() - self._span_start_s
            for gpu, end in zip(self._gpus, ends, strict=True):
                gpu.counter_mj = gpu.counter_through(end)

    def __enter__(self) -> EnergyMeter:
        nvml = open_nvml()
        if nvml is None:
            return self
        ids = physical_ids(self.selection, os.environ.get("CUDA_VISIBLE_DEVICES"))
        found = [f for f in (_resolve(nvml, ident) for ident in ids) if f is not None]
        unique = list({uuid: (index, uuid, handle) for index, uuid, handle in found}.values())
        if not unique:
            nvml("nvmlShutdown")
            return self
        self._nvml = nvml
        for index, uuid, handle in unique:
            limit = nvml("nvmlDeviceGetEnforcedPowerLimit", handle)
            name = nvml("nvmlDeviceGetName", handle)
            self._gpus.append(_GPU(index, uuid, handle, _text(name) if name is not None else None,
                                   None if limit is None else limit / 1000, self.idle.get(uuid)))
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
        self._nvml("nvmlShutdown")

    @property
    def uuids(self) -> list[str]:
        """The UUIDs of the GPUs metered."""
        return [gpu.uuid for gpu in self._gpus]

    def reading(self) -> MeteredEnergy | None:
        """The measured spans' energy and conditions so far (an open span up to now), summed over the GPUs with each
        GPU's own reading, or None where nothing could be measured."""
        if self._nvml is None:
            return None
        ends = [self._counter(gpu) for gpu in self._gpus] if self._active else [None] * len(self._gpus)
        with self._lock:
            seconds = self._seconds + (time.monotonic() - self._span_start_s if self._active else 0.0)
            counters = [gpu.counter_through(end) if self._active else gpu.counter_mj
                        for gpu, end in zip(self._gpus, ends, strict=True)]
            readings = [gpu.energy(c) for gpu, c in zip(self._gpus, counters, strict=True)]
            rounds = list(self._rounds)
        if seconds <= 0 or not readings or any(r is None for r in readings):
            return None
        return summed([r for r in readings if r is not None], seconds, len(rounds), max(rounds, default=None))


def summed(gpus: Sequence[GPUEnergy], seconds: float, samples: int, peak_watts: float | None) -> MeteredEnergy:
    """Several GPUs' readings over one span as one: joules, memory and limits add up, clocks average, the idle
    baseline (where every GPU has one) gives net joules."""
    joules = sum(g.joules for g in gpus)
    idle = sum(g.idle_watts for g in gpus if g.idle_watts is not None) if all(
        g.idle_watts is not None for g in gpus) else None
    memory = [g.peak_memory_bytes for g in gpus if g.peak_memory_bytes is not None]
    limits = [g.power_limit_w for g in gpus if g.power_limit_w is not None]
    method: Literal["energy_counter", "power_samples"] = (
        "energy_counter" if all(g.method == "energy_counter" for g in gpus) else "power_samples")
    return MeteredEnergy(
        joules=joules, seconds=seconds, mean_watts=joules / seconds, peak_watts=peak_watts,
        peak_memory_bytes=sum(memory) if memory else None,
        sm_clock_mhz=_mean([g.sm_clock_mhz for g in gpus if g.sm_clock_mhz is not None]),
        mem_clock_mhz=_mean([g.mem_clock_mhz for g in gpus if g.mem_clock_mhz is not None]),
        power_limit_w=sum(limits) if len(limits) == len(gpus) else None, method=method, samples=samples,
        gpus=list(gpus), idle_watts=idle, net_joules=None if idle is None else joules - idle * seconds)


def open_nvml() -> _NVML | None:
    """NVML, initialised; None without the package or the driver library."""
    try:
        import pynvml
    except ImportError:
        return None
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError:
        return None
    return _NVML(pynvml)


def idle_watts(gpus: GPUSelection, seconds: float = 2.0) -> dict[str, float]:
    """Each selected GPU's draw (UUID -> watts) over `seconds` with nothing asked of it: the baseline that net joules
    are counted above. Empty without NVML or GPUs."""
    with EnergyMeter(gpus, interval_s=min(0.1, seconds / 4)) as meter:
        if meter.uuids:
            time.sleep(seconds)
    reading = meter.reading()
    if reading is None:
        return {}
    return {g.uuid: g.joules / reading.seconds for g in reading.gpus}


def merge_energy(old: EnergyReading | None, new: EnergyReading | None) -> EnergyReading | None:
    """Energy of two sessions of one task (a resumed run): joules and seconds add up, peaks take the larger."""
    if old is None or new is None:
        return old or new
    joules, seconds = old.joules + new.joules, old.seconds + new.seconds
    update: dict[str, Any] = {
        "joules": joules, "seconds": seconds, "mean_watts": joules / seconds if seconds else new.mean_watts,
        "peak_watts": _larger(old.peak_watts, new.peak_watts),
        "peak_memory_bytes": _larger(old.peak_memory_bytes, new.peak_memory_bytes),
        "samples": old.samples + new.samples}
    if isinstance(new, MeteredEnergy):
        net = [e.net_joules if isinstance(e, MeteredEnergy) else None for e in (old, new)]
        update["net_joules"] = None if None in net else sum(n for n in net if n is not None)
    return new.model_copy(update=update)


def _larger(a: float | None, b: float | None) -> Any:
    return None if a is None and b is None else max(x for x in (a, b) if x is not None)
