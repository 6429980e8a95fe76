"""What a run generates: the named evaluation protocols and suites, the task a name stands for, and the per-task
plan (samples per document, decoding, token budget).

`r1` is the DeepSeek-R1 paper's reasoning protocol, as the R1 distills, QwQ and Qwen3 report AIME and MATH-500:
thinking on with the card's thinking sampling (never greedy), the task's k samples per problem (64 on AIME and
AMC, 4 on MATH-500; the task YAML's `protocols.r1.samples`), the family's max tokens (32,768; Qwen3 38,912 on
AIME via the card's `task_max_new_tokens`); pass@1 is the mean over the k samples with its interval over problems,
and the task's majority metric is cons@k.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from harness.config.base import Mode
from harness.config.cards import ModelCard, Sampling
from harness.core.errors import ConfigError
from harness.lmeval import PREFIX as LMEVAL_PREFIX
from harness.lmeval.task import lmeval_task
from harness.records.run import RunOptions
from harness.records.sample import split_name
from harness.tasks.arguments import split_arguments, with_arguments, with_card_arguments
from harness.tasks.base import Task, YamlTask, load_task
from harness.tasks.budget import BudgetedTask, closing

PROTOCOLS = {"r1": "thinking on, the card's thinking sampling, the task's k samples, the family's max tokens"}
# A suite is the set of tasks a family's reports lead with, run under one protocol.
SUITES: dict[str, tuple[str, tuple[str, ...]]] = {
    # The headline set of the families' reports (AIME 2024/2025, MATH-500, GPQA-Diamond, LiveCodeBench, each with its
    # card's task arguments, e.g. the LiveCodeBench window of its claims), then AMC 2023 and EvalPlus.
    "reasoning": ("r1", ("aime24", "aime25", "math500", "gpqa_diamond", "livecodebench", "amc23", "humaneval_plus",
                         "mbpp_plus")),
}


def suite(name: str) -> tuple[str, tuple[str, ...]]:
    """A suite's protocol and tasks."""
    if name not in SUITES:
        raise ConfigError(f"unknown suite '{name}'; known: {', '.join(SUITES)}")
    return SUITES[name]


@dataclass(frozen=True)
class TaskPlan:
    """How one task of a run is generated."""

    task: Task
    samples: int
    sampling: Sampling
    max_new_tokens: int
    thinking_budget: int | None = None


def run_mode(card: ModelCard, opts: RunOptions) -> Mode:
    """The thinking mode of a run: the protocol's (thinking where the model can), else the request or the card's."""
    if opts.protocol is None:
        return card.resolve_mode(opts.thinking)
    if opts.protocol not in PROTOCOLS:
        raise ConfigError(f"unknown protocol '{opts.protocol}'; known: {', '.join(PROTOCOLS)}")
    if opts.greedy:
        raise ConfigError(f"protocol {opts.protocol} samples with the card's settings; drop --greedy")
    wanted: Mode = "off" if card.thinking.kind == "none" else "on"
    if opts.thinking not in (None, wanted):
        raise ConfigError(f"protocol {opts.protocol} runs {card.id} with thinking {wanted}; drop --thinking")
    return card.resolve_mode(wanted)


def plan_tasks(card: ModelCard, mode: Mode, opts: RunOptions) -> list[TaskPlan]:
    """One plan per task, and per thinking budget where budgets are asked for (task@thinkN for each N)."""
    plans = []
    for name in opts.tasks:
        task = resolve_task(name if name.startswith(LMEVAL_PREFIX) else with_card_arguments(name, card),
                            opts.lmeval_include)
        for budget in opts.thinking_budget or (None,):
            plans.append(plan_task(task, card, mode, opts, budget))
    return plans


def plan_task(task: Task, card: ModelCard, mode: Mode, opts: RunOptions, budget: int | None = None) -> TaskPlan:
    """Samples, decoding and budget for one task: the protocol's where one is named, the options' otherwise."""
    samples = opts.samples
    if opts.protocol is not None and samples is None:
        samples = task.protocol_samples(opts.protocol)
        if samples is None:
            raise ConfigError(f"task {task.name} has no `{opts.protocol}` protocol; pass --samples K")
    if samples is not None and samples < 1:
        raise ConfigError("--samples must be at least 1")
    sampling = Sampling() if opts.greedy else card.sampling_for(mode)
    max_new = opts.max_new_tokens or card.max_new_tokens_for(mode, task.name)
    if budget is None:
        return TaskPlan(task, samples or 1, sampling, max_new)
    if mode != "on":
        raise ConfigError(f"a thinking budget needs thinking on; {card.id} runs with thinking {mode}")
    closing(card)
    if not 0 < budget < max_new:
        raise ConfigError(f"--thinking-budget {budget} must be positive and below the {max_new}-token output budget")
    return TaskPlan(BudgetedTask(task, budget), samples or 1, sampling, max_new, budget)


def resolve_task(name: str, lmeval_include: Sequence[str] = ()) -> Task:
    """The task named `name`: `lmeval:NAME` through lm-evaluation-harness, else tasks/<name>.yaml; `NAME@ARG=VALUE`
    is that task under a task argument (e.g. a LiveCodeBench window), `NAME@thinkN` under a thinking budget of N."""
    base, budget = split_name(name)
    if budget is not None:
        return BudgetedTask(resolve_task(base, lmeval_include), budget)
    if name.startswith(LMEVAL_PREFIX):
        return lmeval_task(name, [Path(p) for p in lmeval_include])
    task, args = split_arguments(name)
    return YamlTask(with_arguments(load_task(task), args))
