"""Greedy batch-1 decoding on a static KV cache without `generate`'s per-step overhead (gpt-fast style).

The decode step is compiled once (torch.compile, CUDA graphs on GPU), tokens stay on the device, and EOS is looked
for every EOS_CHECK_EVERY steps instead of after each, so the CPU queues steps ahead of the GPU instead of waiting
for it: batch-1 decode becomes bound by reading the weights, not by Python and kernel launches.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import torch
from transformers import StaticCache

from harness.engines.base import GenRequest
from harness.records.sample import Timings

EOS_CHECK_EVERY = 8
CACHE_ROUNDING = 256  # cache lengths are rounded up so that a slightly longer request reuses the compiled step


@dataclass(frozen=True)
class Decoded:
    """The tokens of one request (up to EOS, or a few past it) and its timings in seconds from the start."""

    token_ids: list[int]
    ttft_s: float
    step_s: float  # mean time of one decode step after the first token

    def timings(self, n: int) -> Timings:
        """Timings of the first n tokens (steps run past EOS before it was seen are not counted)."""
        return Timings.measured("request", n, self.ttft_s, self.ttft_s + self.step_s * (n - 1))


def supports(request: GenRequest) -> bool:
    """Greedy, no stop strings, no penalties, and EOS either allowed from the start or off to the end."""
    s = request.sampling
    return (s.greedy and not request.stop and s.repetition_penalty == 1.0 and not s.presence_penalty
            and request.min_new_tokens in (0, request.max_new_tokens))


class StaticDecoder:
    """One model's static cache and compiled decode step, reused from request to request."""

    def __init__(self, model: Any, compile_step: bool) -> None:
        self.model = model
        self.cache: StaticCache | None = None
        self.cache_len = 0
        self.compiled = compile_step
        self.step = torch.compile(model.__call__, mode="reduce-overhead") if compile_step else model.__call__

    def _cache_for(self, length: int) -> StaticCache:
        if self.cache is None or self.cache_len < length:
            self.cache_len = -(-length // CACHE_ROUNDING) * CACHE_ROUNDING
            self.cache = StaticCache(config=self.model.config, max_cache_len=self.cache_len)
        else:
            self.cache.reset()
        return self.cache

    @torch.inference_mode()
    def decode(self, prompt_ids: list[int], request: GenRequest, eos_ids: list[int]) -> Decoded:
        """Greedy tokens for one prompt; EOS is masked throughout when min_new_tokens == max_new_tokens."""
        exact = request.min_new_tokens == request.max_new_tokens
        device = self.model.device
        cache = self._cache_for(len(prompt_ids) + request.max_new_tokens)
        out = torch.empty(request.max_new_tokens, dtype=torch.long, device=device)
        eos = torch.tensor(eos_ids, dtype=torch.long, device=device)
        start = time.perf_counter()
        logits = self.model(input_ids=torch.tensor([prompt_ids], device=device), past_key_values=cache,
                            use_cache=True, logits_to_keep=1).logits[:, -1].float()
        bias = torch.zeros(logits.shape[-1], device=device)
        if exact:
            bias[eos] = float("-inf")
        token = (logits + bias).argmax(-1, keepdim=True)
        out[:1] = token[0]
        first_is_eos = bool(torch.isin(token, eos).any())  # reading it waits for the prefill
        stop = first_is_eos and not exact
        first = time.perf_counter()
        n = 1
        while n < request.max_new_tokens and not stop:
            if self.compiled:  # a new CUDA-graph replay may overwrite the last one's outputs (none is kept)
                torch.compiler.cudagraph_mark_step_begin()
            step = self.step(input_ids=token, past_key_values=cache, use_cache=True, logits_to_keep=1)
            token = (step.logits[:, -1].float() + bias).argmax(-1, keepdim=True)
            del step
            out[n : n + 1] = token[0]
            n += 1
            if not exact and n % EOS_CHECK_EVERY == 0:
                stop = bool(torch.isin(out[n - EOS_CHECK_EVERY : n], eos).any())
        tokens = out[:n].tolist()  # waits for the last step
        last = time.perf_counter()
        return Decoded(tokens, first - start, (last - first) / (n - 1) if n > 1 else 0.0)
