"""Speed of a task or run from its samples: token totals, output tokens/s over generation time, and latency
percentiles."""

from __future__ import annotations

from collections.abc import Sequence

from harness.records.base import Percentiles
from harness.records.run import PerfSummary, RunRecord
from harness.records.sample import SampleStats


def aggregate_perf(samples: Sequence[SampleStats], wall_s: float) -> PerfSummary:
    """Token totals, output tokens/s over generation wall time, and ttft/tpot/e2e percentiles."""
    output_tokens = sum(s.output_tokens for s in samples)
    scopes: list[str] = sorted({s.timing_scope for s in samples})
    return PerfSummary(
        wall_s=wall_s,
        prompt_tokens=sum(s.prompt_tokens for s in samples),
        output_tokens=output_tokens,
        reasoning_tokens=sum(s.reasoning_tokens for s in samples),
        answer_tokens=sum(s.answer_tokens for s in samples),
        output_tokens_per_s=output_tokens / wall_s if wall_s > 0 and output_tokens else None,
        ttft_s=Percentiles.of([s.ttft_s for s in samples]),
        tpot_s=Percentiles.of([s.tpot_s for s in samples]),
        e2e_s=Percentiles.of([s.e2e_s for s in samples]),
        timing_scope=scopes[0] if len(scopes) == 1 else scopes,
    )


def run_output_tokens_per_s(record: RunRecord) -> float | None:
    """Output tokens per second of a whole run: all tasks' output tokens over all their generation time."""
    perfs = [task.perf for task in record.tasks.values() if task.perf is not None]
    out = sum(p.output_tokens for p in perfs)
    wall = sum(p.wall_s for p in perfs)
    return out / wall if wall > 0 and out else None
