"""A task under a thinking budget (task@thinkN): the same documents, prompts and scoring; when the model has thought
N tokens its thinking is closed with the Qwen3 report's phrase and the family's end tag, and it answers."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from harness.config.base import DataSource, Mode
from harness.config.cards import ModelCard
from harness.config.taskspec import MetricSpec
from harness.core.errors import ConfigError
from harness.records.sample import budget_name
from harness.scoring.base import ScoreInfo, Scorer
from harness.tasks.base import Task
from harness.tasks.data import Document, TaskData
from harness.tasks.prompts import ChatRenderer, Prompt

PHRASE = "Considering the limited time by the user, I have to give the solution based on the thinking directly now."


def closing(card: ModelCard) -> str:
    """The text that ends a thinking cut short: the phrase, the family's end tag, then the answer begins."""
    if card.reasoning.think_end is None:
        raise ConfigError(f"model {card.id} has no think-end tag, so a thinking budget cannot close its thinking")
    return f"{PHRASE}\n{card.reasoning.think_end}.\n\n"


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
