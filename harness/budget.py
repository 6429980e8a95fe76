"""A thinking budget: when a reasoning model has thought N tokens, close its thinking with the Qwen3 report's phrase
and the family's end tag, and let it answer.

Generation runs in two phases on every backend (no engine here stops and resumes inside one request): the first
generates at most N tokens; an output that closed its think block and finished is done; one that closed it and is
still answering continues; one still thinking at N tokens gets the closing phrase appended, and the second phase
generates the answer from prompt + thinking + phrase, within the request's remaining token budget.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from harness.backends.base import Backend, Generation, GenRequest
from harness.config import DataSource, MetricSpec, ModelCard, Mode
from harness.data import Document, TaskData
from harness.errors import ConfigError
from harness.prompts import ChatRenderer, Prompt
from harness.records import Timings
from harness.scorers.base import Scorer, ScoreInfo
from harness.tasks import Task

PHRASE = "Considering the limited time by the user, I have to give the solution based on the thinking directly now."
SUFFIX = "@think"


def closing(card: ModelCard) -> str:
    """The text that ends a thinking cut short: the phrase, the family's end tag, then the answer begins."""
    if card.reasoning.think_end is None:
        raise ConfigError(f"model {card.id} has no think-end tag, so a thinking budget cannot close its thinking")
    return f"{PHRASE}\n{card.reasoning.think_end}.\n\n"


def budget_name(task: str, budget: int) -> str:
    """The name a task runs under with a budget: aime24@think512 (each budget is its own task in run.json)."""
    return f"{task}{SUFFIX}{budget}"


def split_name(name: str) -> tuple[str, int | None]:
    """A task name and its budget: ("aime24", 512) for aime24@think512, (name, None) without one."""
    base, sep, budget = name.rpartition(SUFFIX)
    return (base, int(budget)) if sep and budget.isdigit() else (name, None)


@dataclass(frozen=True)
class BudgetedTask:
    """A task run under a thinking budget: the same documents, prompts and scoring, its own name."""

    base: Task
    budget: int

    @property
    def name(self) -> str:
        """task@thinkN."""
        return budget_name(self.base.name, self.budget)

    @property
    def metrics(self) -> Sequence[MetricSpec]:
        """The base task's metrics."""
        return self.base.metrics

    @property
    def primary_metric(self) -> str:
        """The base task's primary metric."""
        return self.base.primary_metric

    def spec_hash(self) -> str:
        """The base task's hash (the budget is in the generation settings)."""
        return self.base.spec_hash()

    def documents(self, source: DataSource, data_dir: Path | None, limit: int | None) -> TaskData:
        """The base task's documents."""
        return self.base.documents(source, data_dir, limit)

    def prompt(self, doc: Document, data: TaskData, card: ModelCard, mode: Mode, renderer: ChatRenderer) -> Prompt:
        """The base task's prompt."""
        return self.base.prompt(doc, data, card, mode, renderer)

    def scorer(self) -> Scorer:
        """The base task's scorer."""
        return self.base.scorer()

    def score_infos(self) -> Sequence[ScoreInfo]:
        """The base task's scores."""
        return self.base.score_infos()

    def protocol_samples(self, protocol: str) -> int | None:
        """The base task's K for a protocol."""
        return self.base.protocol_samples(protocol)


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
