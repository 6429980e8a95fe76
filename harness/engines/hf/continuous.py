"""The transformers throughput path: continuous batching (paged KV cache, CUDA graphs on GPU) over one request group.

Finished sequences free their slot at once instead of idling until the longest row of a static batch ends, and
every token is timestamped, so each request gets its own TTFT, TPOT and inter-token gaps.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from harness.engines.base import GenRequest
from harness.records.sample import Timings


class ContinuousBatchingFailed(RuntimeError):
    """The continuous-batching engine stopped or reported an error; unfinished requests go to the plain path."""


@dataclass(frozen=True)
class Finished:
    """One request's output from the continuous-batching engine, with its perf_counter timestamps."""

    request: GenRequest
    prompt_tokens: int
    token_ids: list[int]
    created: float  # when the request was queued
    started: float  # when it was first scheduled
    token_times: list[float]  # one per generated token


def supports(request: GenRequest) -> bool:
    """Whether transformers' continuous batching honours every setting of this request.

    Unsupported there: sampling (it draws every request from one generator, so a sample would depend on its
    neighbours; sampled requests take the static path, seeded per request), stop strings, repetition and presence
    penalties, and a minimum length short of the maximum (a minimum equal to the maximum is served by switching EOS
    off).
    """
    s = request.sampling
    return (s.greedy and not request.stop and s.repetition_penalty == 1.0 and not s.presence_penalty
            and request.min_new_tokens in (0, request.max_new_tokens))


def generate_continuous(
    model: Any, items: list[tuple[GenRequest, list[int]]], eos_ids: list[int], pad_id: int, max_in_flight: int,
    on_gpu: bool,
) -> Iterator[Finished]:
    """Run one group of requests (same sampling and lengths) through a fresh manager, at most max_in_flight at a
    time; yield each as it finishes."""
    from transformers import ContinuousBatchingConfig, GenerationConfig
    from transformers.generation.continuous_batching.utils import WorkloadHints

    first = items[0][0]
    eos: list[int] | int = -1 if first.min_new_tokens == first.max_new_tokens else eos_ids
    generation_config = GenerationConfig(max_new_tokens=first.max_new_tokens, eos_token_id=eos, pad_token_id=pad_id,
                                         do_sample=False)
    longest = max(len(ids) for _, ids in items)
    hints = WorkloadHints(max_prompt_length=longest, max_generated_length=first.max_new_tokens,
                          num_requests=len(items))
    config = ContinuousBatchingConfig(max_requests_per_batch=max_in_flight,
                                      **({} if on_gpu else _cpu_cache(items, first)))
    prompt_tokens = {request.key: len(ids) for request, ids in items}
    requests = {request.key: request for request, _ in items}
    with model.continuous_batching_context_manager(generation_config=generation_config,
                                                   continuous_batching_config=config, block=True, timeout=5,
                                                   warmup=on_gpu, workload_hints=hints) as manager:
        for request, ids in items:
            manager.add_request(ids, request_id=request.key, max_new_tokens=request.max_new_tokens,
                                record_timestamps=True, eos_token_id=eos)
        pending = set(requests)
        while pending:
            result = manager.get_result(timeout=1)
            if result is None:
                if not manager.is_running():
                    raise ContinuousBatchingFailed("the continuous-batching loop stopped")
                continue
            if result.error:
                raise ContinuousBatchingFailed(str(result.error))
            if not result.is_finished() or result.request_id not in pending:
                continue
            pending.discard(result.request_id)
            request = requests[result.request_id]
            yield Finished(request, prompt_tokens[request.key], list(result.generated_tokens), result.created_time,
                           result.lifespan[0], list(result.timestamps or []))


def _cpu_cache(items: list[tuple[GenRequest, list[int]]], first: GenRequest) -> dict[str, Any]:
    """On CPU, a cache just big enough for every request at once (the default sizes it by free memory)."""
    page = 64
    blocks = sum(math.ceil((len(ids) + first.max_new_tokens) / page) for _, ids in items)
    return {"page_size": page, "num_blocks": blocks + 1}


def timings(done: Finished, n: int) -> Timings:
    """Per-request TTFT (from queueing), TPOT, end-to-end, queue time and inter-token gaps of its first n tokens."""
    times = done.token_times[:n]
    if not times:
        return Timings(scope="request")
    return Timings.measured("request", len(times), times[0] - done.created, times[-1] - done.created,
                            queue_s=max(done.started - done.created, 0.0) if done.started > 0 else None,
                            itl_s=tuple(b - a for a, b in zip(times, times[1:], strict=False)))

