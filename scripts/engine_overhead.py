"""What owb's engine paths add, measured in one process on one engine: raw vLLM `LLM.generate` beside owb's
vLLM backend, and plain transformers `generate` beside owb's hf fast paths at batch 1 and at --hf-batch.

Usage: python scripts/engine_overhead.py --model qwen2.5-1.5b-instruct --random-weights [--prompts 256]
       [--input-len 128] [--output-len 256] [--out results/bench/overhead-<model>.json]
On a GPU box this is the measurement behind "the vLLM path adds nothing" (target: within 3% of raw vLLM) and
"the hf fast path" (targets: >= 70% of the bandwidth limit at batch 1, >= 3x plain generate at batch 64).
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from harness.backends.base import EngineRequest, GenRequest, make_backend
from harness.bench import decode_bytes, memory_bandwidth
from harness.config import Sampling, load_card
from harness.models import model_path
from harness.perf import environment


def timed(run: Callable[[], object]) -> float:
    """Seconds one call takes, the GPU's queued work included."""
    start = time.perf_counter()
    run()
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return time.perf_counter() - start


def plain_generate(model: Any, prompts: list[list[int]], batch: int, tokens: int) -> None:
    """Plain transformers `generate` (dynamic cache), prompts in order in batches, exactly `tokens` new tokens."""
    for first in range(0, len(prompts), batch):
        ids = torch.tensor(prompts[first : first + batch], device=model.device)  # equal lengths: no padding
        with torch.inference_mode():
            model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=tokens, min_new_tokens=tokens,
                           do_sample=False, pad_token_id=0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True)
    parser.add_argument("--random-weights", action="store_true")
    parser.add_argument("--prompts", type=int, default=256)
    parser.add_argument("--input-len", type=int, default=128)
    parser.add_argument("--output-len", type=int, default=256)
    parser.add_argument("--hf-tokens", type=int, default=128, help="tokens for the batch-1 transformers comparison")
    parser.add_argument("--hf-batch", type=int, default=64, help="transformers throughput batch")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    card = load_card(args.model)
    path = model_path(card, args.random_weights)
    request = EngineRequest(batch_size=args.prompts, random_weights=args.random_weights, prefix_caching=False,
                            max_model_len=args.input_len + args.output_len)
    backend: Any = make_backend("vllm", card, request, {})
    from vllm import SamplingParams

    vocab, special = backend.vocab()
    rng = np.random.default_rng(0)
    allowed = np.array([i for i in range(vocab) if i not in special])
    prompts = [[int(t) for t in rng.choice(allowed, args.input_len)] for _ in range(args.prompts)]
    params = SamplingParams(temperature=0.0, max_tokens=args.output_len, min_tokens=args.output_len)
    requests = [GenRequest(f"r{i}", "", Sampling(), args.output_len, i, (), args.output_len, tuple(p))
                for i, p in enumerate(prompts)]
    backend.llm.generate([{"prompt_token_ids": p} for p in prompts[:8]], params, use_tqdm=False)  # warm-up
    timings: dict[str, list[float]] = {"raw vLLM LLM.generate": [], "owb vLLM backend": []}
    for _ in range(3):  # interleaved repeats, median reported
        timings["raw vLLM LLM.generate"].append(
            timed(lambda: backend.llm.generate([{"prompt_token_ids": p} for p in prompts], params, use_tqdm=False)))
        timings["owb vLLM backend"].append(timed(lambda: list(backend.generate(requests))))
    backend.close()

    hf_request = EngineRequest(batch_size=args.hf_batch, random_weights=args.random_weights)
    hf: dict[str, Any] = {name: make_backend("hf", card, hf_request, {"fast_path": name})
                          for name in ("static", "continuous")}
    model = hf["static"].model
    one = [GenRequest("b1", "", Sampling(), args.hf_tokens, 0, (), args.hf_tokens, tuple(prompts[0]))]
    batch1 = {"transformers generate, batch 1": lambda: plain_generate(model, prompts[:1], 1, args.hf_tokens),
              "owb hf decode loop, batch 1": lambda: list(hf["static"].generate(one))}
    many = {f"transformers generate, batch {args.hf_batch}":
            lambda: plain_generate(model, prompts, args.hf_batch, args.output_len),
            f"owb hf static path, batch {args.hf_batch}": lambda: list(hf["static"].generate(requests)),
            f"owb hf continuous batching, {args.hf_batch} in flight": lambda: list(hf["continuous"].generate(requests))}
    for name, run in {**batch1, **many}.items():
        run()  # warm-up (compiles and captures CUDA graphs on a GPU)
        timings[name] = [timed(run) for _ in range(3)]
    for backend_of_path in hf.values():
        backend_of_path.close()

    rows = []
    for name, runs in timings.items():
        seconds = float(np.median(runs))
        tokens = args.hf_tokens if name in batch1 else args.prompts * args.output_len
        rows.append({"path": name, "median_s": seconds, "output_tokens_per_s": tokens / seconds, "runs_s": runs})
    raw, owb, plain1, fast1, plain_n, fast_n, continuous_n = (row["median_s"] for row in rows)
    on_gpu = torch.cuda.is_available()
    weights, kv = decode_bytes(Path(path), 2 if on_gpu else 4, args.input_len + args.hf_tokens // 2)
    limit = memory_bandwidth("cuda" if on_gpu else "cpu") / (weights + kv)
    for row in rows:
        row["share_of_batch1_limit"] = row["output_tokens_per_s"] / limit if row["path"] in batch1 else None
    result = {"model": card.id, "random_weights": args.random_weights, "path": path, "prompts": args.prompts,
              "input_len": args.input_len, "output_len": args.output_len, "hf_tokens": args.hf_tokens,
              "hf_batch": args.hf_batch, "environment": environment().model_dump(), "batch1_decode_limit_tok_s": limit,
              "owb_vllm_overhead_pct": 100 * (owb - raw) / raw, "hf_fast_speedup_batch1": plain1 / fast1,
              f"hf_fast_speedup_batch{args.hf_batch}": plain_n / fast_n,
              f"hf_continuous_speedup_batch{args.hf_batch}": plain_n / continuous_n, "rows": rows}
    print("| path | median s | output tok/s | share of batch-1 limit |\n|---|---:|---:|---:|")
    for row in rows:
        share = f"{100 * row['share_of_batch1_limit']:.0f}%" if row["share_of_batch1_limit"] else ""
        print(f"| {row['path']} | {row['median_s']:.3f} | {row['output_tokens_per_s']:.1f} | {share} |")
    print(f"batch-1 decode limit: {limit:.0f} tok/s; owb vLLM backend vs raw vLLM: "
          f"{result['owb_vllm_overhead_pct']:+.1f}%; hf static path vs plain generate: "
          f"{plain1 / fast1:.2f}x at batch 1, {plain_n / fast_n:.2f}x at batch {args.hf_batch} "
          f"(continuous batching {plain_n / continuous_n:.2f}x)")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
