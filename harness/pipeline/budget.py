"""Generation under a thinking budget, in two phases on every backend (no engine here stops and resumes inside one
request): the first generates at most N tokens; an output that closed its think block and finished is done; one
that closed it and is still answering continues; one still thinking at N tokens gets the closing phrase appended,
and the second phase generates the answer from prompt + thinking + phrase within the remaining token budget."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Sequence

from harness.config.cards import ModelCard
from harness.engines.base import Backend, Generation, GenRequest
from harness.records.sample import Timings
from harness.tasks.budget import closing


def _continuation(gen: Generation, card: ModelCard, budget: int) -> str | None:
    """What joins the first phase to the second: None (the output is finished), "" (it closed its thinking and
    is still answering) or the closing phrase (it was still thinking at the budget)."""
    if gen.finish_reason != "length" or gen.output_tokens < budget:
        return None
    end = card.reasoning.think_end
    return "" if end is not None and end in gen.text else closing(card)


def _joined(first: Generation, bridge: str, second: Generation) -> Generation:
    t1, t2 = first.timings, second.timings
    e2e = (t1.e2e_s or 0.0) + (t2.e2e_s or 0.0) if t1.e2e_s is not None and t2.e2e_s is not None else None
    n = first.output_tokens + second.output_tokens
    return Generation(key=first.key, text=first.text + bridge + second.text, prompt_tokens=first.prompt_tokens,
                      output_tokens=n, finish_reason=second.finish_reason,
                      timings=Timings.measured(t1.scope, n, t1.ttft_s, e2e, queue_s=t1.queue_s),
                      token_ids=first.token_ids + second.token_ids,
                      reasoning_tokens=first.output_tokens if bridge else None)


def generate_within_budget(backend: Backend, requests: Sequence[GenRequest], budget: int,
                           card: ModelCard) -> Iterator[Generation]:
    """Generations whose thinking is cut at `budget` tokens (two phases); finished ones are yielded at once."""
    closing(card)  # a card without an end tag cannot take a budget
    by_key = {r.key: r for r in requests}
    first = [dataclasses.replace(r, max_new_tokens=min(budget, r.max_new_tokens)) for r in requests]
    waiting: list[tuple[GenRequest, Generation, str]] = []
    for gen in backend.generate(first):
        request = by_key[gen.key]
        bridge = _continuation(gen, card, budget)
        if bridge is None or gen.output_tokens >= request.max_new_tokens:
            yield gen
        else:
            waiting.append((request, gen, bridge))
    if not waiting:
        return
    second = {r.key: (gen, bridge) for r, gen, bridge in waiting}
    follow = [dataclasses.replace(r, prompt=r.prompt + gen.text + bridge, prompt_ids=None,
                                  max_new_tokens=r.max_new_tokens - gen.output_tokens) for r, gen, bridge in waiting]
    for gen in backend.generate(follow):
        first_gen, bridge = second[gen.key]
        yield _joined(first_gen, bridge, gen)
