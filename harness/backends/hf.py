"""transformers backend: left-padded batches of similar length, stop strings, seeded sampling, per-step clock.

Fast path: a batch of one uses a static KV cache, which transformers compiles with torch.compile on CUDA
(several times the plain decode speed at batch 1); chosen automatically on CUDA, with the plain dynamic-cache
path as the fallback if compilation fails. Larger batches are length-bucketed (sorted by prompt length).
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from itertools import groupby
from typing import Any, Literal

import torch
import transformers
from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer, LogitsProcessor

from harness.backends.base import Generation, GenRequest, TokenizerMethods
from harness.config import ModelCard
from harness.errors import UserError

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


class StepClock(LogitsProcessor):
    """A no-op logits processor that timestamps every decoding step (the first one ends the prefill)."""

    def __init__(self, sync: bool) -> None:
        self.sync = sync
        self.times: list[float] = []

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        if self.sync:
            torch.cuda.synchronize()
        self.times.append(time.perf_counter())
        return scores


class HFBackend(TokenizerMethods):
    """Runs a causal LM through transformers `generate`."""

    name = "hf"

    def __init__(
        self,
        card: ModelCard,
        model_path: str,
        batch_size: int = 16,
        device: str | None = None,
        dtype: str | None = None,
        random_weights: bool = False,
        fast: bool | None = None,
    ) -> None:
        self.card = card
        self.batch_size = batch_size
        self.random_weights = random_weights
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        if self.device.startswith("cuda") and not torch.cuda.is_available():
            raise UserError("no GPU: --device cuda was asked for but torch sees no CUDA device")
        wanted = dtype or card.dtype
        if wanted == "auto":
            wanted = "bfloat16" if self.device.startswith("cuda") else "float32"
        self.dtype = wanted
        self.fast = self.device.startswith("cuda") if fast is None else fast
        load_args: dict[str, Any] = {"trust_remote_code": card.trust_remote_code}
        if card.hf_repo and model_path == card.hf_repo and card.revision:
            load_args["revision"] = card.revision
        if card.gguf_file:
            load_args["gguf_file"] = card.gguf_file
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(model_path, **load_args)
            if random_weights:  # the real shape from config.json, random values: speed does not depend on them
                config = AutoConfig.from_pretrained(model_path, **load_args)
                self.model = AutoModelForCausalLM.from_config(config, dtype=DTYPES[wanted])
            else:
                self.model = AutoModelForCausalLM.from_pretrained(model_path, dtype=DTYPES[wanted], **load_args)
        except OSError as exc:
            raise UserError(f"cannot load model '{card.id}' from {model_path}: {str(exc).splitlines()[0]}") from None
        self.model.to(self.device).eval()
        self.tokenizer.padding_side = "left"
        if self.tokenizer.pad_token_id is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.eos_ids = self._eos_ids()
        self.model_path = model_path

    def _eos_ids(self) -> list[int]:
        ids = self.model.generation_config.eos_token_id
        found = set(ids if isinstance(ids, list) else [ids] if ids is not None else [])
        if self.tokenizer.eos_token_id is not None:
            found.add(self.tokenizer.eos_token_id)
        return sorted(found)

    def describe(self) -> dict[str, Any]:
        """Backend name, transformers version and the load/generation arguments."""
        return {
            "name": self.name,
            "version": transformers.__version__,
            "args": {
                "model_path": self.model_path,
                "device": self.device,
                "dtype": self.dtype,
                "batch_size": self.batch_size,
                "random_weights": self.random_weights,
                "fast_path": "static KV cache (+ torch.compile on CUDA) at batch 1" if self.fast else "off",
                "attn_implementation": getattr(self.model.config, "_attn_implementation", None),
            },
        }

    def generate(self, requests: Sequence[GenRequest]) -> Iterator[Generation]:
        """Generate in batches sorted by prompt length; one batch's results are yielded together."""
        encoded = [(r, list(r.prompt_ids) if r.prompt_ids is not None
                    else self.tokenizer.encode(r.prompt, add_special_tokens=not self.card.chat)) for r in requests]
        encoded.sort(key=lambda pair: (self._settings(pair[0]), len(pair[1])))
        for _, group in groupby(encoded, key=lambda pair: self._settings(pair[0])):
            items = list(group)
            for start in range(0, len(items), self.batch_size):
                yield from self._generate_batch(items[start : start + self.batch_size])

    @staticmethod
    def _settings(request: GenRequest) -> tuple[Any, ...]:
        return (request.sampling, request.max_new_tokens, request.stop, request.min_new_tokens)

    def _generate_batch(self, items: list[tuple[GenRequest, list[int]]]) -> Iterator[Generation]:
        first = items[0][0]
        batch = self.tokenizer.pad(
            {"input_ids": [ids for _, ids in items]}, padding=True, return_tensors="pt"
        ).to(self.device)
        clock = StepClock(sync=self.device.startswith("cuda"))
        kwargs = self._generation_kwargs(first)
        torch.manual_seed(first.seed)
        start = time.perf_counter()
        if self.fast and len(items) == 1:
            kwargs["cache_implementation"] = "static"
        try:
            with torch.inference_mode():
                out = self.model.generate(**batch, **kwargs, logits_processor=[clock])
        except Exception:  # noqa: BLE001 - a failed compile falls back to the plain path for the rest of the run
            if "cache_implementation" not in kwargs:
                raise
            self.fast = False
            return (yield from self._generate_batch(items))
        prompt_len = batch["input_ids"].shape[1]
        for row, (request, prompt_ids) in enumerate(items):
            yield self._to_generation(request, len(prompt_ids), out[row, prompt_len:].tolist(), clock.times, start)

    def _generation_kwargs(self, request: GenRequest) -> dict[str, Any]:
        s = request.sampling
        kwargs: dict[str, Any] = {
            "max_new_tokens": request.max_new_tokens,
            "eos_token_id": self.eos_ids,
            "pad_token_id": self.tokenizer.pad_token_id,
            "do_sample": not s.greedy,
            "repetition_penalty": s.repetition_penalty,
            "min_new_tokens": request.min_new_tokens or None,
        }
        if not s.greedy:
            kwargs.update(temperature=s.temperature, top_p=s.top_p, top_k=s.top_k or None, min_p=s.min_p or None)
        else:
            kwargs.update(temperature=None, top_p=None, top_k=None)
        if request.stop:
            kwargs.update(stop_strings=list(request.stop), tokenizer=self.tokenizer)
        return kwargs

    def _to_generation(
        self, request: GenRequest, n_prompt: int, tokens: list[int], times: list[float], start: float
    ) -> Generation:
        n, finish = self._finished_length(tokens, request)
        shown = tokens[: n - 1] if n and tokens[n - 1] in self.eos_ids else tokens[:n]
        text = _cut_at_stop(str(self.tokenizer.decode(shown, skip_special_tokens=False)), request.stop)
        ttft = times[0] - start if times else None
        e2e = times[min(n, len(times)) - 1] - start if n and times else ttft
        tpot = (e2e - ttft) / (n - 1) if n > 1 and e2e is not None and ttft is not None else None
        return Generation(
            key=request.key,
            text=text,
            prompt_tokens=n_prompt,
            output_tokens=n,
            finish_reason=finish,
            ttft_s=ttft,
            tpot_s=tpot,
            e2e_s=e2e,
            timing_scope="batch",
            token_ids=tuple(tokens[:n]),
        )

    def _finished_length(self, tokens: list[int], request: GenRequest) -> tuple[int, Literal["stop", "length"]]:
        """Tokens this row really produced (EOS included) and why it stopped."""
        eos = set(self.eos_ids)
        eos_at = next((i for i, tok in enumerate(tokens) if tok in eos), None)
        before_eos = tokens if eos_at is None else tokens[:eos_at]
        text = self.tokenizer.decode(before_eos, skip_special_tokens=False) if request.stop else ""
        if any(s in text for s in request.stop):
            for i in range(len(before_eos)):  # the token that completed the first stop string
                piece = self.tokenizer.decode(before_eos[: i + 1], skip_special_tokens=False)
                if any(s in piece for s in request.stop):
                    return i + 1, "stop"
        if eos_at is not None:
            return eos_at + 1, "stop"
        return len(tokens), "length" if len(tokens) >= request.max_new_tokens else "stop"

    def close(self) -> None:
        """Drop the model and free GPU memory."""
        del self.model
        if torch.cuda.is_available():
            torch.cuda.empty_cache()


def _cut_at_stop(text: str, stops: tuple[str, ...]) -> str:
    cut = min((i for s in stops if (i := text.find(s)) >= 0), default=len(text))
    return text[:cut]
