"""Raw vLLM `LLM.generate` beside owb's vLLM backend on the same engine (random weights, prefix caching off): all
prompts in flight, then one request alone; timed runs interleaved, medians compared."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from typing import Any

from benchmarks.gpu_suite.profile import Ctx
from benchmarks.gpu_suite.record import Recorder, VllmResult, VllmScope
from benchmarks.gpu_suite.steps.common import decode_info, requests
from benchmarks.gpu_suite.timing import summary, timed

NAME = "vllm"
TIME_S: tuple[float, float] = (100, 300)
PER_MODEL = True


def run(ctx: Ctx, rec: Recorder, label: str) -> None:
    """Start one engine of `label`'s shape through owb's backend, then time both paths batched and at batch 1."""
    from harness.engines.base import EngineRequest
    from harness.engines.registry import make_backend

    card = ctx.card(label)
    start = time.perf_counter()
    backend: Any = make_backend("vllm", card, EngineRequest(batch_size=len(ctx.prompt_ids), random_weights=True,
                                                            prefix_caching=False, max_model_len=ctx.max_model_len),
                                dict(ctx.vllm_args))
    first = ctx.prompt_ids[0]
    args = backend.engine_args
    result = VllmResult(card=card.id, engine_start_s=time.perf_counter() - start, prompt_len=len(first),
                        engine_args=json.loads(json.dumps(args, default=str)),  # as suite.json has always held them
                        decode_bytes=decode_info(args["model"], str(args["dtype"]),
                                                 len(first) + ctx.batch1_tokens // 2))
    rec.data.vllm = {label: result}
    rec.save()
    raw = raw_generate(backend)
    every, one = requests(ctx.prompt_ids, ctx.output_len), requests([first], ctx.batch1_tokens, "b1-")
    warm_s = timed(lambda: (raw(ctx.prompt_ids[:8], ctx.output_len), list(backend.generate(every[:8]))))[0]
    result.batched = compare(ctx.repeats, lambda: raw(ctx.prompt_ids, ctx.output_len),
                             lambda: list(backend.generate(every)), warm_s, len(every))
    rec.save()
    result.batch1 = compare(ctx.repeats, lambda: raw([first], ctx.batch1_tokens),
                            lambda: list(backend.generate(one)), None, 1)
    rec.save()
    backend.close()


def raw_generate(backend: Any) -> Callable[[Sequence[Sequence[int]], int], list[Any]]:
    """Raw `LLM.generate` on the backend's engine: greedy, exactly `tokens` new tokens."""
    from vllm import SamplingParams

    def raw(prompts: Sequence[Sequence[int]], tokens: int) -> list[Any]:
        """The prompts through `LLM.generate`."""
        params = SamplingParams(temperature=0.0, max_tokens=tokens, min_tokens=tokens)
        outputs: list[Any] = backend.llm.generate([{"prompt_token_ids": list(p)} for p in prompts], params,
                                                  use_tqdm=False)
        return outputs

    return raw


def compare(repeats: int, raw: Callable[[], Any], owb: Callable[[], Any], warm_s: float | None,
            n_requests: int) -> VllmScope:
    """Both paths timed `repeats` times, interleaved so drift hits both alike; medians and owb's overhead."""
    raw_runs: list[float] = []
    owb_runs: list[float] = []
    raw_out = owb_out = None
    for _ in range(repeats):
        seconds, raw_out = timed(raw)
        raw_runs.append(seconds)
        seconds, owb_out = timed(owb)
        owb_runs.append(seconds)
    raw_result, owb_result = summary(raw_runs, raw_out, warm_s), summary(owb_runs, owb_out, warm_s)
    raw_s, owb_s = raw_result.wall_s, owb_result.wall_s
    assert raw_s is not None and owb_s is not None
    return VllmScope(raw=raw_result, owb=owb_result, requests=n_requests,
                     owb_overhead_pct=100 * (owb_s - raw_s) / raw_s)
