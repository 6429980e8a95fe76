"""The backend contract: GenRequest in, Generation out; what owb asks of any engine (EngineRequest); each
backend's own options model; and the registry, whose modules are imported only when a backend is used.

A backend is one module with a class that has `name`, an `Options` model (its settings, validated: an unknown
or ill-typed `--backend-arg` is an error), `measures_speed` (whether `owb bench` may drive it),
`generates_in_background` (whether it goes on generating while owb scores: how generation time is counted) and the
methods of `Backend`. Registering it is one line in BACKENDS (or `register_backend` at run time)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Literal, Protocol, Self

from pydantic import BaseModel, ConfigDict, ValidationError

from harness.config.cards import ModelCard, Sampling
from harness.core.errors import ConfigError, first_error
from harness.records.base import BackendInfo
from harness.records.sample import Timings


@dataclass(frozen=True)
class GenRequest:
    """One completion to produce: a rendered prompt, how to decode it, and the sample it belongs to."""

    key: str
    prompt: str
    sampling: Sampling
    max_new_tokens: int
    seed: int
    stop: tuple[str, ...] = ()
    min_new_tokens: int = 0  # EOS and stop tokens are masked until this many tokens (fixed-length runs)
    prompt_ids: tuple[int, ...] | None = None  # exact token ids (benchmarks); `prompt` is ignored when set


@dataclass(frozen=True)
class Generation:
    """What a backend returns for one request."""

    key: str
    text: str
    prompt_tokens: int
    output_tokens: int
    finish_reason: Literal["stop", "length"]
    timings: Timings = Timings()
    token_ids: tuple[int, ...] = ()
    reasoning_tokens: int | None = None  # generated thinking tokens, where the generator knows them exactly


class EngineRequest(BaseModel):
    """What owb asks of any engine, in owb's words; each backend maps it to its own options or refuses it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    batch_size: int | None = None  # requests in flight (None: the backend's default)
    dtype: str | None = None  # None: the card's dtype
    tp: int | None = None  # tensor parallel size
    pp: int | None = None  # pipeline parallel size
    dp: int | None = None  # data parallel size
    distributed_backend: str | None = None  # how parallel workers are run (mp, ray)
    random_weights: bool = False  # the card's real shape with random values (speed runs; nothing downloaded)
    max_model_len: int | None = None  # the longest prompt + output the engine must hold (engines that reserve it)
    prefix_caching: bool | None = None  # False: never reuse a cached prefix (speed runs)

    @property
    def parallel(self) -> bool:
        """Whether more than one device was asked for."""
        return any((x or 1) > 1 for x in (self.tp, self.pp, self.dp)) or self.distributed_backend is not None


class BackendOptions(BaseModel):
    """Base of a backend's options: unknown fields are an error, values are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    @classmethod
    def build(cls, card: ModelCard, request: EngineRequest, args: dict[str, Any]) -> Self:
        """The options from owb's request and the backend args (card's engine_args for this backend, then CLI).

        The default maps batch_size, dtype and random_weights by name where the model has such fields and refuses
        parallelism; backends that shard a model override it."""
        if request.parallel:
            raise ConfigError("it runs on one device; --tp/--pp/--dp/--distributed-backend are for engines that "
                              "shard a model (vllm)")
        if request.random_weights and "random_weights" not in cls.model_fields:
            raise ConfigError("it cannot load random weights (the model's weights are not in this process)")
        common = {k: v for k, v in (("batch_size", request.batch_size), ("dtype", request.dtype),
                                    ("random_weights", request.random_weights or None))
                  if v is not None and k in cls.model_fields}
        return cls.parse({**common, **args})

    @classmethod
    def parse(cls, values: dict[str, Any]) -> Self:
        """Validate options; an error names the option and what is wrong with it, in one line."""
        try:
            return cls.model_validate(values)
        except ValidationError as exc:
            err = exc.errors()[0]
            if err["type"] == "extra_forbidden":
                loc = ".".join(str(p) for p in err["loc"])
                raise ConfigError(f"unknown option '{loc}' (it takes: {', '.join(cls.model_fields)})") from None
            raise ConfigError(f"option {first_error(exc)}") from None


class Backend(Protocol):
    """An engine that turns requests into generations, yielding each as soon as it finishes."""

    name: ClassVar[str]
    Options: ClassVar[type[BackendOptions]]
    measures_speed: ClassVar[bool]  # whether `owb bench` may drive it
    needs_card: ClassVar[bool]  # whether it runs the card's model (False: replayed outputs, a run may have no card)
    generates_in_background: ClassVar[bool]  # keeps generating while owb scores (an engine process, a server)

    def describe(self) -> BackendInfo:
        """Name, version and the arguments the engine was built with, for run.json."""
        ...

    def render_chat(self, messages: list[dict[str, str]], template_kwargs: dict[str, Any]) -> str:
        """The prompt text for a chat, through the model's own chat template."""
        ...

    def count_tokens(self, text: str) -> int:
        """Tokens in a piece of text (0 when the backend has no tokenizer)."""
        ...

    def vocab(self) -> tuple[int, frozenset[int]]:
        """Vocabulary size and the special token ids (for random prompts of exact lengths)."""
        ...

    def generate(self, requests: Sequence[GenRequest]) -> Iterator[Generation]:
        """Generations for all requests, in any order, each yielded when done."""
        ...

    def report(self) -> dict[str, Any]:
        """What the engine observed while it ran (e.g. requests per replica), recorded in run.json; {} for none."""
        ...

    def close(self) -> None:
        """Free the engine."""
        ...


class NoReport:
    """`report` for backends that observe nothing beyond each generation's own timings."""

    def report(self) -> dict[str, Any]:
        """Nothing to report."""
        return {}


class TokenizerMethods(NoReport):
    """render_chat, count_tokens and vocab over a Hugging Face tokenizer, shared by the backends that have one."""

    card: ModelCard
    tokenizer: Any  # None where no tokenizer could be loaded (a served model's card without local files)

    def render_chat(self, messages: list[dict[str, str]], template_kwargs: dict[str, Any]) -> str:
        """Prompt text through the model's chat template, with the generation prompt appended."""
        if self.tokenizer is None:
            raise ConfigError(f"the chat template of '{self.card.id}' is not available locally")
        if self.tokenizer.chat_template is None:
            raise ConfigError(f"model '{self.card.id}' has no chat template; set `chat: false` in its card")
        chat: Any = messages
        return str(self.tokenizer.apply_chat_template(chat, tokenize=False, add_generation_prompt=True,
                                                      **template_kwargs))

    def count_tokens(self, text: str) -> int:
        """Tokens in text, without special tokens added (0 without a tokenizer)."""
        if not text or self.tokenizer is None:
            return 0
        return len(self.tokenizer.encode(text, add_special_tokens=False))

    def vocab(self) -> tuple[int, frozenset[int]]:
        """Vocabulary size and special token ids (an empty vocabulary without a tokenizer)."""
        if self.tokenizer is None:
            return 0, frozenset()
        return len(self.tokenizer), frozenset(self.tokenizer.all_special_ids)
