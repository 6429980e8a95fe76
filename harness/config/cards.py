"""Model cards (model_cards/*.yaml): where a model comes from, how to prompt, decode and split it, and the scores its
authors published."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, model_validator

from harness.config.base import Mode, Strict, load_yaml, validated, yaml_stems
from harness.core.errors import ConfigError, did_you_mean
from harness.core.paths import CARDS_DIR


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
    # The owb task arguments that measure it (`--tasks TASK@ARG=VALUE`), e.g. LiveCodeBench's date window.
    task_args: dict[str, str] = {}

    def describe(self) -> str:
        """The settings in a few words, e.g. 'k=64, temp 0.6, top_p 0.95, 32768 max tokens'."""
        parts = [f"k={self.samples}" if self.samples else "",
                 "greedy" if self.temperature == 0 else f"temp {self.temperature:g}" if self.temperature else "",
                 f"top_p {self.top_p:g}" if self.top_p else "", f"top_k {self.top_k}" if self.top_k else "",
                 f"presence {self.presence_penalty:g}" if self.presence_penalty else "",
                 f"{self.max_tokens} max tokens" if self.max_tokens else "",
                 f"{self.shots}-shot" if self.shots is not None else "",
                 f"protocol {self.name}" if self.name else "",
                 *(f"{key} {value}" for key, value in sorted(self.task_args.items()))]
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
    no_task: str = ""  # why no owb task measures it (a figure without a task says why)

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
    # Task arguments the family's reports use (e.g. the LiveCodeBench window), unless the task name gives its own.
    task_args: dict[str, dict[str, str]] = {}
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


def unnamed_card(label: str) -> ModelCard:
    """The card of outputs replayed without one: a chat model with no thinking tags, named `label` (its outputs are
    never split into reasoning and answer; pass --model for that)."""
    return ModelCard(id=label, family="replayed", architecture="none", local_path=".",
                     notes="no card was given: replayed outputs, scored whole")


def load_card(name_or_path: str) -> ModelCard:
    """A card by id (model_cards/<id>.yaml) or by path to a YAML file."""
    path = Path(name_or_path)
    if path.suffix in {".yaml", ".yml"}:
        if not path.is_file():
            raise ConfigError(f"model card file not found: {path}")
    else:
        path = CARDS_DIR / f"{name_or_path}.yaml"
        if not path.is_file():
            raise ConfigError(f"unknown model '{name_or_path}'{did_you_mean(name_or_path, yaml_stems(CARDS_DIR))} "
                              "(`owb list models` shows the cards)")
    return validated(ModelCard, load_yaml(path), path)


def all_cards() -> list[ModelCard]:
    """Every card in model_cards/."""
    return [load_card(name) for name in yaml_stems(CARDS_DIR)]
