"""Scoring through lm-evaluation-harness: each answer runs through the task's filter ensembles and its own
`process_results`, giving one score per `METRIC,FILTER` as lm-eval reports them."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from harness.core.errors import ConfigError
from harness.records.sample import SampleStats
from harness.scoring.base import Scored, ScoreInfo, ToScore


class LmevalScorer:
    """lm-eval's filters and metrics on owb's answers (the reasoning already split off), for one lm-eval task and
    the `METRIC,FILTER` scores it declares (not registered: the task builds it)."""

    def __init__(self, task: Any, version: str, scores: tuple[ScoreInfo, ...]) -> None:
        self.task, self.version, self.declared = task, version, scores

    def score_batch(self, items: Sequence[ToScore]) -> list[Scored]:
        """Each filter ensemble over the answers (as lm-eval's evaluator applies it to its instances), then
        `process_results` of the filtered answer, kept for the declared mean-aggregated metrics."""
        from lm_eval.api.instance import Instance

        extracted: list[dict[str, Any]] = [{} for _ in items]
        scores: list[dict[str, float]] = [{} for _ in items]
        wanted = {info.name for info in self.declared}
        for ensemble in self.task._filters:
            instances = [Instance(request_type="generate_until", doc=item.doc, arguments=("", {}), idx=0,
                                  metadata=(self.task.config.task, i, 1), resps=[item.answer])
                         for i, item in enumerate(items)]
            ensemble.apply(instances)
            for i, (item, inst) in enumerate(zip(items, instances, strict=True)):
                filtered = inst.filtered_resps[ensemble.name]
                extracted[i][ensemble.name] = filtered
                for metric, value in self.task.process_results(item.doc, [filtered]).items():
                    if (name := f"{metric},{ensemble.name}") in wanted:
                        scores[i][name] = _number(name, value)
        for row in scores:
            if missing := wanted - row.keys():
                raise ConfigError(f"lm-eval task {self.task.config.task} did not return {', '.join(sorted(missing))}")
        first = self.task._filters[0].name
        return [Scored(extracted=e, scores=s, extraction_failed=e.get(first) in (None, "", "[invalid]"))
                for e, s in zip(extracted, scores, strict=True)]

    def vote(self, sample: SampleStats) -> str | None:
        """The answer after the first filter (what the primary score compares)."""
        first = (sample.extracted or {}).get(self.task._filters[0].name)
        return str(first) if first not in (None, "") else None

    def same_answer(self, a: str, b: str) -> bool:
        """Filtered answers compare as strings."""
        return a == b

    def describe(self) -> dict[str, Any]:
        """lm-eval's version, the task and its filters."""
        return {"lm_eval": self.version, "task": self.task.config.task,
                "filters": [f.name for f in self.task._filters]}

    def close(self) -> None:
        """Nothing runs outside this process."""


def _number(name: str, value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"lm-eval score {name} is not a number ({value!r})") from None
