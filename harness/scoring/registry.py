"""The scorer registry: a task YAML names a scorer (`scorer: {name, args}`); its module is imported only then, and
the spec is checked against what the scorer declares (its arguments, the per-sample scores it writes)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import ValidationError

from harness.config.taskspec import ScorerRef, TaskSpec
from harness.core.errors import ConfigError, first_error
from harness.core.registry import Registry
from harness.scoring.base import Scorer, ScorerClass

SCORERS: Registry[ScorerClass] = Registry("scorer", {
    "gsm8k": "harness.scoring.maths:GSM8KScorer",
    "math": "harness.scoring.maths:MathScorer",
    "code": "harness.scoring.code:CodeScorer",
    "evalplus": "harness.scoring.evalplus.scorer:EvalPlusScorer",
    "summarize": "harness.scoring.summarize:SummarizeScorer",
    "livecodebench": "harness.scoring.livecodebench.scorer:LiveCodeBenchScorer",
    "choice": "harness.scoring.choice:ChoiceScorer",
})


def scorer_class(name: str) -> ScorerClass:
    """The scorer class registered under `name` (its module imported now)."""
    return SCORERS.get(name)


def _args(ref: ScorerRef) -> Any:
    try:
        return scorer_class(ref.name).Args.model_validate(ref.args)
    except ValidationError as exc:
        raise ConfigError(f"scorer {ref.name}: invalid argument {first_error(exc)}") from None


def check_spec(spec: TaskSpec, path: Path) -> None:
    """A task's scorer exists, its arguments are valid, and every metric reduces a score the scorer writes."""
    cls = scorer_class(spec.scorer.name)
    _args(spec.scorer)
    known = {s.name for s in cls.scores}
    for metric in spec.metrics:
        if metric.sample_score not in known:
            raise ConfigError(f"invalid task {path}: metric {metric.name} reduces score '{metric.sample_score}', "
                              f"which scorer {spec.scorer.name} does not write ({', '.join(sorted(known))})")


def make_scorer(ref: ScorerRef) -> Scorer:
    """A scorer instance for a task's `scorer` reference."""
    return scorer_class(ref.name)(_args(ref))
