"""The backend protocol: GenRequest in, Generation out, and the registry of engines (imported lazily)."""

from __future__ import annotations

import importlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from harness.config import ModelCard, Sampling
from harness.errors import UserError


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


@dataclass
class Generation:
    """What a backend returns for one request. Timings in seconds, None where the engine cannot measure them.

    `timing_scope` says whether ttft_s is the request's own ("request") or its batch's prefill ("batch").
    """

    key: str
    text: str
    prompt_tokens: int
    output_tokens: int
    finish_reason: Literal["stop", "length"]
    ttft_s: float | None = None
    tpot_s: float | None = None
    e2e_s: float | None = None
    queue_s: float | None = None
    timing_scope: Literal["request", "batch", "none"] = "none"
    token_ids: tuple[int, ...] = ()
    itl_s: tuple[float, ...] = ()  # gaps between streamed chunks (streaming backends only)


class Backend(Protocol):
    """An engine that turns requests into generations, yielding each as soon as it finishes."""

    name: str

    def describe(self) -> dict[str, Any]:
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

    def close(self) -> None:
        """Free the engine."""
        ...


class TokenizerMethods:
    """render_chat, count_tokens and vocab over a Hugging Face tokenizer, shared by the backends that have one."""

    card: ModelCard
    tokenizer: Any  # None where no tokenizer could be loaded (a served model's card without local files)

    def render_chat(self, messages: list[dict[str, str]], template_kwargs: dict[str, Any]) -> str:
        """Prompt text through the model's chat template, with the generation prompt appended."""
        if self.tokenizer is None:
            raise UserError(f"the chat template of '{self.card.id}' is not available locally")
        if self.tokenizer.chat_template is None:
            raise UserError(f"model '{self.card.id}' has no chat template; set `chat: false` in its card")
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


BACKENDS: dict[str, str] = {
    "hf": "harness.backends.hf:HFBackend",
    "vllm": "harness.backends.vllm:VLLMBackend",
    "openai": "harness.backends.openai:OpenAIBackend",
    "replay": "harness.backends.replay:ReplayBackend",
}


def make_backend(name: str, card: ModelCard, options: dict[str, Any]) -> Backend:
    """Import the named backend's module only now and build it for the card."""
    target = BACKENDS.get(name)
    if target is None:
        raise UserError(f"unknown backend '{name}'; choose one of {', '.join(BACKENDS)}")
    module_name, cls_name = target.split(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise UserError(f"backend '{name}' needs a package that is not installed: {exc.name}") from None
    backend: Backend = getattr(module, cls_name)(card, **options)
    return backend
