"""Timing one path: wall seconds with the GPU's queued work included, medians of the timed runs, and an error recorded
instead of raised so one failed path does not lose the others."""

from __future__ import annotations

import statistics
import time
import traceback
from collections.abc import Callable, Sequence
from typing import Any

from benchmarks.gpu_suite.record import PathResult


def sync() -> None:
    """Wait for the GPU's queued work (nothing on a CPU)."""
    import torch

    if torch.cuda.is_available():
        torch.cuda.synchronize()


def timed(run: Callable[[], Any]) -> tuple[float, Any]:
    """Seconds one call takes, the GPU's queued work included, and what it returned."""
    sync()
    start = time.perf_counter()
    out = run()
    sync()
    return time.perf_counter() - start, out


def tokens_of(out: Any) -> int:
    """Output tokens in what a path returned: a count, owb Generations or vLLM RequestOutputs."""
    if isinstance(out, int):
        return out
    return sum(g.output_tokens if hasattr(g, "output_tokens") else len(g.outputs[0].token_ids) for g in out)


def median_of(values: Sequence[float | None]) -> float | None:
    """The median of the values that were measured (None for none)."""
    known = [v for v in values if v is not None]
    return statistics.median(known) if known else None


def summary(runs_s: list[float], out: Any, warmup_s: float | None) -> PathResult:
    """Median seconds, output tokens and tokens/s of a path, with owb's per-request TTFT/TPOT medians where the
    path returned owb Generations."""
    seconds = statistics.median(runs_s)
    tokens = tokens_of(out)
    result = PathResult(wall_s=seconds, runs_s=runs_s, output_tokens=tokens, output_tokens_per_s=tokens / seconds,
                        warmup_s=warmup_s)
    if out and not isinstance(out, int) and hasattr(out[0], "timings"):
        result.ttft_p50_s = median_of([g.timings.ttft_s for g in out])
        result.tpot_p50_s = median_of([g.timings.tpot_s for g in out])
    return result


def failure(exc: Exception) -> str:
    """An exception as one line for a record (its traceback printed to the log)."""
    traceback.print_exc()
    return f"{type(exc).__name__}: {exc}"[:500]


def measure(run: Callable[[], Any], warm: Callable[[], Any] | None, kept: Callable[[], bool] | None = None
            ) -> PathResult:
    """One path: an untimed warm-up, then one timed run; whether an owb fast path stayed on (it switches itself off
    when it fails) and the warnings it gave; an error is recorded instead of raised."""
    from harness.core.log import warnings_to

    said: list[str] = []
    try:
        with warnings_to(said.append):
            warmup_s = timed(warm)[0] if warm else None
            seconds, out = timed(run)
    except Exception as exc:  # noqa: BLE001 - one failed path must not lose the others
        return PathResult(error=failure(exc))
    result = summary([seconds], out, warmup_s)
    if kept is not None:
        result.fast_path_kept = kept()
    if said:
        result.warnings = said
    return result
