"""Memory bandwidth (harness.measure.roofline.memory_bandwidth) and the environment (versions, GPU)."""

from __future__ import annotations

from benchmarks.gpu_suite.profile import Ctx
from benchmarks.gpu_suite.record import Bandwidth, Recorder
from harness.records.base import Environment

NAME = "bandwidth"
TIME_S: tuple[float, float] = (15, 60)
PER_MODEL = False


def run(ctx: Ctx, rec: Recorder, label: str) -> None:
    """Record the environment, then the device's copy bandwidth (`label` unused: no model)."""
    from harness.measure.environment import environment
    from harness.measure.roofline import memory_bandwidth

    # Validated from its dump, so every field counts as set and suite.json keeps them all.
    rec.data.environment = Environment.model_validate(environment().model_dump())
    rec.save()
    bandwidth = memory_bandwidth(ctx.device)
    rec.data.bandwidth = Bandwidth(device=ctx.device, bytes_per_s=bandwidth, gb_s=bandwidth / 1e9,
                                   method="median of 5 device-to-device copies, bytes read + written")
    rec.save()
