"""The scorer registry: a task YAML names a scorer (`scorer: {name, args}`); its module is imported only then."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from harness.config import ScorerRef, TaskSpec, first_error
from harness.errors import ConfigError
from harness.scorers.base import Scorer

SCORERS: dict[str, str] = {
    "gsm8k": "harness.scorers.maths:GSM8KScorer",
    "math": "harness.scorers.maths:MathScorer",
    "code": "harness.scorers.code:CodeScorer",
    "evalplus": "harness.scorers.evalplus:EvalPlusScorer",
    "summarize": "harness.scorers.summarize:SummarizeScorer",
}


def scorer_class(name: str) -> Any:
    """The scorer class registered under `name` (its module imported now)."""
    target = SCORERS.get(name)
    if target is None:
        raise ConfigError(f"unknown scorer '{name}'; registered: {', '.join(SCORERS)}")
    module, cls = target.split(":")
    return getattr(importlib.import_module(module), cls)


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
    scorer: Scorer = scorer_class(ref.name)(_args(ref))
    return scorer
