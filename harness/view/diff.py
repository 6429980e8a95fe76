"""The paired diff of two runs on one task, exactly as `owb check` pairs and tests them (harness.report.check): its
verdict per metric, the documents the candidate lost and won, and each document's per-sample-score means."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from harness.records.run import RunRecord
from harness.records.store import RunDir
from harness.report.check import MetricCheck, compare_runs, document_means

ShowName = Literal["changed", "lost", "won", "same", "all"]
SHOWS: dict[ShowName, str] = {"changed": "changed", "lost": "lost", "won": "won", "same": "unchanged", "all": "all"}
DOCS_PER_PAGE = 20


class DiffQuery(BaseModel):
    """The diff's state in the URL: the metric, which documents, the page, and `owb check`'s options."""

    model_config = ConfigDict(extra="ignore")

    metric: str | None = None
    show: ShowName = "changed"
    page: int = Field(default=1, ge=1)
    allow_config_change: bool = False
    max_drop: float = Field(default=2.0, ge=0)
    alpha: float = Field(default=0.05, gt=0, lt=1)


@dataclass(frozen=True)
class DocPair:
    """One document's value in both runs: the mean of its K samples' score."""

    doc_id: str
    base: float
    cand: float

    @property
    def delta(self) -> float:
        """Candidate minus baseline."""
        return self.cand - self.base


@dataclass(frozen=True)
class MetricDiff:
    """One metric of the task: check's result, its verdict, and every document paired."""

    check: MetricCheck
    regressed: bool
    pairs: list[DocPair]

    def lost(self, pair: DocPair) -> bool:
        """Whether the candidate did worse on this document."""
        return pair.delta < 0 if self.check.higher_is_better else pair.delta > 0

    def won(self, pair: DocPair) -> bool:
        """Whether the candidate did better on this document."""
        return pair.delta > 0 if self.check.higher_is_better else pair.delta < 0

    def counts(self) -> dict[ShowName, int]:
        """How many documents each choice shows."""
        lost = sum(1 for p in self.pairs if self.lost(p))
        won = sum(1 for p in self.pairs if self.won(p))
        return {"changed": lost + won, "lost": lost, "won": won, "same": len(self.pairs) - lost - won,
                "all": len(self.pairs)}

    def shown(self, show: ShowName) -> list[DocPair]:
        """The documents a choice shows, largest change first."""
        tests = {"changed": lambda p: p.delta != 0, "lost": self.lost, "won": self.won,
                 "same": lambda p: p.delta == 0, "all": lambda p: True}
        return [p for p in self.pairs if tests[show](p)]


@dataclass(frozen=True)
class PairedDiff:
    """Two runs on one task: check's metrics for it, the setting changes allowed, and check's overall result."""

    task: str
    metrics: list[MetricDiff]
    changes: list[str]
    failed: bool
    baseline: RunRecord
    candidate: RunRecord


def _pairs(base_dir: RunDir, cand_dir: RunDir, task: str, base_score: str, cand_score: str) -> list[DocPair]:
    base, cand = document_means(base_dir, task, base_score), document_means(cand_dir, task, cand_score)
    pairs = [DocPair(doc, base[doc], cand[doc]) for doc in sorted(base) if doc in cand]
    return sorted(pairs, key=lambda p: -abs(p.delta))


def paired_diff(baseline: Path, candidate: Path, task: str, query: DiffQuery) -> PairedDiff:
    """The diff of one task, as `owb check --baseline --candidate` computes it (same refusals, same tests)."""
    checks, base_rec, cand_rec, changes = compare_runs(baseline, candidate, query.allow_config_change)
    failed = any(c.regressed(query.max_drop, query.alpha) for c in checks)
    base_dir, cand_dir = RunDir(baseline), RunDir(candidate)
    metrics = []
    for c in checks:
        if c.task != task:
            continue
        base_score = base_rec.tasks[task].metrics[c.metric].score
        cand_score = cand_rec.tasks[task].metrics[c.metric].score
        assert base_score is not None and cand_score is not None  # check compares only metrics with a score
        metrics.append(MetricDiff(c, c.regressed(query.max_drop, query.alpha),
                                  _pairs(base_dir, cand_dir, task, base_score, cand_score)))
    return PairedDiff(task, metrics, changes, failed, base_rec, cand_rec)
