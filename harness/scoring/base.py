"""What a scorer is: the per-sample scores it declares, its arguments, how it grades answers and which answer a
sample votes for."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal, Protocol

from pydantic import BaseModel, ConfigDict

from harness.records.sample import SampleStats


class NoArgs(BaseModel):
    """Arguments of a scorer that takes none."""

    model_config = ConfigDict(extra="forbid", frozen=True)


@dataclass(frozen=True)
class ScoreInfo:
    """A per-sample score a scorer writes: how metrics built on it read (scale, direction)."""

    name: str
    higher_is_better: bool | None = True  # None: a description (e.g. output length), never checked for drops
    scale: Literal["percent", "raw"] = "percent"  # percent: a 0-1 value shown x100
    binary: bool = True  # 0 or 1 per sample (a sample is correct or not); False for graded scores such as ROUGE


@dataclass(frozen=True)
class Scored:
    """One sample's grade: what was extracted from the answer and a value per score (0/1 or a fraction)."""

    extracted: Any
    scores: dict[str, float]
    extra: dict[str, Any] = field(default_factory=dict)  # code: status, stderr, exec_s
    extraction_failed: bool | None = None  # the scorer found no answer to grade (None: the scorer does not say)


@dataclass(frozen=True)
class ToScore:
    """One answer to grade against its document's target."""

    answer: str
    target: Any
    doc: dict[str, Any]
    unclosed: bool = False


class Scorer(Protocol):
    """Grades the answers of tasks that name it. How per-sample scores become per-document metrics (mean, pass@k,
    majority) is the task's choice, not the scorer's."""

    def score_batch(self, items: Sequence[ToScore]) -> list[Scored]:
        """Grades for many answers (a scorer may run them in parallel)."""
        ...

    def vote(self, sample: SampleStats) -> str | None:
        """The answer a sample votes for in a majority metric (None: no answer)."""
        ...

    def same_answer(self, a: str, b: str) -> bool:
        """Whether two votes are the same answer (equivalence, not string identity, where the scorer knows it)."""
        ...

    def describe(self) -> dict[str, Any]:
        """How this scorer grades (versions, settings), for run.json."""
        ...

    def close(self) -> None:
        """Stop any worker processes."""
        ...


class ScorerClass(Protocol):
    """A registered scorer: its arguments model, the per-sample scores it declares, and the constructor."""

    Args: type[BaseModel]
    scores: tuple[ScoreInfo, ...]

    def __call__(self, args: Any) -> Scorer:
        """A scorer built from validated arguments."""
        ...


class ScorerBase:
    """Defaults a scorer inherits: no arguments, no vote (majority metrics do not apply), nothing to stop."""

    Args: ClassVar[type[BaseModel]] = NoArgs
    scores: ClassVar[tuple[ScoreInfo, ...]] = ()

    def vote(self, sample: SampleStats) -> str | None:
        """No answer to vote for."""
        return None

    def same_answer(self, a: str, b: str) -> bool:
        """Votes compare as strings."""
        return a == b

    def describe(self) -> dict[str, Any]:
        """Nothing beyond the scores."""
        return {}

    def close(self) -> None:
        """Nothing runs outside this process."""
