"""Energy: the arithmetic on recorded traces (constant power, ramps, irregular spacing, a counter that wraps), the
per-token and per-correct-answer helpers, and EnergyMeter driven end to end by fake NVML modules: one GPU, and
several GPUs with recorded counters, mapped from CUDA_VISIBLE_DEVICES by UUID, with an idle baseline."""

from __future__ import annotations

import sys
import time
import types
from types import SimpleNamespace

import pytest

from harness.engines.base import EngineRequest
from harness.measure.energy import (
    EnergyMeter,
    GPUSelection,
    counter_delta,
    engine_gpus,
    idle_watts,
    integrate_power,
    joules_per_correct,
    joules_per_token,
    merge_energy,
    physical_ids,
)


def test_constant_power_integrates_to_power_times_time() -> None:
    times = [i / 10 for i in range(11)]  # 10 Hz for 1 s
    assert integrate_power(times, [300.0] * 11) == pytest.approx(300.0, abs=1e-9)


def test_ramps_integrate_exactly() -> None:
    """The trapezoid rule is exact on piecewise-linear power: a 0 -> 100 W ramp over 10 s, then up and down again."""
    times = [float(t) for t in range(11)]
    assert integrate_power(times, [10.0 * t for t in times]) == pytest.approx(500.0, abs=1e-9)
    triangle = [100.0, 200.0, 300.0, 200.0, 100.0]
    assert integrate_power([0.0, 1.0, 2.0, 3.0, 4.0], triangle) == pytest.approx(800.0, abs=1e-9)


def test_irregular_spacing() -> None:
    """Samples a thread actually takes are not evenly spaced: 100 + 50 t W over [0, 1] s is 125 J."""
    times = [0.0, 0.05, 0.3, 0.31, 0.77, 1.0]
    assert integrate_power(times, [100 + 50 * t for t in times]) == pytest.approx(125.0, abs=1e-9)


def test_degenerate_traces() -> None:
    assert integrate_power([], []) == 0.0
    assert integrate_power([1.0], [250.0]) == 0.0
    with pytest.raises(ValueError):
        integrate_power([0.0, 1.0], [1.0])


def test_counter_that_wraps() -> None:
    """A 32-bit millijoule counter read every second as it passes 2^32: the deltas still add up."""
    readings = [2**32 - 2500, 2**32 - 1000, 500, 2000]
    assert sum(counter_delta(a, b, bits=32) for a, b in zip(readings[:-1], readings[1:], strict=True)) == 4500
    assert counter_delta(2**64 - 1, 4) == 5  # NVML's counter is 64 bits
    assert counter_delta(100, 250) == 150


def test_per_token_and_per_correct() -> None:
    assert joules_per_token(120.0, 60) == 2.0
    assert joules_per_correct(100.0, 2.5) == 40.0
    assert joules_per_token(None, 60) is None
    assert joules_per_token(120.0, 0) is None
    assert joules_per_correct(None, 3) is None
    assert joules_per_correct(120.0, 0) is None


class _NVMLError(Exception):
    pass


def fake_nvml(energy_mj: list[int] | None, init_fails: bool = False) -> types.ModuleType:
    """A pynvml stand-in for GPU 0: 250 W, memory use growing each read, fixed clocks, a 700 W limit, and the given
    energy-counter readings (None: the GPU has no counter)."""
    module = types.ModuleType("pynvml")
    memory = iter(range(10**9, 10**12, 10**6))
    energy = iter(energy_mj or [])

    def init() -> None:
        if init_fails:
            raise _NVMLError("NVML Shared Library Not Found")

    def handle(index: int) -> str:
        if index != 0:
            raise _NVMLError("Invalid Argument")
        return "gpu0"

    def total_energy(_: str) -> int:
        if energy_mj is None:
            raise _NVMLError("Not Supported")
        return next(energy)

    module.__dict__.update(
        NVMLError=_NVMLError, NVML_CLOCK_SM=1, NVML_CLOCK_MEM=2, nvmlInit=init, nvmlShutdown=lambda: None,
        nvmlDeviceGetHandleByIndex=handle, nvmlDeviceGetTotalEnergyConsumption=total_energy,
        nvmlDeviceGetPowerUsage=lambda _: 250_000, nvmlDeviceGetEnforcedPowerLimit=lambda _: 700_000,
        nvmlDeviceGetMemoryInfo=lambda _: SimpleNamespace(used=next(memory)),
        nvmlDeviceGetClockInfo=lambda _, kind: 1980 if kind == 1 else 2619)
    return module


def test_meter_prefers_the_energy_counter(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pynvml", fake_nvml([2**64 - 1000, 4000]))  # wraps: 5000 mJ
    with EnergyMeter(interval_s=0.02) as meter:
        time.sleep(0.1)
    reading = meter.reading()
    assert reading is not None
    assert reading.method == "energy_counter"
    assert reading.joules == 5.0
    assert reading.mean_watts == pytest.approx(5.0 / reading.seconds)
    assert 0.1 <= reading.seconds < 5
    assert reading.samples >= 3  # at entry, from the thread, at exit
    assert reading.peak_watts == 250.0 and reading.power_limit_w == 700.0
    assert reading.sm_clock_mhz == 1980 and reading.mem_clock_mhz == 2619
    assert reading.peak_memory_bytes == 10**9 + (reading.samples - 1) * 10**6


def test_meter_integrates_power_without_a_counter(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pynvml", fake_nvml(None))
    with EnergyMeter(interval_s=0.02) as meter:
        time.sleep(0.1)
    reading = meter.reading()
    assert reading is not None
    assert reading.method == "power_samples"
    assert reading.joules == pytest.approx(250.0 * reading.seconds, rel=0.02)
    assert reading.mean_watts == pytest.approx(250.0, rel=0.02)


@pytest.mark.parametrize("pynvml", [None, fake_nvml([0, 1], init_fails=True)])
def test_no_nvml_reads_none(monkeypatch: pytest.MonkeyPatch, pynvml: types.ModuleType | None) -> None:
    """No package (import fails) or no driver library: None, never zeros."""
    monkeypatch.setitem(sys.modules, "pynvml", pynvml)
    with EnergyMeter() as meter:
        pass
    assert meter.reading() is None


def test_no_such_gpu_reads_none(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pynvml", fake_nvml([0, 1]))
    with EnergyMeter(GPUSelection(named=("3",))) as meter:
        pass
    assert meter.reading() is None


def _nvml_works() -> bool:
    try:
        import pynvml

        pynvml.nvmlInit()
        pynvml.nvmlShutdown()
    except Exception:
        return False
    return True


@pytest.mark.skipif(_nvml_works(), reason="this machine has NVML and a GPU")
def test_this_machine_reads_none() -> None:
    with EnergyMeter() as meter:
        time.sleep(0.01)
    assert meter.reading() is None


def test_paused_spans_are_not_counted_and_a_reading_works_mid_span(monkeypatch: pytest.MonkeyPatch) -> None:
    """Energy over the generation spans only (scoring in between is paused), read after each batch as well."""
    monkeypatch.setitem(sys.modules, "pynvml", fake_nvml([1000, 3000, 10_000, 10_500, 10_900]))
    with EnergyMeter(interval_s=0.02) as meter:  # span 1: 1000 -> 3000 mJ
        time.sleep(0.05)
        meter.pause()
        time.sleep(0.2)  # scoring: 3000 -> 10000 mJ drawn, not counted
        middle = meter.reading()
        meter.resume()  # span 2 from 10000 mJ
        time.sleep(0.05)
        live = meter.reading()  # reads 10500 mJ: the open span so far
        assert live is not None and live.joules == 2.5
    reading = meter.reading()  # exit reads 10900 mJ
    assert middle is not None and middle.joules == 2.0 and 0.05 <= middle.seconds < 0.2
    assert reading is not None and reading.joules == 2.9 and reading.method == "energy_counter"
    assert 0.1 <= reading.seconds < 0.3


def test_paused_spans_without_a_counter_integrate_each_span(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pynvml", fake_nvml(None))
    with EnergyMeter(interval_s=0.01) as meter:
        time.sleep(0.05)
        meter.pause()
        time.sleep(0.3)
        meter.resume()
        time.sleep(0.05)
    reading = meter.reading()
    assert reading is not None and reading.method == "power_samples"
    assert reading.seconds < 0.25 and reading.joules == pytest.approx(250.0 * reading.seconds, rel=0.1)


def multi_nvml(counters: dict[int, list[int]], watts: dict[int, float]) -> types.ModuleType:
    """A pynvml stand-in for a 4-GPU machine (UUIDs GPU-0aaa... to GPU-3ddd...): each device's recorded
    total-energy readings in mJ, its constant power, one process using memory, and a power-cap clock event on GPU 2."""
    module = types.ModuleType("pynvml")
    uuids = ["GPU-0aaa-1111", "GPU-1bbb-2222", "GPU-2ccc-3333", "GPU-3ddd-4444"]
    readings = {i: iter(values) for i, values in counters.items()}
    read: dict[int, int] = {i: 0 for i in range(4)}

    def energy(handle: int) -> int:
        read[handle] += 1
        return next(readings[handle])

    def handle(index: int) -> int:
        if not 0 <= index < 4:
            raise _NVMLError("Invalid Argument")
        return index

    module.__dict__.update(
        NVMLError=_NVMLError, NVML_CLOCK_SM=1, NVML_CLOCK_MEM=2, nvmlInit=lambda: None, nvmlShutdown=lambda: None,
        nvmlDeviceGetCount=lambda: 4, nvmlDeviceGetHandleByIndex=handle, nvmlDeviceGetUUID=lambda h: uuids[h],
        nvmlDeviceGetName=lambda h: b"NVIDIA H100 80GB HBM3", nvmlDeviceGetTotalEnergyConsumption=energy,
        nvmlDeviceGetPowerUsage=lambda h: int(watts.get(h, 60.0) * 1000),
        nvmlDeviceGetEnforcedPowerLimit=lambda h: 700_000,
        nvmlDeviceGetMemoryInfo=lambda h: SimpleNamespace(used=(h + 1) * 10**9),
        nvmlDeviceGetClockInfo=lambda h, kind: 1980 if kind == 1 else 2619,
        nvmlDeviceGetCurrentClocksEventReasons=lambda h: 0x4 | 0x1 if h == 2 else 0x1,
        nvmlDeviceGetComputeRunningProcesses=lambda h: [SimpleNamespace(pid=4242, usedGpuMemory=(h + 1) * 5 * 10**8)])
    module.reads = read  # type: ignore[attr-defined]
    return module


def test_visible_devices_map_to_nvml_by_uuid() -> None:
    """CUDA ordinals go through CUDA_VISIBLE_DEVICES (UUIDs, prefixes or indices; CUDA stops at an entry it cannot
    read); a server's GPUs are named directly."""
    two = GPUSelection.visible(2)
    assert physical_ids(two, None) == ["0", "1"]
    assert physical_ids(two, "GPU-2ccc,GPU-0aaa-1111") == ["GPU-2ccc", "GPU-0aaa-1111"]
    assert physical_ids(two, "3,1,0") == ["3", "1"]
    assert physical_ids(two, "2,-1,3") == ["2"] and physical_ids(two, "") == []
    assert physical_ids(GPUSelection(named=("1", "GPU-3d")), "0") == ["1", "GPU-3d"]


def test_every_gpu_of_a_tensor_parallel_engine_is_summed(monkeypatch: pytest.MonkeyPatch) -> None:
    """TP = 2 on the GPUs CUDA_VISIBLE_DEVICES names by UUID prefix (physical 2 and 0, in that order): both counters
    are read and summed (GPU 0's wraps past 2^64), GPUs 1 and 3 (someone else's job) are never read."""
    nvml = multi_nvml({2: [5_000, 9_000], 0: [2**64 - 1_000, 2_000]}, {2: 300.0, 0: 250.0})
    monkeypatch.setitem(sys.modules, "pynvml", nvml)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "GPU-2ccc,GPU-0aaa")
    with EnergyMeter(engine_gpus(object(), EngineRequest(tp=2)), interval_s=0.02) as meter:
        time.sleep(0.06)
    reading = meter.reading()
    assert reading is not None and reading.method == "energy_counter"
    assert [(g.index, g.uuid, g.joules) for g in reading.gpus] == [(2, "GPU-2ccc-3333", 4.0), (0, "GPU-0aaa-1111", 3.0)]
    assert reading.joules == 7.0 and reading.mean_watts == pytest.approx(7.0 / reading.seconds)
    assert reading.peak_watts == 550.0 and reading.power_limit_w == 1400.0  # summed over the GPUs
    assert reading.peak_memory_bytes == 3 * 10**9 + 1 * 10**9
    two, zero = reading.gpus
    assert two.throttle_reasons == ["sw_power_cap"] and zero.throttle_reasons == []  # idle is no throttle
    assert two.process_memory_bytes == {"4242": 15 * 10**8} and two.name == "NVIDIA H100 80GB HBM3"
    assert nvml.reads[1] == nvml.reads[3] == 0  # type: ignore[attr-defined]


def test_integer_visible_devices_and_a_missing_gpu(monkeypatch: pytest.MonkeyPatch,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setitem(sys.modules, "pynvml", multi_nvml({3: [0, 1_000], 1: [0, 500]}, {}))
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3,1")
    with EnergyMeter(GPUSelection.visible(2)) as meter:
        time.sleep(0.01)
    reading = meter.reading()
    assert reading is not None and [g.index for g in reading.gpus] == [3, 1] and reading.joules == 1.5
    monkeypatch.setitem(sys.modules, "pynvml", multi_nvml({1: [0, 500]}, {}))
    with EnergyMeter(GPUSelection(named=("1", "GPU-9zzz"))) as meter:
        time.sleep(0.01)
    assert "no GPU 'GPU-9zzz' to meter" in capsys.readouterr().err
    assert (reading := meter.reading()) is not None and [g.uuid for g in reading.gpus] == ["GPU-1bbb-2222"]


def test_a_served_model_meters_nothing_unless_its_gpus_are_named(monkeypatch: pytest.MonkeyPatch) -> None:
    """owb bench/run against a server: the client's GPU 0 is not the server's; only --energy-gpus are metered."""

    class Served:
        def __init__(self, gpus: tuple[str, ...]) -> None:
            self.gpus = gpus

        def endpoint(self) -> object:
            return None

        def local_gpus(self) -> tuple[str, ...]:
            return self.gpus

    monkeypatch.setitem(sys.modules, "pynvml", multi_nvml({0: [0, 100], 1: [0, 2_000], 3: [0, 3_000]}, {}))
    assert engine_gpus(Served(()), EngineRequest()) == GPUSelection()
    with EnergyMeter(engine_gpus(Served(()), EngineRequest())) as meter:
        pass
    assert meter.reading() is None
    with EnergyMeter(engine_gpus(Served(("1", "GPU-3ddd-4444")), EngineRequest())) as meter:
        time.sleep(0.01)
    assert (reading := meter.reading()) is not None and reading.joules == 5.0
    assert engine_gpus(object(), EngineRequest(tp=2, pp=2)) == GPUSelection.visible(4)


def test_idle_baseline_gives_net_joules(monkeypatch: pytest.MonkeyPatch) -> None:
    """An idle span of the counters gives each GPU's idle watts; a level's net joules are its joules less idle
    watts x seconds (gross and net J/token both recorded)."""
    monkeypatch.setitem(sys.modules, "pynvml", multi_nvml({0: [0, 6_000], 1: [0, 4_000]}, {}))
    idle = idle_watts(GPUSelection.visible(2), seconds=0.1)
    assert set(idle) == {"GPU-0aaa-1111", "GPU-1bbb-2222"} and 40 < idle["GPU-0aaa-1111"] < 60
    monkeypatch.setitem(sys.modules, "pynvml", multi_nvml({0: [10_000, 110_000], 1: [0, 50_000]}, {}))
    with EnergyMeter(GPUSelection.visible(2), idle_watts={"GPU-0aaa-1111": 50.0, "GPU-1bbb-2222": 30.0}) as meter:
        time.sleep(0.05)
    reading = meter.reading()
    assert reading is not None and reading.idle_watts == 80.0 and reading.joules == 150.0
    assert reading.net_joules == pytest.approx(150.0 - 80.0 * reading.seconds)
    assert [g.idle_watts for g in reading.gpus] == [50.0, 30.0]
    merged = merge_energy(reading, reading)
    assert merged is not None and merged.joules == 300.0 and merged.net_joules == pytest.approx(2 * reading.net_joules)
