"""transformers backend: left-padded batches of similar length, stop strings, seeded sampling, per-step clock.

Plain path: left-padded batches sorted by prompt length, dynamic KV cache. Fast paths, each switched off for the
rest of the run if it fails (its unfinished requests go on without it):
- static (automatic on CUDA): a static KV cache that transformers compiles with torch.compile and CUDA graphs, so
  a decode step is no longer bound by Python and kernel-launch overhead. Batch sizes are rounded up to a power of
  two (padding rows are dropped) and the cache is sized for the group's longest request, so few shapes compile.
  A greedy request alone skips `generate` for a lean compiled decode loop (hf_decode).
- continuous: transformers' continuous batching (hf_continuous) for groups of requests, with per-request timings;
  requests that need what it lacks (stop strings, repetition penalty) take the static path.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Generator, Iterator, Sequence
from itertools import groupby
from typing import Any, Literal

import torch
import transformers
from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer, LogitsProcessor

from harness.backends import hf_continuous, hf_decode
from harness.backends.base import Generation, GenRequest, TokenizerMethods
from harness.config import ModelCard
from harness.errors import UserError

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
FAST_PATHS = ("auto", "static", "continuous", "off")


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
        fast_path: str = "auto",
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
        if fast_path not in FAST_PATHS:
            raise UserError(f"--fast-path must be one of {', '.join(FAST_PATHS)}, not '{fast_path}'")
        if fast_path == "auto":
            fast_path = "static" if self.device.startswith("cuda") else "off"
        self.static = fast_path != "off"
        self.continuous = fast_path == "continuous"
        self.lean = self.static
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
        self.decoder = hf_decode.StaticDecoder(self.model, compile_step=self.device.startswith("cuda"))
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
                "fast_path": self._fast_path_description(),
                "attn_implementation": getattr(self.model.config, "_attn_implementation", None),
            },
        }

    def _fast_path_description(self) -> str:
        static = ("static KV cache, batch sizes rounded up to powers of two (+ torch.compile on CUDA)"
                  + ("; a greedy request alone: compiled decode loop" if self.lean else ""))
        if self.continuous:
            return f"continuous batching for groups; {static} for the rest"
        return static if self.static else "off"

    def generate(self, requests: Sequence[GenRequest]) -> Iterator[Generation]:
        """Generate each group of requests with equal settings, by continuous batching where it can, else in static
        batches sorted by prompt length (one batch's results are yielded together)."""
        encoded = [(r, list(r.prompt_ids) if r.prompt_ids is not None
                    else self.tokenizer.encode(r.prompt, add_special_tokens=not self.card.chat)) for r in requests]
        encoded.sort(key=lambda pair: (self._settings(pair[0]), len(pair[1])))
        for _, group in groupby(encoded, key=lambda pair: self._settings(pair[0])):
            items = list(group)
            if self.continuous and self.batch_size > 1 and len(items) > 1 and hf_continuous.supports(items[0][0]):
                items = yield from self._generate_continuous(items)
            cache_len = max(len(ids) for _, ids in items) + items[0][0].max_new_tokens if items else 0
            for start in range(0, len(items), self.batch_size):
                yield from self._generate_batch(items[start : start + self.batch_size], cache_len)

    def _generate_continuous(
        self, items: list[tuple[GenRequest, list[int]]]
    ) -> Generator[Generation, None, list[tuple[GenRequest, list[int]]]]:
        """Continuous batching; on failure it is switched off for the run and the unfinished requests are returned."""
        done: set[str] = set()
        try:  # not under inference_mode: the engine's thread updates tensors made here (fails in transformers 5.17)
            for finished in hf_continuous.generate_continuous(
                self.model, items, self.eos_ids, self.tokenizer.pad_token_id, self.batch_size,
                on_gpu=self.device.startswith("cuda"),
            ):
                done.add(finished.request.key)
                yield self._continuous_generation(finished)
        except Exception as exc:  # noqa: BLE001 - any engine failure falls back to the static or plain path
            self.continuous = False
            print(f"warning: continuous batching failed ({type(exc).__name__}: {exc}); the "
                  f"{len(items) - len(done)} unfinished requests go on without it", file=sys.stderr)
        return [item for item in items if item[0].key not in done]

    def _continuous_generation(self, finished: hf_continuous.Finished) -> Generation:
        request, tokens = finished.request, finished.token_ids
        n, finish = self._finished_length(tokens, request)
        if request.min_new_tokens == request.max_new_tokens:  # EOS was off, not masked: every token counts
            n, finish = len(tokens), "length"
        shown = tokens[: n - 1] if n and tokens[n - 1] in self.eos_ids else tokens[:n]
        return Generation(
            key=request.key,
            text=str(self.tokenizer.decode(shown, skip_special_tokens=False)),
            prompt_tokens=finished.prompt_tokens,
            output_tokens=n,
            finish_reason=finish,
            timing_scope="request",
            token_ids=tuple(tokens[:n]),
            **hf_continuous.timings(finished),
        )

    def _decoded_generation(self, request: GenRequest, prompt_ids: list[int], done: hf_decode.Decoded) -> Generation:
        tokens = done.token_ids
        n, finish = self._finished_length(tokens, request)
        shown = tokens[: n - 1] if n and tokens[n - 1] in self.eos_ids else tokens[:n]
        return Generation(
            key=request.key,
            text=str(self.tokenizer.decode(shown, skip_special_tokens=False)),
            prompt_tokens=len(prompt_ids),
            output_tokens=n,
            finish_reason=finish,
            ttft_s=done.ttft_s,
            tpot_s=done.step_s if n > 1 else None,
            e2e_s=done.ttft_s + done.step_s * (n - 1),  # steps run past EOS before it was seen are not counted
            timing_scope="request",
            token_ids=tuple(tokens[:n]),
        )

    @staticmethod
    def _settings(request: GenRequest) -> tuple[Any, ...]:
        return (request.sampling, request.max_new_tokens, request.stop, request.min_new_tokens)

    def _generate_batch(self, items: list[tuple[GenRequest, list[int]]], cache_len: int) -> Iterator[Generation]:
        """One static batch; on the static path padded with copies of its last row to a power-of-two size."""
        first = items[0][0]
        if self.lean and len(items) == 1 and hf_decode.supports(first):
            prompt_ids = items[0][1]
            try:
                decoded = self.decoder.decode(prompt_ids, first, self.eos_ids)
            except Exception as exc:  # noqa: BLE001 - the compiled loop failing leaves generate's static path
                self.lean = False
                print(f"warning: the compiled decode loop failed ({type(exc).__name__}: {exc}); generate takes over",
                      file=sys.stderr)
            else:
                yield self._decoded_generation(first, prompt_ids, decoded)
                return
        rows = [ids for _, ids in items]
        kwargs = self._generation_kwargs(first)
        if self.static:
            rows += [rows[-1]] * (min(1 << (len(rows) - 1).bit_length(), self.batch_size) - len(rows))
            kwargs.update(cache_implementation="static", max_cache_len=cache_len)
        batch = self.tokenizer.pad({"input_ids": rows}, padding=True, return_tensors="pt").to(self.device)
        clock = StepClock(sync=self.device.startswith("cuda"))
        torch.manual_seed(first.seed)
        start = time.perf_counter()
        try:
            with torch.inference_mode():
                out = self.model.generate(**batch, **kwargs, logits_processor=[clock])
        except Exception as exc:  # noqa: BLE001 - a failed compile falls back to the plain path for the rest of the run
            if not self.static:
                raise
            self.static = self.continuous = False
            print(f"warning: the static-cache path failed ({type(exc).__name__}: {exc}); the plain path takes over",
                  file=sys.stderr)
            return (yield from self._generate_batch(items, cache_len))
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
        """Drop the model (and the decode loop's hold on it and its cache) and free GPU memory."""
        del self.model, self.decoder
        if torch.cuda.is_available():
            torch.cuda.empty_cache()


def _cut_at_stop(text: str, stops: tuple[str, ...]) -> str:
    cut = min((i for s in stops if (i := text.find(s)) >= 0), default=len(text))
    return text[:cut]
