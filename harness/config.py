"""Pydantic models of model cards and task specs, and their loading from YAML (unknown fields rejected)."""

from __future__ import annotations

import hashlib
import importlib
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from harness.errors import ConfigError

REPO_ROOT = Path(__file__).resolve().parent.parent
CARDS_DIR = REPO_ROOT / "model_cards"
TASKS_DIR = REPO_ROOT / "tasks"

Mode = Literal["on", "off"]
DataSource = Literal["auto", "hf", "local", "fixture", "package"]
M = TypeVar("M", bound=BaseModel)


class Strict(BaseModel):
    """Base of every config model: unknown fields are an error, values are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Sampling(Strict):
    """Decoding parameters; temperature 0 means greedy."""

    temperature: float = 0.0
    top_p: float = 1.0
    top_k: int = 0
    min_p: float = 0.0
    repetition_penalty: float = 1.0
    presence_penalty: float = 0.0

    @property
    def greedy(self) -> bool:
        """True when decoding is greedy (no sampling)."""
        return self.temperature == 0.0


class ReasoningTags(Strict):
    """How a family marks its reasoning and answer in generated text."""

    think_start: str | None = None
    think_end: str | None = None
    answer_start: str | None = None
    answer_end: str | None = None


class ThinkingSwitch(Strict):
    """How thinking is turned on or off: a chat-template kwarg, a prompt flag, or not at all."""

    kind: Literal["none", "always", "template_kwarg", "prompt_flag"] = "none"
    kwarg: str = "enable_thinking"
    on_flag: str = "/think"
    off_flag: str = "/no_think"
    default: Mode = "off"


class ClaimProtocol(Strict):
    """How a published score was measured, as far as its source says (None: not stated)."""

    samples: int | None = None  # k samples per problem, pass@1 their mean (None: one, or not stated)
    temperature: float | None = None  # 0: greedy
    top_p: float | None = None
    top_k: int | None = None
    presence_penalty: float | None = None
    max_tokens: int | None = None
    shots: int | None = None  # few-shot examples in the prompt
    name: str | None = None  # an owb protocol that reproduces it (`--protocol NAME`)

    def describe(self) -> str:
        """The settings in a few words, e.g. 'k=64, temp 0.6, top_p 0.95, 32768 max tokens'."""
        parts = [f"k={self.samples}" if self.samples else "",
                 "greedy" if self.temperature == 0 else f"temp {self.temperature:g}" if self.temperature else "",
                 f"top_p {self.top_p:g}" if self.top_p else "", f"top_k {self.top_k}" if self.top_k else "",
                 f"presence {self.presence_penalty:g}" if self.presence_penalty else "",
                 f"{self.max_tokens} max tokens" if self.max_tokens else "",
                 f"{self.shots}-shot" if self.shots is not None else "",
                 f"protocol {self.name}" if self.name else ""]
        return ", ".join(p for p in parts if p) or "settings not stated"


class PublishedScore(Strict):
    """A score the model's authors published: the benchmark exactly as they name it, the owb task and metric that
    measure the same thing (none where no owb task does), the thinking mode, the protocol, and the source."""

    benchmark: str  # as published: "MATH-500", "MATH" (all 5000), "AIME 2024", "GSM8K", "HumanEval", ...
    task: str | None = None
    metric: str | None = None
    value: float
    thinking: Mode | None = None
    protocol: ClaimProtocol = ClaimProtocol()
    notes: str = ""
    source: str

    @model_validator(mode="after")
    def _task_needs_metric(self) -> PublishedScore:
        if (self.task is None) != (self.metric is None):
            raise ValueError(f"claim {self.benchmark}: `task` and `metric` go together")
        return self


class ModelCard(Strict):
    """Everything owb needs to load, prompt, decode and split one model's output."""

    id: str
    family: str
    architecture: str
    hf_repo: str | None = None
    revision: str | None = None
    local_path: str | None = None
    tiny: str | None = Field(default=None, description="make-tiny recipe that builds this model on first use")
    package: str | None = Field(default=None, description="an installed Python package that ships the weights")
    gguf_file: str | None = None
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = "auto"
    trust_remote_code: bool = False
    chat: bool = True
    system_prompt: str | None = None
    chat_template_kwargs: dict[str, Any] = {}
    engine_args: dict[str, dict[str, Any]] = Field(
        default={}, description="per backend name, options for that backend (validated by it; CLI flags override)")
    shape: dict[str, Any] | None = Field(
        default=None, description="config.json values of the architecture, to build random weights of the real shape")
    reasoning: ReasoningTags = ReasoningTags()
    thinking: ThinkingSwitch = ThinkingSwitch()
    sampling: dict[Mode, Sampling] = {"off": Sampling()}
    max_new_tokens: dict[Mode, int] = {"off": 1024}
    # Longer budgets the family's reports use on particular tasks (Qwen3: 38,912 tokens on AIME), thinking on.
    task_max_new_tokens: dict[str, int] = {}
    context_length: int = 32768
    license: str = ""
    published: list[PublishedScore] = []
    notes: str = ""

    @model_validator(mode="after")
    def _check_source(self) -> ModelCard:
        if not (self.hf_repo or self.local_path or self.tiny or self.package):
            raise ValueError("a card needs hf_repo, local_path, package or tiny")
        return self

    def resolve_mode(self, requested: Mode | None) -> Mode:
        """The thinking mode to run: the request if the family allows it, else the card's default."""
        if requested is None:
            return self.thinking.default
        if self.thinking.kind == "none" and requested == "on":
            raise ConfigError(f"model {self.id} has no thinking mode; drop --thinking on")
        if self.thinking.kind == "always" and requested == "off":
            raise ConfigError(f"model {self.id} always thinks and cannot turn it off; drop --thinking off")
        return requested

    def sampling_for(self, mode: Mode) -> Sampling:
        """Recommended sampling for a mode, falling back to the other mode's or greedy."""
        return self.sampling.get(mode) or next(iter(self.sampling.values()), Sampling())

    def max_new_tokens_for(self, mode: Mode, task: str | None = None) -> int:
        """Recommended generation budget for a mode (and a task the family's reports give its own budget)."""
        if mode == "on" and task in self.task_max_new_tokens:
            return self.task_max_new_tokens[task]
        return self.max_new_tokens.get(mode) or max(self.max_new_tokens.values())


class SourceHF(Strict):
    """A dataset on the Hugging Face Hub at a pinned revision."""

    path: str
    name: str | None = None
    split: str
    revision: str
    fewshot_split: str | None = None  # where the few-shot rows live when they are not in `split`


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

    @model_validator(mode="after")
    def _check_primary(self) -> TaskSpec:
        reported = [n for m in self.metrics for n in m.names(1 << 30) if m.reduce != "majority"]
        if self.primary_metric not in reported:
            raise ValueError(f"primary_metric {self.primary_metric} is not one of the metrics ({', '.join(reported)})")
        return self

    def spec_hash(self) -> str:
        """Short stable hash of the whole spec, recorded with every result."""
        return stable_hash(self.model_dump(mode="json"))


def stable_hash(obj: Any) -> str:
    """sha256 (first 16 hex digits) of an object's canonical JSON."""
    blob = json.dumps(obj, sort_keys=True, ensure_ascii=False, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def _load_yaml(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        line = f" line {where.line + 1}" if where else ""
        raise ConfigError(f"malformed YAML in {path}{line}: {getattr(exc, 'problem', exc)}") from None
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"malformed YAML in {path}: expected a mapping at the top level")
    return data


def first_error(exc: ValidationError) -> str:
    """A pydantic validation error's first problem in one line: where it is and what is wrong."""
    err = exc.errors()[0]
    loc = ".".join(str(p) for p in err["loc"]) or "(top level)"
    return f"{loc}: {err['msg']}"


def _validate(model: type[M], data: dict[str, Any], path: Path) -> M:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(f"invalid {model.__name__} in {path}: {first_error(exc)}") from None


def _available(directory: Path) -> list[str]:
    return sorted(p.stem for p in directory.glob("*.yaml"))


def load_card(name_or_path: str) -> ModelCard:
    """A card by id (model_cards/<id>.yaml) or by path to a YAML file."""
    path = Path(name_or_path)
    if path.suffix in {".yaml", ".yml"}:
        if not path.is_file():
            raise ConfigError(f"model card file not found: {path}")
    else:
        path = CARDS_DIR / f"{name_or_path}.yaml"
        if not path.is_file():
            raise ConfigError(f"unknown model '{name_or_path}'; `owb list models` shows the cards")
    return _validate(ModelCard, _load_yaml(path), path)


def load_task(name: str) -> TaskSpec:
    """A task spec by name (tasks/<name>.yaml)."""
    path = TASKS_DIR / f"{name}.yaml"
    if not path.is_file():
        raise ConfigError(f"unknown task '{name}'; known tasks: {', '.join(_available(TASKS_DIR))}")
    return load_task_file(path)


def load_task_file(path: Path) -> TaskSpec:
    """A task spec from a YAML file, validated with its scorer (arguments, the scores its metrics reduce)."""
    spec = _validate(TaskSpec, _load_yaml(path), path)
    from harness.scorers import check_spec

    check_spec(spec, path)
    return spec


def all_cards() -> list[ModelCard]:
    """Every card in model_cards/."""
    return [load_card(name) for name in _available(CARDS_DIR)]


def all_tasks() -> list[TaskSpec]:
    """Every task spec in tasks/."""
    return [load_task(name) for name in _available(TASKS_DIR)]


def owb_home() -> Path:
    """Where owb keeps made things (tiny models): $OWB_HOME or ~/.cache/owb."""
    return Path(os.environ.get("OWB_HOME", Path.home() / ".cache" / "owb"))


def load_hook(target: str) -> Callable[..., Any]:
    """A function named "module:function" (task hooks)."""
    module, _, name = target.partition(":")
    try:
        hook: Callable[..., Any] = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError, ValueError):
        raise ConfigError(f"hook '{target}' not found (expected module:function)") from None
    return hook
