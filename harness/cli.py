"""The `owb` command line (run, bench, compare, check, rescore, list, make-tiny); user errors end with one
clear line and exit code 2."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Optional

import click
import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from harness.errors import UserError

app = typer.Typer(add_completion=False, no_args_is_help=False, pretty_exceptions_enable=False,
                  help="Open-Weight Bench: quality and speed of open-weight LLMs in one results file.")
console = Console(width=None if sys.stdout.isatty() else 120)
err = Console(stderr=True)
FAST_PATH_HELP = "hf fast path: auto (static on CUDA) | static | continuous | off"


def _quiet_libraries() -> None:
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("VLLM_LOGGING_LEVEL", "WARNING")


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


@app.command()
def run(
    model: Annotated[Optional[str], typer.Option(help="model card id or YAML path (none: the tiny demo)")] = None,
    backend: Annotated[str, typer.Option(help="hf | vllm | openai | replay")] = "hf",
    base_url: Annotated[Optional[str], typer.Option(help="OpenAI-compatible server for --backend openai")] = None,
    tasks: Annotated[str, typer.Option(help="comma-separated task names")] = "gsm8k,math500",
    limit: Annotated[Optional[int], typer.Option(help="first N documents per task")] = None,
    samples: Annotated[int, typer.Option(help="samples per document (pass@1 is their mean)")] = 1,
    thinking: Annotated[Optional[str], typer.Option(help="on | off (default: the card's)")] = None,
    greedy: Annotated[bool, typer.Option(help="greedy decoding instead of the card's sampling")] = False,
    max_new_tokens: Annotated[Optional[int], typer.Option(help="override the card's budget")] = None,
    data: Annotated[str, typer.Option(help="auto | hf | local | fixture | package")] = "auto",
    data_dir: Annotated[Optional[Path], typer.Option(help="local data directory (or OWB_DATA_DIR)")] = None,
    output: Annotated[Path, typer.Option(help="directory for run directories")] = Path("runs"),
    resume: Annotated[Optional[Path], typer.Option(help="finish an interrupted run directory")] = None,
    seed: Annotated[int, typer.Option(help="base seed; each sample derives its own")] = 1234,
    replay: Annotated[Optional[Path], typer.Option(help="JSONL of stored outputs for --backend replay")] = None,
    batch_size: Annotated[Optional[int], typer.Option(help="hf batch / in flight (16); vllm max_num_seqs")] = None,
    device: Annotated[Optional[str], typer.Option(help="cpu | cuda (default: cuda if available)")] = None,
    dtype: Annotated[Optional[str], typer.Option(help="override the card's dtype (float32, bfloat16, ...)")] = None,
    tp: Annotated[Optional[int], typer.Option(help="vLLM tensor_parallel_size")] = None,
    pp: Annotated[Optional[int], typer.Option(help="vLLM pipeline_parallel_size")] = None,
    dp: Annotated[Optional[int], typer.Option(help="vLLM data_parallel_size")] = None,
    distributed_backend: Annotated[Optional[str], typer.Option(help="vLLM distributed executor (mp, ray)")] = None,
    gpu_memory_utilization: Annotated[Optional[float], typer.Option(help="vLLM memory share")] = None,
    max_model_len: Annotated[Optional[int], typer.Option(help="vLLM max_model_len")] = None,
    engine_arg: Annotated[Optional[list[str]], typer.Option(help="vLLM engine argument KEY=VALUE")] = None,
    fast_path: Annotated[str, typer.Option(help=FAST_PATH_HELP)] = "auto",
) -> None:
    """Evaluate a model on tasks; with no arguments, the tiny demo on the fixture tasks."""
    from harness.report import run_table
    from harness.runner import RunOptions
    from harness.runner import run as run_eval

    if thinking not in (None, "on", "off"):
        raise UserError(f"--thinking must be on or off, not '{thinking}'")
    if data not in ("auto", "hf", "local", "fixture", "package"):
        raise UserError(f"--data must be auto, hf, local, fixture or package, not '{data}'")
    if model is None and resume is None:
        model = "tiny-qwen2"
        if data == "auto" and data_dir is None:
            data = "fixture"
        err.print(f"demo: {model} (random weights, made on first use) on {tasks} ({data} data), CPU-sized")
    engine_args = _engine_args(engine_arg or [], tensor_parallel_size=tp, pipeline_parallel_size=pp,
                               data_parallel_size=dp, distributed_executor_backend=distributed_backend,
                               gpu_memory_utilization=gpu_memory_utilization, max_model_len=max_model_len)
    opts = RunOptions(
        model=model or "", backend=backend, tasks=tuple(t.strip() for t in tasks.split(",") if t.strip()),
        limit=limit, samples=samples, thinking=thinking, greedy=greedy,  # type: ignore[arg-type]
        max_new_tokens=max_new_tokens, data_source=data, data_dir=str(data_dir) if data_dir else None,  # type: ignore[arg-type]
        output=str(output), seed=seed, replay=str(replay) if replay else None, batch_size=batch_size, device=device,
        dtype=dtype, engine_args=engine_args, base_url=base_url, fast_path=fast_path,
    )
    with _progress_bars() as progress:
        run_dir = run_eval(opts, resume=resume, progress=progress, warn=err.print)
    console.print(run_table(run_dir.read_run()))
    console.print(f"results: {run_dir.path}")


@app.command("bench")
def bench_cmd(
    model: Annotated[str, typer.Option(help="model card id or YAML path")],
    backend: Annotated[str, typer.Option(help="hf | vllm | openai")] = "hf",
    base_url: Annotated[Optional[str], typer.Option(help="OpenAI-compatible server for --backend openai")] = None,
    input_len: Annotated[int, typer.Option(help="exact prompt length in tokens")] = 128,
    output_len: Annotated[int, typer.Option(help="exact output length in tokens (EOS ignored)")] = 128,
    concurrency: Annotated[str, typer.Option(help="comma-separated levels (batch size for hf)")] = "1,8,64",
    num_prompts: Annotated[int, typer.Option(help="requests per level")] = 64,
    output: Annotated[Path, typer.Option(help="directory for bench directories")] = Path("runs/bench"),
    random_weights: Annotated[bool, typer.Option(help="random weights of the card's real shape (no download)")] = False,
    seed: Annotated[int, typer.Option(help="seed of the random prompts")] = 0,
    device: Annotated[Optional[str], typer.Option(help="cpu | cuda")] = None,
    dtype: Annotated[Optional[str], typer.Option(help="override the card's dtype")] = None,
    engine_arg: Annotated[Optional[list[str]], typer.Option(help="vLLM engine argument KEY=VALUE")] = None,
    fast_path: Annotated[str, typer.Option(help=FAST_PATH_HELP)] = "auto",
) -> None:
    """Speed at fixed lengths over a concurrency sweep, with the memory-bandwidth limit of batch-1 decode."""
    from harness.bench import BenchOptions, bench
    from harness.report import bench_table

    try:
        levels = tuple(int(x) for x in concurrency.split(",") if x.strip())
    except ValueError:
        raise UserError(f"--concurrency takes comma-separated integers, not '{concurrency}'") from None
    opts = BenchOptions(model=model, backend=backend, input_len=input_len, output_len=output_len,
                        concurrency=levels, num_prompts=num_prompts, output=str(output), random_weights=random_weights,
                        seed=seed, device=device, dtype=dtype, engine_args=_engine_args(engine_arg or []),
                        base_url=base_url, fast_path=fast_path)
    path = bench(opts)
    console.print(bench_table(json.loads(path.read_text())))
    console.print(f"results: {path}")


def _engine_args(pairs: list[str], **named: object) -> dict[str, object]:
    """Engine arguments from KEY=VALUE pairs (values parsed as JSON where they parse) and named flags."""
    args: dict[str, object] = {k: v for k, v in named.items() if v is not None}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key:
            raise UserError(f"--engine-arg takes KEY=VALUE, not '{pair}'")
        try:
            args[key] = json.loads(raw)
        except json.JSONDecodeError:
            args[key] = raw
    return args


@app.command()
def compare(
    runs: Annotated[list[Path], typer.Argument(help="run directories")],
    format: Annotated[Optional[str], typer.Option("--format", help="md | csv | html")] = None,
    out: Annotated[Optional[Path], typer.Option(help="write to this file instead of stdout")] = None,
) -> None:
    """Compare runs side by side: metrics with CIs, published claims, speed."""
    from harness.report import compare_table, load_row, to_csv, to_html, to_markdown

    rows = [load_row(path) for path in runs]
    writers = {"md": to_markdown, "csv": to_csv, "html": to_html}
    if format is None and out is None:
        console.print(compare_table(rows))
        return
    fmt = format or {".md": "md", ".csv": "csv", ".html": "html"}.get(out.suffix if out else "", "md")
    if fmt not in writers:
        raise UserError(f"--format must be md, csv or html, not '{fmt}'")
    text = writers[fmt](rows)
    if out is None:
        sys.stdout.write(text)
    else:
        out.write_text(text)
        console.print(f"wrote {out}")


@app.command("check")
def check_cmd(
    baseline: Annotated[Path, typer.Option(help="the reference run directory")],
    candidate: Annotated[Path, typer.Option(help="the run directory to check")],
    max_drop: Annotated[float, typer.Option(help="points a metric may drop before it can fail")] = 2.0,
    alpha: Annotated[float, typer.Option(help="significance level of the paired test")] = 0.05,
    max_slowdown: Annotated[Optional[float], typer.Option(help="percent output tok/s may drop")] = None,
    summary: Annotated[Optional[Path], typer.Option(help="also append the markdown here (CI job summary)")] = None,
) -> None:
    """Paired per-sample comparison of two runs; exit 1 on a significant regression."""
    from harness.regress import check

    failed, markdown = check(baseline, candidate, max_drop, alpha, max_slowdown)
    sys.stdout.write(markdown + "\n")
    if summary is not None:
        with summary.open("a") as handle:
            handle.write(markdown + "\n")
    if failed:
        raise typer.Exit(1)


@app.command()
def rescore(run_dir: Annotated[Path, typer.Argument(help="a run directory")]) -> None:
    """Recompute scores from the stored raw outputs (after a scorer fix), without generating."""
    from harness.report import run_table
    from harness.runner import rescore as rescore_run

    console.print(run_table(rescore_run(run_dir, warn=err.print).read_run()))


@app.command("list")
def list_(what: Annotated[str, typer.Argument(help="models | tasks")]) -> None:
    """List the model cards or the tasks."""
    from rich.table import Table

    from harness.config import all_cards, all_tasks

    if what == "models":
        table = Table("id", "family", "architecture", "source", "thinking", "license")
        for card in all_cards():
            source = card.hf_repo or card.local_path or f"tiny:{card.tiny}"
            table.add_row(card.id, card.family, card.architecture, source,
                          f"{card.thinking.kind} ({card.thinking.default})", card.license)
    elif what == "tasks":
        table = Table("task", "scorer", "metrics", "description")
        for spec in all_tasks():
            table.add_row(spec.name, spec.scorer, ", ".join(spec.metrics), spec.description)
    else:
        raise UserError(f"owb list takes 'models' or 'tasks', not '{what}'")
    console.print(table)


@app.command("make-tiny")
def make_tiny_cmd(
    family: Annotated[str, typer.Option(help="a tiny recipe (architecture) or all")] = "all",
    out: Annotated[Optional[Path], typer.Option(help="directory (default: $OWB_HOME/tiny)")] = None,
) -> None:
    """Write deterministic random-weight checkpoints with family tokenizers and chat templates."""
    from harness.tiny import RECIPES, make_tiny, model_dir

    for recipe in RECIPES if family == "all" else [family]:
        path = make_tiny(recipe, model_dir(recipe, out))
        size = sum(f.stat().st_size for f in path.iterdir()) / 1e6
        console.print(f"{recipe}: {path} ({size:.1f} MB)")


def main() -> None:
    """Console-script entry: user errors become one line on stderr and exit code 2."""
    _quiet_libraries()
    try:
        code = app(standalone_mode=False)
    except UserError as exc:
        sys.stderr.write(f"error: {exc}\n")
        sys.exit(2)
    except click.exceptions.Abort:
        err.print("interrupted: finished samples are saved; finish with `owb run --resume RUN_DIR`")
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(2)
    except MemoryError:
        err.print("error: out of memory; lower --batch-size or --max-new-tokens (finished samples are saved)")
        sys.exit(2)
    except RuntimeError as exc:
        if "out of memory" not in str(exc).lower():
            raise
        err.print("error: out of GPU memory; lower --batch-size or --max-new-tokens (finished samples are saved)")
        sys.exit(2)
    sys.exit(code if isinstance(code, int) else 0)
