"""Task specs (tasks/*.yaml): data sources, prompt templates, the scorer a task names and the metrics it reports.
Parsed and validated here; the check against the scorer is the tasks layer's (harness.tasks.base)."""

from __future__ import annotations

import calendar
import re
from datetime import date
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from harness.config.base import Strict, load_yaml, validated, yaml_stems
from harness.core.errors import ConfigError, did_you_mean
from harness.core.hashing import stable_hash
from harness.core.paths import TASKS_DIR


class SourceHF(Strict):
    """A dataset on the Hugging Face Hub at a pinned revision."""

    path: str
    name: str | None = None
    split: str
    revision: str
    fewshot_split: str | None = None  # where the few-shot rows live when they are not in `split`
    data_files: list[str] = []  # files of the repository read as the split (a dataset with no loader config)
    gated: str | None = None  # how to get access to a gated dataset; without a Hub token loading stops with it


class SourceLocal(Strict):
    """A file inside a local data directory (the ../shared/data layout)."""

    file: str
    # Alternative files tried in order when `file` is absent (e.g. HumanEval shipped in a package).
    fallbacks: list[str] = []


class TaskSource(Strict):
    """Where a task's documents come from (no `hf` where no Hub copy matches the local file)."""

    hf: SourceHF | None = None
    local: SourceLocal
    fixture: str
    # A copy shipped inside a Python package: "<module>:<path inside the package>".
    package: str | None = None


class FewShot(Strict):
    """A worked example shown before the question in base-model prompts."""

    input: dict[str, Any]
    output: str


class TaskPrompt(Strict):
    """Templates ({field} placeholders) for chat and base models."""

    chat: str
    base: str
    fewshot: list[FewShot] = []
    # Few-shot examples taken from the data itself by id (outside the scored range), shown with `fewshot_output`.
    fewshot_ids: list[str] = []
    fewshot_output: str = ""
    fewshot_separator: str = "\n\n"
    base_stop: list[str] = []
    shots: int | None = Field(default=None, ge=0)  # base models see the first N examples (None: all of them)


def _day(text: str, last: bool) -> date:
    """YYYY-MM-DD, or YYYY-MM as the month's first (or last) day."""
    parts = [int(x) for x in text.split("-")]
    if len(parts) == 2:
        parts.append(calendar.monthrange(parts[0], parts[1])[1] if last else 1)
    return date(*parts)


class DateWindow(Strict):
    """Documents whose date field lies in `span` ("START..END", both ends included; YYYY-MM or YYYY-MM-DD, an empty
    end is open), e.g. LiveCodeBench's problems by contest date. The span is kept as whole days."""

    field: str
    span: str

    @field_validator("span")
    @classmethod
    def _days(cls, value: str) -> str:
        found = re.fullmatch(r"(\d{4}-\d{2}(?:-\d{2})?)?\.\.(\d{4}-\d{2}(?:-\d{2})?)?", value.strip())
        if found is None:
            raise ValueError(f"a window is START..END with YYYY-MM or YYYY-MM-DD ends, not '{value}'")
        start, end = (_day(found.group(1), False) if found.group(1) else None,
                      _day(found.group(2), True) if found.group(2) else None)
        if start and end and start > end:
            raise ValueError(f"window {value} ends before it starts")
        return f"{start or ''}..{end or ''}"

    def contains(self, value: Any) -> bool:
        """Whether a document's date (an ISO date or timestamp) lies in the window."""
        day = date.fromisoformat(str(value)[:10])
        start, _, end = self.span.partition("..")
        return (not start or date.fromisoformat(start) <= day) and (not end or day <= date.fromisoformat(end))


class ChoiceShuffle(Strict):
    """A multiple-choice question's options, the correct one first in `fields`, shown in an order drawn per document
    from `seed` and its id (so a document's order never depends on which others are selected); the options become
    fields A, B, C, ... and the correct letter the field `correct_letter`."""

    fields: list[str] = Field(min_length=2, max_length=26)
    seed: int = 0


class ScorerRef(Strict):
    """The scorer a task names, with its arguments (validated by the scorer's own Args model)."""

    name: str
    args: dict[str, Any] = {}


class MetricSpec(Strict):
    """A reported metric: which per-sample score it reduces over a document's K samples, and how.

    `mean` (the default) averages the score (pass@1 as in the R1 and Qwen3 reports); `pass_at_k` gives the unbiased
    pass@k for each k in `k` with k <= K (name `pass@k` -> pass@1, pass@10, ...); `majority` scores the answer most
    samples agree on (name `maj@k` -> maj@K, reported when K > 1). A bare string names a mean over the score of
    that name.
    """

    name: str
    score: str | None = None
    reduce: Literal["mean", "pass_at_k", "majority"] = "mean"
    k: list[int] = []

    @model_validator(mode="before")
    @classmethod
    def _from_name(cls, value: Any) -> Any:
        return {"name": value} if isinstance(value, str) else value

    @model_validator(mode="after")
    def _check(self) -> MetricSpec:
        if self.reduce == "pass_at_k" and (not self.k or "@k" not in self.name):
            raise ValueError(f"metric {self.name}: pass_at_k needs `k: [...]` and a name like pass@k")
        if self.reduce == "majority" and "@k" not in self.name:
            raise ValueError(f"metric {self.name}: a majority metric is named like maj@k")
        return self

    @property
    def sample_score(self) -> str:
        """The per-sample score this metric reduces."""
        return self.score or self.name

    def names(self, samples_per_doc: int) -> list[str]:
        """The metric names this spec reports for K samples per document."""
        if self.reduce == "pass_at_k":
            return [self.name.replace("@k", f"@{k}") for k in self.k if k <= samples_per_doc]
        if self.reduce == "majority":
            return [self.name.replace("@k", f"@{samples_per_doc}")] if samples_per_doc > 1 else []
        return [self.name]

    def paired_score(self, name: str) -> str | None:
        """The per-sample score whose per-document mean the reported metric `name` is (None: not a mean)."""
        if self.reduce == "mean" or (self.reduce == "pass_at_k" and name.endswith("@1")):
            return self.sample_score
        return None


class TaskProtocol(Strict):
    """How a named evaluation protocol runs this task (e.g. the R1 paper's: k samples per problem)."""

    samples: int = Field(gt=0)


class TaskSpec(Strict):
    """A task: its data, which documents it keeps, how it is prompted, which scorer grades it and which metrics
    it reports."""

    name: str
    description: str
    scorer: ScorerRef
    source: TaskSource
    # A function "module:function" that turns a data row into the row the task reads (data quirks YAML cannot say).
    record_to_doc: str | None = None
    id_field: str | None = None
    id_range: tuple[int, int] | None = None
    target_field: str
    # List fields also offered to prompts as one string, `<field>_text`, joined with the given separator.
    joined_fields: dict[str, str] = {}
    prompt: TaskPrompt
    metrics: list[MetricSpec]
    primary_metric: str
    protocols: dict[str, TaskProtocol] = {}
    window: DateWindow | None = None
    choices: ChoiceShuffle | None = None
    # Task arguments (`--tasks NAME@ARG=VALUE`): each argument's name and the spec field it sets ("window.span").
    arguments: dict[str, str] = {}

    @model_validator(mode="after")
    def _check_primary(self) -> TaskSpec:
        reported = [n for m in self.metrics for n in m.names(1 << 30) if m.reduce != "majority"]
        if self.primary_metric not in reported:
            raise ValueError(f"primary_metric {self.primary_metric} is not one of the metrics ({', '.join(reported)})")
        return self

    def spec_hash(self) -> str:
        """Short stable hash of the whole spec, recorded with every result (fields added after a spec was first
        hashed count only when set, so the hashes of older runs do not move)."""
        return stable_hash(_without_unset_additions(self.model_dump(mode="json")))


# Fields added to the spec after runs were recorded, at their defaults: left out of the hash while unset.
ADDED_FIELDS: dict[tuple[str, ...], Any] = {
    ("window",): None, ("choices",): None, ("arguments",): {}, ("prompt", "shots"): None,
    ("source", "hf", "data_files"): [], ("source", "hf", "gated"): None,
}


def _without_unset_additions(dump: dict[str, Any]) -> dict[str, Any]:
    for path, default in ADDED_FIELDS.items():
        parent: Any = dump
        for key in path[:-1]:
            parent = parent.get(key) if isinstance(parent, dict) else None
        if isinstance(parent, dict) and parent.get(path[-1], default) == default:
            parent.pop(path[-1], None)
    return dump


def load_task_spec(name: str) -> TaskSpec:
    """A task spec by name (tasks/<name>.yaml), parsed and validated (the scorer check is the tasks layer's)."""
    path = TASKS_DIR / f"{name}.yaml"
    if not path.is_file():
        known = yaml_stems(TASKS_DIR)
        raise ConfigError(f"unknown task '{name}'{did_you_mean(name, known)} (known tasks: {', '.join(known)})")
    return read_task_spec(path)


def read_task_spec(path: Path) -> TaskSpec:
    """A task spec from a YAML file, parsed and validated."""
    return validated(TaskSpec, load_yaml(path), path)


def all_task_specs() -> list[TaskSpec]:
    """Every task spec in tasks/."""
    return [load_task_spec(name) for name in yaml_stems(TASKS_DIR)]
