"""Plain transformers `generate` beside owb's hf fast paths (the static path's compiled decode loop, continuous
batching) on one random-weight model of a card's shape, at batch 1 and at `batch` over all prompts."""

from __future__ import annotations

import time
from typing import Any

from benchmarks.gpu_suite.profile import Ctx
from benchmarks.gpu_suite.record import HfBatch1, HfBatched, HfResult, PathResult, Recorder
from benchmarks.gpu_suite.steps.common import decode_info, on_device, plain_generate, requests, use_fast_path
from benchmarks.gpu_suite.timing import measure

NAME = "hf"
TIME_S: tuple[float, float] = (60, 360)
PER_MODEL = True
CONTINUOUS_BATCH1 = ("not a path of its own: a lone request takes the static path's compiled decode loop "
                     "(HFBackend.generate sends only groups of 2+ requests to continuous batching)")


def run(ctx: Ctx, rec: Recorder, label: str) -> None:
    """Load the model of `label`'s shape once, then time every path at batch 1 and batched."""
    from harness.engines.base import EngineRequest
    from harness.engines.registry import make_backend

    card = ctx.card(label)
    start = time.perf_counter()
    with on_device(ctx.device):
        backend: Any = make_backend("hf", card, EngineRequest(batch_size=ctx.batch, random_weights=True),
                                    {"fast_path": "static", "device": ctx.device})
    first = ctx.prompt_ids[0]
    result = HfResult(card=card.id, device=backend.device, dtype=backend.dtype, load_s=time.perf_counter() - start,
                      prompt_len=len(first),
                      decode_bytes=decode_info(backend.model_path, backend.dtype, len(first) + ctx.batch1_tokens // 2))
    rec.data.hf = {label: result}
    rec.save()
    one = batch1(ctx, rec, backend, result)
    many = batched(ctx, rec, backend, result)
    speedups(rec, one, many)
    backend.close()


def batch1(ctx: Ctx, rec: Recorder, backend: Any, result: HfResult) -> HfBatch1:
    """The first prompt alone: plain `generate`, then owb's compiled decode loop (saved after each)."""
    first, tokens = ctx.prompt_ids[0], ctx.batch1_tokens
    model, one = backend.model, requests([first], tokens, "b1-")
    found = HfBatch1(plain_generate=measure(lambda: plain_generate(model, [first], 1, tokens),
                                            lambda: plain_generate(model, [first], 1, 8)))
    result.batch1 = found
    rec.save()
    use_fast_path(backend, "static")
    found.owb_static = measure(lambda: list(backend.generate(one)), lambda: list(backend.generate(one)),
                               lambda: backend.lean)
    rec.save()
    found.owb_continuous = PathResult(skipped=CONTINUOUS_BATCH1)
    rec.save()
    return found


def batched(ctx: Ctx, rec: Recorder, backend: Any, result: HfResult) -> HfBatched:
    """All prompts, `batch` at a time: plain `generate`, owb's static path, owb's continuous batching."""
    n, model = ctx.output_len, backend.model
    found = HfBatched(batch=ctx.batch, prompts=len(ctx.prompt_ids), output_len=n)
    result.batched = found
    rec.save()
    found.plain_generate = measure(lambda: plain_generate(model, ctx.prompt_ids, ctx.batch, n),
                                   lambda: plain_generate(model, ctx.prompt_ids[: ctx.batch], ctx.batch, 8))
    rec.save()
    every = requests(ctx.prompt_ids, n)
    longest = sorted(every, key=lambda r: len(r.prompt_ids or ()))[-ctx.batch :]  # the same cache shape: no recompile
    use_fast_path(backend, "static")
    found.owb_static = measure(lambda: list(backend.generate(every)), lambda: list(backend.generate(longest)),
                               lambda: backend.static)
    rec.save()
    use_fast_path(backend, "continuous")
    warm = requests(ctx.prompt_ids[: ctx.batch], max(8, n // 8), "w")
    found.owb_continuous = measure(lambda: list(backend.generate(every)), lambda: list(backend.generate(warm)),
                                   lambda: backend.continuous)
    rec.save()
    return found


def speedups(rec: Recorder, one: HfBatch1, many: HfBatched) -> None:
    """Each owb path's tokens/s over plain `generate`'s, batched (both paths) and at batch 1 (the static path)."""
    plain = many.plain_generate.output_tokens_per_s if many.plain_generate else None
    for path in (many.owb_static, many.owb_continuous):
        if plain and path is not None and path.output_tokens_per_s is not None:
            path.speedup_vs_plain = path.output_tokens_per_s / plain
            rec.save()
    one_plain = one.plain_generate.output_tokens_per_s if one.plain_generate else None
    one_fast = one.owb_static.output_tokens_per_s if one.owb_static else None
    if one_plain and one_fast and one.owb_static is not None:
        one.owb_static.speedup_vs_plain = one_fast / one_plain
        rec.save()
