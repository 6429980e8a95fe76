"""The suite's steps, one module each (NAME, TIME_S, PER_MODEL and run(ctx, rec, label)), and the order they run in."""

from __future__ import annotations

from typing import NamedTuple, Protocol

from benchmarks.gpu_suite.profile import Ctx
from benchmarks.gpu_suite.record import Recorder
from benchmarks.gpu_suite.steps import bandwidth, hf, lmeval_hf, lmeval_vllm, owb_run, serve, smoke, vllm


class StepModule(Protocol):
    """A step's module."""

    NAME: str
    # GPU: (the least seconds the step needs to give anything, the most it may take) - guesses, no GPU has run it yet.
    # A step is skipped (its reason recorded) when less than the least is left, and stopped at the most (what it
    # finished kept), so one stuck compile cannot eat the budget of the steps after it.
    TIME_S: tuple[float, float]
    PER_MODEL: bool  # runs once per model label (named NAME-label); else once, on the run model

    def run(self, ctx: Ctx, rec: Recorder, label: str) -> None:
        """Measure, saving `rec` after every figure; `label` is the model it runs."""


# Most important first: a lent GPU is short, and a step not reached is recorded as such (rerun it with --steps).
MODULES: tuple[StepModule, ...] = (bandwidth, serve, vllm, owb_run, hf, lmeval_vllm, lmeval_hf, smoke)
STEPS: dict[str, StepModule] = {step.NAME: step for step in MODULES}  # in the order they run
LAST = smoke.NAME  # runs after every model's steps


class Planned(NamedTuple):
    """One step of a suite: its module and the model label it runs."""

    step: StepModule
    label: str


def plan(ctx: Ctx) -> dict[str, Planned]:
    """The suite's steps by name in the order they run: first the run model's (the one `owb run` and lm-eval use, so
    its comparisons come out whole), then the other shapes', then the smoke."""
    first = [step for name, step in STEPS.items() if name != LAST]
    found = {step_name(step, ctx.run_model): Planned(step, ctx.run_model) for step in first}
    for label in ctx.models:
        for step in first:
            if step.PER_MODEL:
                found.setdefault(step_name(step, label), Planned(step, label))
    found[LAST] = Planned(STEPS[LAST], ctx.run_model)
    return found


def step_name(step: StepModule, label: str) -> str:
    """The name a step runs under: NAME, or NAME-label for a step of each model."""
    return f"{step.NAME}-{label}" if step.PER_MODEL else step.NAME
