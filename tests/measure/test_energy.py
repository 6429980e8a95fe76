"""Energy: the arithmetic on recorded traces (constant power, ramps, irregular spacing, a counter that wraps), the
per-token and per-correct-answer helpers, and EnergyMeter driven end to end by a fake NVML module."""

from __future__ import annotations

import sys
import time
import types
from types import SimpleNamespace

import pytest

from harness.measure.energy import EnergyMeter, counter_delta, integrate_power, joules_per_correct, joules_per_token


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
    with EnergyMeter(device_index=3) as meter:
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
