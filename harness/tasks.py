"""What the runner runs: a task gives its documents, a prompt per document, a scorer and the metrics it reports.

Two kinds: owb's own YAML tasks (tasks/*.yaml), and lm-evaluation-harness tasks named `lmeval:NAME` (built by
harness.lmeval, imported only when such a task is asked for).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from harness.config import DataSource, MetricSpec, ModelCard, Mode, TaskSpec, load_task
from harness.data import Document, TaskData, load_documents
from harness.prompts import ChatRenderer, Prompt, build_prompt
from harness.scorers import make_scorer, scorer_class
from harness.scorers.base import Scorer, ScoreInfo

LMEVAL_PREFIX = "lmeval:"


class Task(Protocol):
    """A task the runner can run."""

    @property
    def name(self) -> str:
        """The task's name, as given on the command line."""
        ...

    @property
    def metrics(self) -> Sequence[MetricSpec]:
        """The metrics it reports: which per-sample score each reduces, and how."""
        ...

    @property
    def primary_metric(self) -> str:
        """The metric reports lead with."""
        ...

    def spec_hash(self) -> str:
        """A short hash of everything that defines the task (recorded; resume and check compare it)."""
        ...

    def documents(self, source: DataSource, data_dir: Path | None, limit: int | None) -> TaskData:
        """The task's documents (the first `limit`) and where they came from."""
        ...

    def prompt(self, doc: Document, data: TaskData, card: ModelCard, mode: Mode, renderer: ChatRenderer) -> Prompt:
        """The rendered prompt (and stop strings) for one document."""
        ...

    def scorer(self) -> Scorer:
        """A fresh scorer for this task's answers (closed by the caller)."""
        ...

    def score_infos(self) -> Sequence[ScoreInfo]:
        """The per-sample scores the scorer writes (scale, direction)."""
        ...

    def protocol_samples(self, protocol: str) -> int | None:
        """Samples per document a named protocol uses on this task (None: the protocol does not cover it)."""
        ...


@dataclass(frozen=True)
class YamlTask:
    """An owb task from tasks/<name>.yaml: its data sources, prompt templates, scorer and metric specs."""

    spec: TaskSpec

    @property
    def name(self) -> str:
        """The task's name."""
        return self.spec.name

    @property
    def metrics(self) -> Sequence[MetricSpec]:
        """The metrics the YAML reports."""
        return self.spec.metrics

    @property
    def primary_metric(self) -> str:
        """The metric reports lead with."""
        return self.spec.primary_metric

    def spec_hash(self) -> str:
        """Hash of the whole YAML spec."""
        return self.spec.spec_hash()

    def documents(self, source: DataSource, data_dir: Path | None, limit: int | None) -> TaskData:
        """Documents from the Hub, a data directory, a package or the fixture."""
        return load_documents(self.spec, source, data_dir, limit)

    def prompt(self, doc: Document, data: TaskData, card: ModelCard, mode: Mode, renderer: ChatRenderer) -> Prompt:
        """The chat template for chat models, the plain or few-shot prompt for base models."""
        return build_prompt(self.spec, card, mode, doc, renderer, data.fewshot)

    def scorer(self) -> Scorer:
        """The scorer the YAML names, with its arguments."""
        return make_scorer(self.spec.scorer)

    def score_infos(self) -> Sequence[ScoreInfo]:
        """The registered scorer's declared scores."""
        infos: Sequence[ScoreInfo] = scorer_class(self.spec.scorer.name).scores
        return infos

    def protocol_samples(self, protocol: str) -> int | None:
        """K from the YAML's `protocols:` section."""
        found = self.spec.protocols.get(protocol)
        return found.samples if found else None


def resolve_task(name: str, lmeval_include: Sequence[str] = ()) -> Task:
    """The task named `name`: `lmeval:NAME` through lm-evaluation-harness, else tasks/<name>.yaml; `NAME@thinkN`
    is that task under a thinking budget of N tokens."""
    from harness.budget import BudgetedTask, split_name

    base, budget = split_name(name)
    if budget is not None:
        return BudgetedTask(resolve_task(base, lmeval_include), budget)
    if name.startswith(LMEVAL_PREFIX):
        from harness.lmeval import lmeval_task

        return lmeval_task(name, [Path(p) for p in lmeval_include])
    return YamlTask(load_task(name))
