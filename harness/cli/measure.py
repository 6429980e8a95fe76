"""`owb bench` (speed at fixed lengths), `owb fit` (will it fit under vLLM?) and `owb make-tiny` (the CI models)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from harness.cli.app import console
from harness.cli.options import (
    BackendArg,
    BaseUrl,
    Device,
    Dtype,
    EngineArg,
    FastPath,
    ModelOption,
    backend_args,
    integers,
)
from harness.config.cards import load_card
from harness.engines.tiny import RECIPES, make_tiny, model_dir
from harness.measure.bench import BenchOptions, bench
from harness.measure.fit import describe, estimate_fit, parse_bytes
from harness.records.store import read_bench
from harness.report.tables import bench_table


def bench_cmd(
    model: ModelOption,
    backend: Annotated[str, typer.Option(help="hf | vllm | openai")] = "hf",
    input_len: Annotated[int, typer.Option(help="exact prompt length in tokens")] = 128,
    output_len: Annotated[int, typer.Option(help="exact output length in tokens (EOS ignored)")] = 128,
    concurrency: Annotated[str, typer.Option(help="comma-separated levels (batch size for hf)")] = "1,8,64",
    num_prompts: Annotated[int, typer.Option(help="requests per level")] = 64,
    output: Annotated[Path, typer.Option(help="directory for bench directories")] = Path("runs/bench"),
    random_weights: Annotated[bool, typer.Option(help="random weights of the card's real shape (no download)")] = False,
    seed: Annotated[int, typer.Option(help="seed of the random prompts")] = 0,
    dtype: Dtype = None,
    backend_arg: BackendArg = None,
    engine_arg: EngineArg = None,
    base_url: BaseUrl = None,
    device: Device = None,
    fast_path: FastPath = None,
) -> None:
    """Speed at fixed lengths over a concurrency sweep, with the memory-bandwidth limit of batch-1 decode."""
    args = backend_args([*(backend_arg or []), *(engine_arg or [])], base_url=base_url, device=device,
                        fast_path=fast_path)
    opts = BenchOptions(model=model, backend=backend, input_len=input_len, output_len=output_len,
                        concurrency=integers(concurrency, "--concurrency"), num_prompts=num_prompts,
                        output=str(output), random_weights=random_weights, seed=seed, dtype=dtype, backend_args=args)
    path = bench(opts)
    console.print(bench_table(read_bench(path)))
    console.print(f"results: {path}", soft_wrap=True)


def fit(
    model: Annotated[str, typer.Option(help="model card id or YAML path (the card needs `shape`)")],
    gpu_mem: Annotated[str, typer.Option(help="GPU memory: 24GB (10^9 bytes), 80GiB (2^30), ...")],
    context: Annotated[Optional[int], typer.Option(help="tokens per sequence (default: the card's)")] = None,
    batch: Annotated[int, typer.Option(help="sequences in flight at the full context")] = 1,
    dtype: Annotated[Optional[str], typer.Option(help="weights: float32 | bfloat16 | float16")] = None,
    kv_dtype: Annotated[str, typer.Option(help="auto (the weights') | bfloat16 | float16 | fp8")] = "auto",
    gpu_memory_utilization: Annotated[float, typer.Option(help="vLLM's share of the GPU")] = 0.9,
    max_num_batched_tokens: Annotated[Optional[int], typer.Option(
        help="vLLM's profile-run tokens (default: 8192, 16384 from 70 GiB)")] = None,
    max_num_seqs: Annotated[int, typer.Option(help="vLLM's max_num_seqs (owb's --batch-size)")] = 256,
    json_out: Annotated[bool, typer.Option("--json", help="print the figures in bytes as JSON")] = False,
) -> None:
    """Whether a model fits a GPU under vLLM: weights, KV cache, activation and vLLM's reserves, from the card."""
    report = estimate_fit(load_card(model), parse_bytes(gpu_mem), context=context, batch=batch, dtype=dtype,
                          kv_dtype=kv_dtype, gpu_memory_utilization=gpu_memory_utilization,
                          max_num_batched_tokens=max_num_batched_tokens, max_num_seqs=max_num_seqs)
    typer.echo(report.model_dump_json(indent=2) if json_out else describe(report))


def make_tiny_cmd(
    family: Annotated[str, typer.Option(help="a tiny recipe (architecture) or all")] = "all",
    out: Annotated[Optional[Path], typer.Option(help="directory (default: $OWB_HOME/tiny)")] = None,
) -> None:
    """Write deterministic random-weight checkpoints with family tokenizers and chat templates."""
    for recipe in RECIPES if family == "all" else [family]:
        path = make_tiny(recipe, model_dir(recipe, out))
        size = sum(f.stat().st_size for f in path.iterdir()) / 1e6
        console.print(f"{recipe}: {path} ({size:.1f} MB)")
