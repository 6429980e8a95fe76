"""What `owb bench` sends and how a level's figures are computed: the workload (exact-length random token ids, or a
run's prompts and output lengths), each request's measured figures, and the level in `vllm bench serve`'s keys and
units, computed as vLLM's `calculate_metrics` does (completed requests only; TPOT over outputs longer than one
token; ITL pooled over every gap; goodput against the objectives)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from harness.core.errors import ConfigError
from harness.engines.base import Generation
from harness.engines.load import Latency, LoadShape, Slo, good_requests
from harness.engines.stream import Outcome
from harness.records.bench import LATENCIES, BenchLevel, Mode, Rate, Scope, TokenSource
from harness.records.sample import TimingScope
from harness.records.store import RunDir


@dataclass(frozen=True)
class Item:
    """One request of a workload: its prompt (exact token ids, or a rendered prompt's text) and output length."""

    key: str
    prompt: tuple[int, ...] | str
    input_len: int | None  # exact where the prompt is token ids or the run recorded it
    output_len: int


def random_workload(rng: np.random.Generator, tag: str, count: int, input_len: int, output_len: int, vocab: int,
                    special: frozenset[int]) -> list[Item]:
    """`count` prompts of exactly `input_len` token ids drawn uniformly from the non-special vocabulary (fresh ids,
    so no prefix cache can help), each asking for `output_len` tokens."""
    allowed = np.array([i for i in range(vocab) if i not in special])
    return [Item(f"{tag}-{i}", tuple(int(t) for t in rng.choice(allowed, size=input_len)), input_len, output_len)
            for i in range(count)]


def run_workload(run_path: Path, limit: int | None) -> list[Item]:
    """A finished run's samples as a workload: each sample's prompt as it was sent and its output length (at least
    one token), in task and key order; the first `limit` when given."""
    run_dir = RunDir(run_path)
    if not run_dir.run_json.is_file():
        raise ConfigError(f"--from-run {run_path}: not a run directory (no run.json)")
    items = [Item(s.key, s.prompt, s.prompt_tokens or None, max(1, s.output_tokens))
             for task in run_dir.read_run().tasks
             for s in sorted(run_dir.samples(task).records(), key=lambda s: s.key)]
    if not items:
        raise ConfigError(f"--from-run {run_path}: the run has no samples yet")
    return items[:limit] if limit else items


@dataclass(frozen=True)
class Measured:
    """One request as a level records it, in seconds; `error` is "" for a completed request."""

    input_len: int
    output_len: int
    source: TokenSource
    ttft: float | None = None
    ttft_content: float | None = None
    itl: list[float] = field(default_factory=list)
    latency: float | None = None
    start: float | None = None
    queue: float | None = None
    error: str = ""


def from_outcome(item: Item, outcome: Outcome, count_tokens: Callable[[str], int]) -> Measured:
    """A served request: input tokens from usage (else the prompt's length), output tokens from usage, else the
    text re-tokenised locally (the source says which); a failed request keeps its error and no output."""
    input_len = outcome.prompt_tokens or item.input_len or 0
    if not outcome.ok:
        return Measured(input_len, 0, "usage", start=outcome.start_s, queue=outcome.queue_s, error=outcome.error or "")
    usage = outcome.output_tokens is not None
    output_len = outcome.output_tokens if outcome.output_tokens is not None else count_tokens(outcome.text)
    return Measured(input_len, output_len, "usage" if usage else "retokenized", outcome.ttft_s,
                    outcome.ttft_content_s, list(outcome.itl_s), outcome.latency_s, outcome.start_s, outcome.queue_s)


def from_generation(gen: Generation, start: float) -> Measured:
    """A request of an in-process engine: its own token counts and timings (the engine's clocks, or its batch's)."""
    t = gen.timings
    return Measured(gen.prompt_tokens, gen.output_tokens, "engine", t.ttft_s, None, list(t.itl_s), t.e2e_s, start,
                    t.queue_s)


def engine_scope(scopes: Sequence[TimingScope]) -> Scope:
    """The scope of an in-process engine's figures: its batch's shared timings, else its own clocks."""
    return "batch" if "batch" in scopes else "engine"


def _stats(name: str, values: Sequence[float], percentiles: Sequence[float]) -> dict[str, float | None]:
    """vLLM's mean, median, std and percentiles of one latency in milliseconds (None where nothing was measured)."""
    keys = ["mean", "median", "std", *(f"p{int(p) if float(p).is_integer() else p}" for p in percentiles)]
    if not values:
        return {f"{k}_{name}_ms": None for k in keys}
    ms = 1000 * np.asarray(values, dtype=float)
    figures = [np.mean(ms), np.median(ms), np.std(ms), *(np.percentile(ms, p) for p in percentiles)]
    return {f"{k}_{name}_ms": float(v) for k, v in zip(keys, figures, strict=True)}


@dataclass(frozen=True)
class LevelSpec:
    """How a level was run: its mode and load, the scope of its clocks, the statistics and objectives asked for."""

    mode: Mode
    load: LoadShape
    scope: Scope
    percentiles: Sequence[float]
    slo: Slo | None


def level_record(spec: LevelSpec, requests: Sequence[Measured], duration: float) -> BenchLevel:
    """A level's aggregates, statistics and per-request arrays under vLLM's names (failed requests stay in the
    arrays and the duration but out of every statistic)."""
    done = [r for r in requests if not r.error]
    out = sum(r.output_len for r in done)
    inp = sum(r.input_len for r in done)
    latencies = [Latency(r.ttft, r.latency, r.output_len) for r in done if r.ttft is not None and r.latency is not None]
    good = good_requests(spec.slo, latencies) if spec.slo is not None else None
    series: dict[str, list[float]] = {
        "ttft": [r.ttft for r in done if r.ttft is not None],
        "ttft_content": [r.ttft_content for r in done if r.ttft_content is not None],
        "tpot": [x.tpot_s for x in latencies if x.output_tokens > 1],
        "itl": [gap for r in done for gap in r.itl],
        "e2el": [r.latency for r in done if r.latency is not None],
        "client_queue_time": [r.queue for r in done if r.queue is not None],
    }
    stats: dict[str, float | None] = {}
    for name in LATENCIES:
        stats.update(_stats(name, series[name], spec.percentiles))
    rate: Rate = "inf" if spec.load.request_rate is None else spec.load.request_rate
    return BenchLevel(
        mode=spec.mode, max_concurrency=spec.load.max_concurrency, request_rate=rate,
        burstiness=spec.load.burstiness, scope=spec.scope, duration=duration, completed=len(done),
        failed=len(requests) - len(done), total_input_tokens=inp, total_output_tokens=out,
        request_throughput=len(done) / duration, request_goodput=None if good is None else good / duration,
        output_throughput=out / duration, total_token_throughput=(inp + out) / duration,
        input_lens=[r.input_len for r in requests], output_lens=[r.output_len for r in requests],
        output_len_sources=[r.source for r in requests], ttfts=[r.ttft for r in requests],
        ttfts_content=[r.ttft_content for r in requests], itls=[r.itl for r in requests],
        latencies=[r.latency for r in requests], start_times=[r.start for r in requests],
        queue_times=[r.queue for r in requests], errors=[r.error for r in requests], **stats)  # type: ignore[arg-type]


def attainment(level: BenchLevel, slo: Slo) -> float:
    """The share of a level's requests (failed ones included) that met every objective."""
    sent = level.completed + level.failed
    done = [Latency(t, e, n) for t, e, n, err in zip(level.ttfts, level.latencies, level.output_lens, level.errors,
                                                    strict=True) if not err and t is not None and e is not None]
    return good_requests(slo, done) / sent if sent else 0.0
