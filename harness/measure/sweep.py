"""`owb bench --sweep`: the highest request rate (or concurrency) at which a target share of requests meets every
service-level objective, by bisection with repeats (as EvalScope's SLA auto-tune and GuideLLM's sweep search)."""

from __future__ import annotations

import statistics
from collections.abc import Callable
from typing import Literal

from harness.records.bench import SweepProbe, SweepResult

Probe = Callable[[float], float]
"""Runs the workload at one request rate or concurrency; returns the share of requests meeting every objective."""


def bisect(probe: Probe, over: Literal["request_rate", "max_concurrency"], low: float, high: float, goodput: str,
           target: float = 0.9, repeats: int = 3, steps: int = 5) -> SweepResult:
    """Probe `high` (met: the answer is at least that), then `low` (not met: there is none), then bisect between the
    highest point met and the lowest not met `steps` times (integers for a concurrency). A point is met when the
    median attainment of `repeats` runs reaches `target`."""
    if not 0 < low < high or repeats < 1 or steps < 0 or not 0 < target <= 1:
        raise ValueError("a sweep needs 0 < low < high, repeats >= 1, steps >= 0 and 0 < target <= 1")
    integer = over == "max_concurrency"
    probes: list[SweepProbe] = []

    def met(value: float) -> bool:
        shares = [probe(value) for _ in range(repeats)]
        probes.append(SweepProbe(value=value, attainment=shares, met=statistics.median(shares) >= target))
        return probes[-1].met

    def result(best: float | None) -> SweepResult:
        return SweepResult(over=over, goodput=goodput, target_attainment=target, repeats=repeats, best=best,
                           probes=probes)

    if met(high):
        return result(high)
    if not met(low):
        return result(None)
    good, bad = low, high
    for _ in range(steps):
        mid = (good + bad) // 2 if integer else (good + bad) / 2
        if mid in (good, bad):
            break
        if met(mid):
            good = mid
        else:
            bad = mid
    return result(good)
