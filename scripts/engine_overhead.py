"""What owb's engine paths add, measured in one process on one engine: raw vLLM `LLM.generate` beside owb's
vLLM backend, and plain transformers `generate` at batch 1 beside owb's hf backend (fast path).

Usage: python scripts/engine_overhead.py --model qwen2.5-1.5b-instruct --random-weights [--prompts 256]
       [--input-len 128] [--output-len 256] [--out results/bench/overhead-<model>.json]
On a GPU box this is the measurement behind "the vLLM path adds nothing" (target: within 3% of raw vLLM).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from harness.backends.base import GenRequest
from harness.backends.hf import HFBackend
from harness.backends.vllm import VLLMBackend
from harness.bench import shape_dir
from harness.config import Sampling, load_card
from harness.tiny import resolve_model_path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True)
    parser.add_argument("--random-weights", action="store_true")
    parser.add_argument("--prompts", type=int, default=256)
    parser.add_argument("--input-len", type=int, default=128)
    parser.add_argument("--output-len", type=int, default=256)
    parser.add_argument("--hf-tokens", type=int, default=128, help="tokens for the batch-1 transformers comparison")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    card = load_card(args.model)
    path = str(shape_dir(card) if args.random_weights else resolve_model_path(card))
    engine = {"load_format": "dummy"} if args.random_weights else {}
    backend = VLLMBackend(card, path, batch_size=args.prompts,
                          engine_args={**engine, "enable_prefix_caching": False,
                                       "max_model_len": args.input_len + args.output_len})
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
        start = time.perf_counter()
        backend.llm.generate([{"prompt_token_ids": p} for p in prompts], params, use_tqdm=False)
        timings["raw vLLM LLM.generate"].append(time.perf_counter() - start)
        start = time.perf_counter()
        list(backend.generate(requests))
        timings["owb vLLM backend"].append(time.perf_counter() - start)
    backend.close()

    hf_plain, hf_fast = (HFBackend(card, path, batch_size=1, random_weights=args.random_weights, fast=f)
                         for f in (False, True))
    one = [GenRequest("b1", "", Sampling(), args.hf_tokens, 0, (), args.hf_tokens, tuple(prompts[0]))]
    for name, hf in (("transformers generate, batch 1", hf_plain), ("owb hf fast path, batch 1", hf_fast)):
        list(hf.generate(one))  # warm-up (compiles on CUDA)
        runs = []
        for _ in range(3):
            start = time.perf_counter()
            list(hf.generate(one))
            runs.append(time.perf_counter() - start)
        timings[name] = runs

    rows = []
    for name, runs in timings.items():
        seconds = float(np.median(runs))
        tokens = args.hf_tokens if "batch 1" in name else args.prompts * args.output_len
        rows.append({"path": name, "median_s": seconds, "output_tokens_per_s": tokens / seconds, "runs_s": runs})
    raw, owb = rows[0]["median_s"], rows[1]["median_s"]
    result = {"model": card.id, "random_weights": args.random_weights, "path": path, "prompts": args.prompts,
              "input_len": args.input_len, "output_len": args.output_len, "hf_tokens": args.hf_tokens,
              "owb_vllm_overhead_pct": 100 * (owb - raw) / raw, "rows": rows}
    print("| path | median s | output tok/s |\n|---|---:|---:|")
    for row in rows:
        print(f"| {row['path']} | {row['median_s']:.3f} | {row['output_tokens_per_s']:.1f} |")
    print(f"owb vLLM backend vs raw vLLM: {result['owb_vllm_overhead_pct']:+.1f}%")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
