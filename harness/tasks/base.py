"""The task contract: a task gives its documents, a prompt per document, a scorer and the metrics it reports; and
owb's own kind, a YAML spec (tasks/*.yaml) checked against its scorer when it is loaded.

lm-evaluation-harness tasks (`lmeval:NAME`) are the other kind (harness.lmeval)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from harness.config.base import DataSource, Mode
from harness.config.cards import ModelCard
from harness.config.taskspec import MetricSpec, TaskSpec, all_task_specs, load_task_spec, read_task_spec
from harness.core.paths import TASKS_DIR
from harness.scoring.base import ScoreInfo, Scorer
from harness.scoring.registry import check_spec, make_scorer, scorer_class
from harness.tasks.data import Document, TaskData, load_documents
from harness.tasks.prompts import ChatRenderer, Prompt, build_prompt


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
        return scorer_class(self.spec.scorer.name).scores

    def protocol_samples(self, protocol: str) -> int | None:
        """K from the YAML's `protocols:` section."""
        found = self.spec.protocols.get(protocol)
        return found.samples if found else None


def load_task_file(path: Path) -> TaskSpec:
    """A task spec from a YAML file, checked against its scorer (arguments, the scores its metrics reduce)."""
    spec = read_task_spec(path)
    check_spec(spec, path)
    return spec


def load_task(name: str) -> TaskSpec:
    """A task spec by name (tasks/<name>.yaml), checked against its scorer."""
    spec = load_task_spec(name)
    check_spec(spec, TASKS_DIR / f"{name}.yaml")
    return spec


def all_tasks() -> list[TaskSpec]:
    """Every task spec in tasks/, each checked against its scorer."""
    return [load_task(spec.name) for spec in all_task_specs()]
