"""Generation time counts what the engine spent: waiting on an in-process engine, wall time for one that generates in the background."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from harness.engines.base import Generation
from harness.records.sample import Timings


@pytest.mark.parametrize("background", [False, True])
def test_generation_time_counts_what_the_engine_spent(background: bool) -> None:
    """In-thread engines: the time spent waiting on them; engines that go on generating while owb scores (vLLM's
    engine process, a server): the wall time, scoring included."""
    import time

    from harness.measure.energy import EnergyMeter
    from harness.pipeline.runner import _timed_batches

    def engine() -> Iterator[Generation]:
        for i in range(4):
            time.sleep(0.05)
            yield Generation(key=str(i), text="", prompt_tokens=1, output_tokens=1, finish_reason="stop",
                             timings=Timings())

    total = 0.0
    with EnergyMeter() as meter:
        for _batch, seconds in _timed_batches(engine(), 2, background, meter):
            total += seconds
            time.sleep(0.1)  # scoring the batch
    assert (0.3 <= total < 0.45) if background else (0.2 <= total < 0.3)
