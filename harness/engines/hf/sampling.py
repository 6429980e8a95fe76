"""Decoding the transformers backend does itself, so that it means what run.json records: vLLM's presence penalty,
and sampling each row from its own seeded generator (a sample's text never depends on its batch).

`generate` runs custom logits processors before its own temperature / top-k / top-p / min-p warpers and samples
every row from one global generator. So a sampled batch is decoded greedily by `generate` while `SeededSampler`,
the last processor, applies the warpers in vLLM's order, draws each row's token from that row's generator and
leaves only the drawn token: greedy decoding then picks exactly it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import cast

import torch
from transformers import (
    LogitsProcessor,
    LogitsProcessorList,
    MinPLogitsWarper,
    TemperatureLogitsWarper,
    TopKLogitsWarper,
    TopPLogitsWarper,
)

from harness.config.cards import Sampling


class PresencePenalty(LogitsProcessor):
    """Subtract `penalty` from the logit of every token already generated in the row (not the prompt), as
    vLLM's and OpenAI's presence_penalty does."""

    def __init__(self, penalty: float, prompt_len: int) -> None:
        self.penalty = penalty
        self.prompt_len = prompt_len

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        generated = input_ids[:, self.prompt_len:]
        if generated.shape[1] == 0:
            return scores
        seen = torch.zeros_like(scores, dtype=torch.bool).scatter_(1, generated, True)
        return cast(torch.FloatTensor, scores - self.penalty * seen.to(scores.dtype))


class SeededSampler(LogitsProcessor):
    """Temperature, top-k, top-p and min-p, then one draw per row from the row's own generator; every other token
    is masked, so `generate`'s greedy step emits the drawn token."""

    def __init__(self, sampling: Sampling, seeds: Sequence[int]) -> None:
        warpers: list[LogitsProcessor] = [TemperatureLogitsWarper(sampling.temperature)]
        if sampling.top_k > 0:
            warpers.append(TopKLogitsWarper(sampling.top_k))
        if sampling.top_p < 1.0:
            warpers.append(TopPLogitsWarper(sampling.top_p))
        if sampling.min_p > 0:
            warpers.append(MinPLogitsWarper(sampling.min_p))
        self.warpers = LogitsProcessorList(warpers)
        self.generators = [torch.Generator().manual_seed(seed) for seed in seeds]

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        probs = torch.softmax(self.warpers(input_ids, scores).float(), dim=-1)
        cdf = probs.cumsum(dim=-1)
        draws = torch.cat([torch.rand(1, generator=g) for g in self.generators]).to(cdf.device)
        # The first token whose cumulative probability exceeds the draw (scaled to the row's total, so rounding
        # in the cumulative sum can never pick past the last token, nor a token of probability 0).
        picks = torch.searchsorted(cdf, (draws * cdf[:, -1]).unsqueeze(-1).contiguous(), right=True).squeeze(-1)
        picks = picks.clamp(max=scores.shape[-1] - 1)
        return cast(torch.FloatTensor, torch.full_like(scores, float("-inf")).scatter_(1, picks.unsqueeze(-1), 0.0))
