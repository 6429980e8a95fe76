"""`owb bench`: fixed-length load (exact input lengths, EOS ignored), warm-up excluded, a concurrency sweep, and the
roofline of batch-1 decode."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from harness.config.cards import ModelCard, Sampling, load_card
from harness.core.errors import ConfigError
from harness.core.hashing import stable_hash
from harness.engines.base import Backend, EngineRequest, Generation, GenRequest
from harness.engines.registry import backend_class, make_backend
from harness.measure.energy import EnergyMeter, joules_per_token
from harness.measure.environment import environment
from harness.measure.roofline import roofline
from harness.records.base import EnergyReading, Percentiles, new_id, utc_now
from harness.records.bench import BenchLevel, BenchModel, BenchParams, BenchRecord
from harness.records.store import write_bench


@dataclass(frozen=True)
class BenchOptions:
    """What `owb bench` was asked for."""

    model: str
    backend: str = "hf"
    input_len: int = 128
    output_len: int = 128
    concurrency: tuple[int, ...] = (1, 8, 64)
    num_prompts: int = 64
    output: str = "runs/bench"
    random_weights: bool = False
    seed: int = 0
    dtype: str | None = None
    backend_args: dict[str, Any] = field(default_factory=dict)


def _prompts(rng: np.random.Generator, count: int, length: int, vocab: int,
             special: frozenset[int]) -> list[tuple[int, ...]]:
    allowed = np.array([i for i in range(vocab) if i not in special])
    return [tuple(int(t) for t in rng.choice(allowed, size=length)) for _ in range(count)]


def _level(gens: list[Generation], wall_s: float, concurrency: int, energy: EnergyReading | None) -> BenchLevel:
    prompt_tokens = sum(g.prompt_tokens for g in gens)
    output_tokens = sum(g.output_tokens for g in gens)
    return BenchLevel(
        energy=energy,
        joules_per_output_token=joules_per_token(energy.joules if energy else None, output_tokens),
        concurrency=concurrency,
        requests=len(gens),
        wall_s=wall_s,
        request_throughput=len(gens) / wall_s,
        output_tokens_per_s=output_tokens / wall_s,
        total_tokens_per_s=(prompt_tokens + output_tokens) / wall_s,
        prompt_tokens=prompt_tokens,
        output_tokens=output_tokens,
        ttft_s=Percentiles.of([g.timings.ttft_s for g in gens]),
        tpot_s=Percentiles.of([g.timings.tpot_s for g in gens]),
        e2e_s=Percentiles.of([g.timings.e2e_s for g in gens]),
        itl_s=Percentiles.of([gap for g in gens for gap in g.timings.itl_s]),  # pooled token/chunk gaps where measured
        timing_scope=gens[0].timings.scope if gens else None,
    )


def _open(card: ModelCard, opts: BenchOptions) -> Backend:
    if not backend_class(opts.backend).measures_speed:
        raise ConfigError(f"owb bench cannot measure backend '{opts.backend}' (it does not run a model)")
    request = EngineRequest(batch_size=max(opts.concurrency), dtype=opts.dtype, random_weights=opts.random_weights,
                            max_model_len=opts.input_len + opts.output_len, prefix_caching=False)
    return make_backend(opts.backend, card, request, opts.backend_args)


def bench(opts: BenchOptions) -> Path:
    """Run the sweep and write <output>/<bench_id>/bench.json; returns that file."""
    card = load_card(opts.model)
    if opts.input_len < 1 or opts.output_len < 2 or opts.num_prompts < 1 or min(opts.concurrency) < 1:
        raise ConfigError("--input-len >= 1, --output-len >= 2, --num-prompts >= 1 and concurrency >= 1 are needed")
    backend = _open(card, opts)
    try:
        described = backend.describe()
        vocab, special = backend.vocab()
        rng = np.random.default_rng(opts.seed)
        levels = []
        for c in opts.concurrency:
            # Fresh random prompts per level (and for the warm-up), so no prefix cache can help.
            warm = _prompts(rng, min(c, opts.num_prompts), opts.input_len, vocab, special)
            prompts = _prompts(rng, opts.num_prompts, opts.input_len, vocab, special)
            list(backend.generate(_requests(warm, opts, "warmup")))
            start = time.perf_counter()
            gens: list[Generation] = []
            with EnergyMeter() as meter:
                for first in range(0, len(prompts), c):
                    gens += backend.generate(_requests(prompts[first : first + c], opts, f"c{c}-{first}"))
            levels.append(_level(gens, time.perf_counter() - start, c, meter.reading()))
    finally:
        backend.close()
    # The roofline needs the weights in this process: a served model's memory is on another machine.
    model_dir = described.args.get("model_path")
    context = opts.input_len + opts.output_len // 2  # the mean context over a request's decode steps
    roof = roofline(described, Path(model_dir), levels, context) if model_dir and Path(model_dir).is_dir() else None
    bench_id = new_id(card.id, opts.backend, "bench")
    record = BenchRecord(
        bench_id=bench_id,
        created_at=utc_now(),
        model=BenchModel(id=card.id, card_hash=stable_hash(card.model_dump(mode="json")),
                         path=str(model_dir or described.args.get("served_model") or ""),
                         random_weights=opts.random_weights),
        backend=described,
        environment=environment(),
        params=BenchParams(input_len=opts.input_len, output_len=opts.output_len, num_prompts=opts.num_prompts,
                           concurrency=list(opts.concurrency), ignore_eos=True,
                           warmup="one wave per level, excluded", seed=opts.seed),
        roofline=roof,
        levels=levels,
    )
    path = Path(opts.output) / bench_id / "bench.json"
    write_bench(path, record)
    return path


def _requests(prompts: list[tuple[int, ...]], opts: BenchOptions, tag: str) -> list[GenRequest]:
    return [GenRequest(f"{tag}-{i}", "", Sampling(), opts.output_len, opts.seed + i, (), opts.output_len, ids)
            for i, ids in enumerate(prompts)]
