"""`owb bench` (speed under load), `owb fit` (will it fit under vLLM?) and `owb make-tiny` (the CI models)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal, Optional

import typer

from harness.cli.app import console
from harness.cli.options import (
    ENGINE,
    BackendArg,
    BaseUrl,
    Device,
    Dp,
    Dtype,
    EnergyGpus,
    EngineArg,
    FastPath,
    ModelOption,
    Pp,
    Tp,
    backend_args,
    numbers,
)
from harness.config.cards import load_card
from harness.core.errors import ConfigError
from harness.engines.load import Slo
from harness.engines.tiny import RECIPES, make_tiny, model_dir
from harness.measure.bench import BenchOptions, bench
from harness.measure.fit import describe, estimate_fit, parse_bytes
from harness.records.store import read_bench
from harness.report.tables import bench_table

LOAD, WORKLOAD, MEASURE = "Load", "Workload", "Figures, energy and cost"
BenchBackend = Annotated[str, typer.Option(help="openai (a served model: vllm bench serve's load model) | vllm | hf "
                                                "(in-process: waves)", rich_help_panel=ENGINE)]
InputLen = Annotated[int, typer.Option(help="exact prompt length in tokens (random token ids)",
                                       rich_help_panel=WORKLOAD)]
OutputLen = Annotated[int, typer.Option(help="exact output length in tokens (EOS ignored)", rich_help_panel=WORKLOAD)]
Concurrency = Annotated[Optional[str], typer.Option(
    "--max-concurrency", "--concurrency", rich_help_panel=LOAD,
    help="requests in flight, comma-separated levels (inf: no limit; default 1,8,64, or inf with --request-rate); "
         "the wave size with --waves or an in-process engine")]
Rates = Annotated[str, typer.Option("--request-rate", help="requests per second, comma-separated levels (inf: all "
                                                           "at once)", rich_help_panel=LOAD)]
Burstiness = Annotated[float, typer.Option(help="gamma shape of the arrival intervals (1: Poisson)",
                                           rich_help_panel=LOAD)]
Waves = Annotated[bool, typer.Option(help="batches of --max-concurrency with a barrier (vllm bench latency)",
                                     rich_help_panel=LOAD)]
NumPrompts = Annotated[Optional[int], typer.Option(help="requests per level (default 64, or every request of "
                                                        "--from-run)", rich_help_panel=WORKLOAD)]
NumWarmups = Annotated[Optional[int], typer.Option(help="warm-up requests per level, excluded (default: the level's "
                                                        "concurrency)", rich_help_panel=LOAD)]
Goodput = Annotated[Optional[str], typer.Option(help="objectives 'ttft:MS tpot:MS e2el:MS': a request counts towards "
                                                     "goodput when it meets every one", rich_help_panel=MEASURE)]
Percentiles = Annotated[str, typer.Option(help="percentiles of every latency", rich_help_panel=MEASURE)]
Temperature = Annotated[float, typer.Option(help="sampling temperature (0: greedy)", rich_help_panel=WORKLOAD)]
FromRun = Annotated[Optional[Path], typer.Option(help="a run directory: its prompts and output lengths are the "
                                                      "workload", rich_help_panel=WORKLOAD)]
Sweep = Annotated[Optional[Literal["rate", "concurrency"]], typer.Option(
    help="rate | concurrency: the highest load meeting --goodput, by bisection", rich_help_panel=LOAD)]
SweepRepeats = Annotated[int, typer.Option(help="runs per sweep point (their median counts)", rich_help_panel=LOAD)]
SweepSteps = Annotated[int, typer.Option(help="bisection steps", rich_help_panel=LOAD)]
SweepAttainment = Annotated[float, typer.Option(help="share of requests that must meet every objective",
                                                rich_help_panel=LOAD)]
HourlyUsd = Annotated[Optional[float], typer.Option(help="price of one GPU per hour: $ = duration x GPUs x price, "
                                                         "start-up on its own line", rich_help_panel=MEASURE)]
BenchOutput = Annotated[Path, typer.Option(help="directory for bench directories", rich_help_panel=MEASURE)]
RandomWeights = Annotated[bool, typer.Option(help="random weights of the card's real shape (no download)",
                                             rich_help_panel=WORKLOAD)]
BenchSeed = Annotated[int, typer.Option(help="seed of the random prompts and arrivals", rich_help_panel=WORKLOAD)]


def bench_cmd(
    model: ModelOption, backend: BenchBackend = "hf", input_len: InputLen = 128, output_len: OutputLen = 128,
    max_concurrency: Concurrency = None, request_rate: Rates = "inf", burstiness: Burstiness = 1.0,
    waves: Waves = False, num_prompts: NumPrompts = None, num_warmups: NumWarmups = None, goodput: Goodput = None,
    metric_percentiles: Percentiles = "50,90,99", temperature: Temperature = 0.0, from_run: FromRun = None,
    sweep: Sweep = None, sweep_repeats: SweepRepeats = 3, sweep_steps: SweepSteps = 5,
    sweep_attainment: SweepAttainment = 0.9, energy_gpus: EnergyGpus = None, gpu_hourly_usd: HourlyUsd = None,
    output: BenchOutput = Path("runs/bench"), random_weights: RandomWeights = False, seed: BenchSeed = 0,
    dtype: Dtype = None, tp: Tp = None, pp: Pp = None, dp: Dp = None, backend_arg: BackendArg = None,
    engine_arg: EngineArg = None, base_url: BaseUrl = None, device: Device = None, fast_path: FastPath = None,
) -> None:
    """Speed under load (vllm bench serve's figures and names), goodput, energy and cost per GPU, and the batch-1
    decode roofline."""
    args = backend_args([*(backend_arg or []), *(engine_arg or [])], base_url=base_url, device=device,
                        fast_path=fast_path, energy_gpus=energy_gpus)
    rates = numbers(request_rate, "--request-rate", inf=True)
    limits = numbers(max_concurrency or ("inf" if any(r is not None for r in rates) else "1,8,64"),
                     "--max-concurrency", inf=True)
    try:
        slo = Slo.parse(goodput)
    except ValueError as exc:
        raise ConfigError(f"--goodput: {exc}") from None
    opts = BenchOptions(
        model=model, backend=backend, input_len=input_len, output_len=output_len,
        concurrency=tuple(None if c is None else int(c) for c in limits), request_rates=rates, burstiness=burstiness,
        waves=waves, num_prompts=num_prompts, num_warmups=num_warmups, goodput=slo,
        metric_percentiles=tuple(p for p in numbers(metric_percentiles, "--metric-percentiles") if p is not None),
        temperature=temperature, from_run=str(from_run) if from_run else None, sweep=sweep,
        sweep_repeats=sweep_repeats, sweep_steps=sweep_steps, sweep_attainment=sweep_attainment,
        gpu_hourly_usd=gpu_hourly_usd, output=str(output), random_weights=random_weights, seed=seed, dtype=dtype,
        tp=tp, pp=pp, dp=dp, backend_args=args)
    path = bench(opts)
    record = read_bench(path)
    for scope in dict.fromkeys(lvl.scope for lvl in record.levels):
        console.print(bench_table(record, scope))
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
