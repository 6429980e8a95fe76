"""transformers backend: left-padded batches of similar length, stop strings, seeded sampling, per-step clock.

Plain path: left-padded batches sorted by prompt length, dynamic KV cache. Fast paths, each switched off for the
rest of the run if it fails (its unfinished requests go on without it):
- static (automatic on CUDA): a static KV cache that transformers compiles with torch.compile and CUDA graphs, so
  a decode step is no longer bound by Python and kernel-launch overhead. A group's last batch is padded to the full
  batch size (padding rows are dropped) and the cache is sized for its longest request, so one shape compiles.
  A greedy request alone skips `generate` for a lean compiled decode loop (hf_decode).
- continuous: transformers' continuous batching (hf_continuous) for groups of requests, with per-request timings;
  requests that need what it lacks (stop strings, repetition penalty) take the static path.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Generator, Iterator, Sequence
from functools import partial
from itertools import groupby
from typing import Any, Literal

import torch
import transformers
from pydantic import Field
from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer, LogitsProcessor

from harness.config.cards import ModelCard
from harness.core.errors import EngineError
from harness.core.log import warn
from harness.engines.base import BackendOptions, Generation, GenRequest, TokenizerMethods
from harness.engines.hf import continuous as hf_continuous
from harness.engines.hf import decode as hf_decode
from harness.engines.hf.sampling import PresencePenalty, SeededSampler
from harness.engines.weights import model_path
from harness.records.base import BackendInfo
from harness.records.sample import Timings

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


class HFOptions(BackendOptions):
    """Options of the transformers backend (`--backend-arg KEY=VALUE`, or the card's engine_args.hf)."""

    batch_size: int = Field(default=16, gt=0)  # rows per static batch; requests in flight when continuous
    device: str | None = None  # cpu | cuda | cuda:N (default: cuda when available)
    dtype: Literal["auto", "float32", "bfloat16", "float16"] | None = None  # default: the card's
    fast_path: Literal["auto", "static", "continuous", "off"] = "auto"  # auto: static on CUDA, off on CPU
    random_weights: bool = False  # the card's real shape, random values


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
    Options = HFOptions
    measures_speed = True
    needs_card = True
    generates_in_background = False  # generate() runs the model in this thread

    def __init__(self, card: ModelCard, options: HFOptions) -> None:
        self.card = card
        self.options = options
        self.batch_size = options.batch_size
        self.random_weights = options.random_weights
        self.device = options.device or ("cuda" if torch.cuda.is_available() else "cpu")
        if self.device.startswith("cuda") and not torch.cuda.is_available():
            raise EngineError("no GPU: --device cuda was asked for but torch sees no CUDA device")
        wanted = options.dtype or card.dtype
        if wanted == "auto":
            wanted = "bfloat16" if self.device.startswith("cuda") else "float32"
        self.dtype = wanted
        fast_path = options.fast_path
        if fast_path == "auto":
            fast_path = "static" if self.device.startswith("cuda") else "off"
        self.static = fast_path != "off"
        self.continuous = fast_path == "continuous"
        self.lean = self.static
        path = model_path(card, options.random_weights)
        load_args: dict[str, Any] = {"trust_remote_code": card.trust_remote_code}
        if card.hf_repo and path == card.hf_repo and card.revision:
            load_args["revision"] = card.revision
        if card.gguf_file:
            load_args["gguf_file"] = card.gguf_file
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(path, **load_args)
            if options.random_weights:  # the real shape from config.json, random values: speed does not depend on them
                config = AutoConfig.from_pretrained(path, **load_args)
                self.model = AutoModelForCausalLM.from_config(config, dtype=DTYPES[wanted])
            else:
                self.model = AutoModelForCausalLM.from_pretrained(path, dtype=DTYPES[wanted], **load_args)
        except OSError as exc:
            raise EngineError(f"cannot load model '{card.id}' from {path}: {str(exc).splitlines()[0]}") from None
        self.model.to(self.device).eval()
        self.tokenizer.padding_side = "left"
        if self.tokenizer.pad_token_id is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.eos_ids = self._eos_ids()
        self.decoder = hf_decode.StaticDecoder(self.model, compile_step=self.device.startswith("cuda"))
        self.model_path = path

    def _eos_ids(self) -> list[int]:
        ids = self.model.generation_config.eos_token_id
        found = set(ids if isinstance(ids, list) else [ids] if ids is not None else [])
        if self.tokenizer.eos_token_id is not None:
            found.add(self.tokenizer.eos_token_id)
        return sorted(found)

    def describe(self) -> BackendInfo:
        """Backend name, transformers version and the load/generation arguments."""
        return BackendInfo(
            name=self.name,
            version=transformers.__version__,
            args={
                "model_path": self.model_path,
                "device": self.device,
                "dtype": self.dtype,
                "batch_size": self.batch_size,
                "random_weights": self.random_weights,
                "fast_path": self._fast_path_description(),
                "attn_implementation": getattr(self.model.config, "_attn_implementation", None),
            },
        )

    def _fast_path_description(self) -> str:
        static = ("static KV cache, a group's last batch padded to full size (+ torch.compile on CUDA)"
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
            rows = self.batch_size if len(items) > self.batch_size else len(items)
            for start in range(0, len(items), self.batch_size):
                yield from self._generate_batch(items[start : start + self.batch_size], cache_len, rows)

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
                request = finished.request
                yield self._generation(request, finished.prompt_tokens, finished.token_ids,
                                       partial(hf_continuous.timings, finished),
                                       eos_off=request.min_new_tokens == request.max_new_tokens)
        except Exception as exc:  # noqa: BLE001 - any engine failure falls back to the static or plain path
            self.continuous = False
            warn(f"continuous batching failed ({type(exc).__name__}: {exc}); the "
                 f"{len(items) - len(done)} unfinished requests go on without it")
        return [item for item in items if item[0].key not in done]

    def _generation(
        self, request: GenRequest, n_prompt: int, tokens: list[int], timings: Callable[[int], Timings],
        eos_off: bool = False,
    ) -> Generation:
        """A row's Generation: its tokens up to where it really stopped, its text (EOS dropped, cut at a stop
        string) and its timings given that token count. eos_off: EOS did not stop it, every token counts."""
        finish: Literal["stop", "length"]
        if eos_off:
            n, finish = len(tokens), "length"
        else:
            n, finish = self._finished_length(tokens, request)
        shown = tokens[: n - 1] if n and tokens[n - 1] in self.eos_ids and not eos_off else tokens[:n]
        return Generation(
            key=request.key,
            text=_cut_at_stop(str(self.tokenizer.decode(shown, skip_special_tokens=False)), request.stop),
            prompt_tokens=n_prompt,
            output_tokens=n,
            finish_reason=finish,
            timings=timings(n),
            token_ids=tuple(tokens[:n]),
        )

    @staticmethod
    def _settings(request: GenRequest) -> tuple[Any, ...]:
        """What a batch must share (sortable, so requests with equal settings group together)."""
        return (request.sampling.model_dump_json(), request.max_new_tokens, request.stop, request.min_new_tokens)

    def _generate_batch(
        self, items: list[tuple[GenRequest, list[int]]], cache_len: int, rows_wanted: int
    ) -> Iterator[Generation]:
        """One static batch; on the static path padded with copies of its last row to rows_wanted rows."""
        first = items[0][0]
        if self.lean and len(items) == 1 and hf_decode.supports(first):
            prompt_ids = items[0][1]
            try:
                decoded = self.decoder.decode(prompt_ids, first, self.eos_ids)
            except Exception as exc:  # noqa: BLE001 - the compiled loop failing leaves generate's static path
                self.lean = False
                warn(f"the compiled decode loop failed ({type(exc).__name__}: {exc}); generate takes over")
            else:
                yield self._generation(first, len(prompt_ids), decoded.token_ids, decoded.timings)
                return
        rows = [ids for _, ids in items]
        seeds = [request.seed for request, _ in items]
        kwargs = self._generation_kwargs(first)
        if self.static:
            rows += [rows[-1]] * (rows_wanted - len(rows))
            seeds += [seeds[-1]] * (rows_wanted - len(seeds))
            kwargs.update(cache_implementation="static", max_cache_len=cache_len)
        batch = self.tokenizer.pad({"input_ids": rows}, padding=True, return_tensors="pt").to(self.device)
        clock = StepClock(sync=self.device.startswith("cuda"))
        processors = self._processors(first, batch["input_ids"].shape[1], seeds)
        start = time.perf_counter()
        try:
            with torch.inference_mode():
                out = self.model.generate(**batch, **kwargs, logits_processor=[clock, *processors])
        except Exception as exc:  # noqa: BLE001 - a failed compile falls back to the plain path for the rest of the run
            if not self.static:
                raise
            self.static = self.continuous = False
            warn(f"the static-cache path failed ({type(exc).__name__}: {exc}); the plain path takes over")
            return (yield from self._generate_batch(items, cache_len, rows_wanted))
        prompt_len = batch["input_ids"].shape[1]
        for row, (request, prompt_ids) in enumerate(items):
            yield self._generation(request, len(prompt_ids), out[row, prompt_len:].tolist(),
                                   partial(_batch_timings, clock.times, start))

    @staticmethod
    def _processors(request: GenRequest, prompt_len: int, seeds: list[int]) -> list[LogitsProcessor]:
        """vLLM's presence penalty, then (sampling) each row drawn from its own seeded generator."""
        s = request.sampling
        processors: list[LogitsProcessor] = [PresencePenalty(s.presence_penalty, prompt_len)] if s.presence_penalty \
            else []
        return processors + ([] if s.greedy else [SeededSampler(s, seeds)])

    def _generation_kwargs(self, request: GenRequest) -> dict[str, Any]:
        """generate's own settings: greedy selection always (sampling is SeededSampler's), penalties, lengths."""
        kwargs: dict[str, Any] = {
            "max_new_tokens": request.max_new_tokens,
            "eos_token_id": self.eos_ids,
            "pad_token_id": self.tokenizer.pad_token_id,
            "do_sample": False,
            "temperature": None,
            "top_p": None,
            "top_k": None,
            "repetition_penalty": request.sampling.repetition_penalty,
            "min_new_tokens": request.min_new_tokens or None,
        }
        if request.stop:
            kwargs.update(stop_strings=list(request.stop), tokenizer=self.tokenizer)
        return kwargs

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


def _batch_timings(step_times: list[float], start: float, n: int) -> Timings:
    """A row of a batch: TTFT is the batch's prefill, e2e the step that gave the row's last token."""
    ttft = step_times[0] - start if step_times else None
    e2e = step_times[min(n, len(step_times)) - 1] - start if n and step_times else ttft
    return Timings.measured("batch", n, ttft, e2e)


def _cut_at_stop(text: str, stops: tuple[str, ...]) -> str:
    cut = min((i for s in stops if (i := text.find(s)) >= 0), default=len(text))
    return text[:cut]
