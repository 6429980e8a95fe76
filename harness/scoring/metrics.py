"""From sample scores to reported metrics: each document's K samples reduced (mean, pass@k, majority vote) as the
task's YAML says, then the mean over documents with its uncertainty."""

from __future__ import annotations

from collections.abc import Sequence

from harness.config.taskspec import MetricSpec
from harness.core.stats import pass_at_k, summarize
from harness.records.run import MetricSummary
from harness.records.sample import SampleStats
from harness.scoring.base import ScoreInfo, Scorer


def majority(votes: Sequence[str | None], same: Scorer) -> int | None:
    """Index of the first sample of the largest group of equivalent answers (ties: the group seen first)."""
    groups: list[tuple[str, list[int]]] = []
    for i, vote in enumerate(votes):
        if not vote:
            continue
        group = next((members for rep, members in groups if rep == vote or same.same_answer(rep, vote)), None)
        if group is None:
            groups.append((vote, [i]))
        else:
            group.append(i)
    if not groups:
        return None
    best = max(groups, key=lambda g: len(g[1]))  # max keeps the first of equal-sized groups
    return best[1][0]


def document_values(metrics: Sequence[MetricSpec], samples: Sequence[SampleStats], samples_per_doc: int,
                    scorer: Scorer) -> dict[str, float]:
    """One document's value for every reported metric, from its samples (in sample order)."""
    values: dict[str, float] = {}
    n = len(samples)
    for spec in metrics:
        scores = [s.scores[spec.sample_score] for s in samples]
        if spec.reduce == "mean":
            values[spec.name] = sum(scores) / n
        elif spec.reduce == "pass_at_k":
            correct = int(sum(scores))
            for k, name in zip((k for k in spec.k if k <= n), spec.names(n), strict=True):
                values[name] = pass_at_k(n, correct, k)
        else:
            for name in spec.names(samples_per_doc):
                pick = majority([scorer.vote(s) for s in samples], scorer)
                values[name] = scores[pick] if pick is not None else 0.0
    return values


def summaries(metrics: Sequence[MetricSpec], per_doc: Sequence[dict[str, float]], infos: Sequence[ScoreInfo],
              seed: int) -> dict[str, MetricSummary]:
    """Each metric's mean over documents with stderr and 95% CI, and its descriptor (paired score, direction)."""
    by_name = {info.name: info for info in infos}
    out: dict[str, MetricSummary] = {}
    for spec in metrics:
        info = by_name[spec.sample_score]
        names = dict.fromkeys(name for values in per_doc for name in values if _belongs(spec, name))
        for name in names:
            scale = 100.0 if info.scale == "percent" else 1.0
            stats = summarize([v[name] for v in per_doc if name in v], scale=scale, seed=seed)
            out[name] = MetricSummary(**stats, score=spec.paired_score(name), higher_is_better=info.higher_is_better,
                                      scale=info.scale)
    return out


def _belongs(spec: MetricSpec, name: str) -> bool:
    if spec.reduce == "mean":
        return name == spec.name
    prefix = spec.name.split("@k")[0] + "@"
    return name.startswith(prefix) and name[len(prefix):].isdigit()
