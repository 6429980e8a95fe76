"""What every scorer returns, and the default way per-sample scores become per-document values."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass(frozen=True)
class Scored:
    """One sample's grade: what was extracted from the answer and a value per metric (0/1 or a fraction)."""

    extracted: Any
    scores: dict[str, float]
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ToScore:
    """One answer to grade against its document's target."""

    answer: str
    target: Any
    doc: dict[str, Any]
    unclosed: bool = False


class Scorer(Protocol):
    """Grades answers of one task kind; `per_doc` turns a document's samples into one value per metric."""

    metrics: list[str]
    unscaled: set[str]  # metrics reported as they are, not as percentages

    def score_batch(self, items: Sequence[ToScore]) -> list[Scored]:
        """Grades for many answers (a scorer may run them in parallel)."""
        ...

    def per_doc(self, samples: Sequence[dict[str, Any]], k_max: int) -> dict[str, float]:
        """A document's value per reported metric, from its sample records (`scores`, `extracted`)."""
        ...

    def describe(self) -> dict[str, Any]:
        """How this scorer grades (versions, settings), for run.json."""
        ...

    def close(self) -> None:
        """Stop any worker processes."""
        ...


def mean_per_doc(samples: Sequence[dict[str, Any]], metrics: Sequence[str]) -> dict[str, float]:
    """Each metric's mean over a document's sample records (pass@1 averaged over K, the R1 / Qwen3 protocol)."""
    return {m: sum(s["scores"][m] for s in samples) / len(samples) for m in metrics}
