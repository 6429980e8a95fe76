"""Running the suite: each step in a child process under what is left of the budget and its own time limit; a step
that fails or runs out of time is recorded with its reason and the rest go on; suite.json and suite.md are rewritten
(merged into, if there) after every step."""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import NoReturn

from benchmarks.gpu_suite.markdown import derive, markdown, number
from benchmarks.gpu_suite.profile import REPO, SMOKE_ENV, Ctx, Profile, prepare
from benchmarks.gpu_suite.record import SCHEMA, Params, Recorder, StepStatus, SuiteRecord, merge
from benchmarks.gpu_suite.steps import Planned, plan
from benchmarks.gpu_suite.timing import failure


def now() -> str:
    """The time in UTC, to the second."""
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def run_child(names: list[str], work: Path) -> NoReturn:
    """Run steps one after another in this process (the suite's child), each one's status or error in its results
    file, and exit."""
    ctx = Ctx.load(work)
    table = plan(ctx)
    for name in names:
        print(f"\n===== {name} ({now()}) =====", flush=True)
        rec = Recorder(work / "results" / f"{name}.json")
        start = time.perf_counter()
        status = StepStatus(status="ok")
        try:
            table[name].step.run(ctx, rec, table[name].label)
        except Exception as exc:  # noqa: BLE001 - the suite records why the step failed and goes on
            status = StepStatus(status="failed", reason=failure(exc))
        status.wall_s = time.perf_counter() - start
        rec.data.steps = {name: status}
        rec.save()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)  # not interpreter shutdown: engines' threads and children can hang it


def run_group(names: list[str], work: Path, log: Path, timeout: float, env: dict[str, str]) -> dict[str, SuiteRecord]:
    """Run steps in one child process (its own process group, killed whole when the time is up or it ends, so no
    engine process outlives it); returns each step's results with its status in `steps`."""
    start = time.perf_counter()
    for name in names:
        (work / "results" / f"{name}.json").unlink(missing_ok=True)
    with log.open("a") as sink:
        proc = subprocess.Popen([sys.executable, "-m", "benchmarks.gpu_suite", "--child", ",".join(names),
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
    found: dict[str, SuiteRecord] = {}
    for name in names:
        path = work / "results" / f"{name}.json"
        found[name] = SuiteRecord.read(path)
        if name not in found[name].steps:  # it did not finish: the time ran out or the process died
            found[name].steps = {name: unfinished(code, path.is_file(), time.perf_counter() - start)}
    return found


def unfinished(code: int | None, started: bool, seconds: float) -> StepStatus:
    """The status of a step whose process ended (exit `code`) or was stopped (None) before it finished."""
    if code is not None:
        return StepStatus(status="failed", reason=f"the steps' process ended (exit code {code}); see suite.log")
    return StepStatus(status="timeout", reason=f"stopped at its time limit, {seconds:.0f} s (what it finished is kept)"
                      if started else "not reached before its process's time limit")


def choose(table: dict[str, Planned], steps: str | None) -> list[str]:
    """The steps asked for (all by default), in the suite's order."""
    chosen = list(table)
    if steps:
        unknown = set(steps.split(",")) - set(chosen)
        if unknown:
            raise SystemExit(f"unknown steps {sorted(unknown)}; choose from {', '.join(chosen)}")
        chosen = [s for s in chosen if s in steps.split(",")]
    return chosen


def header(profile: Profile, device_name: str, ctx: Ctx, budget_s: float) -> SuiteRecord:
    """suite.json's mode, device and parameters, with no step's results."""
    lengths = [len(p) for p in ctx.prompt_ids]
    params = Params(models=ctx.models, run_model=ctx.run_model, prompts=ctx.prompts, output_len=ctx.output_len,
                    batch=ctx.batch, batch1_tokens=ctx.batch1_tokens, repeats=ctx.repeats,
                    max_model_len=ctx.max_model_len, vllm_args=ctx.vllm_args, data=ctx.data_dir or "tasks/fixtures",
                    tokenizer=ctx.tokenizer_name,
                    prompt_tokens=f"{min(lengths)}–{max(lengths)}, mean {statistics.mean(lengths):.0f}",
                    budget_s=budget_s)
    return SuiteRecord(suite_schema=SCHEMA, mode=profile.mode, device_name=device_name, updated_at=now(),
                       params=params, steps={})


def run_suite(args: argparse.Namespace, profile: Profile, device_name: str, out: Path, work: Path,
              started: float) -> None:
    """Prepare the prompts, run the chosen steps under the budget, and write suite.json and suite.md after each."""
    ctx = prepare(profile, work)
    table = plan(ctx)
    chosen = choose(table, args.steps)
    budget_s = args.budget_s or profile.budget_s
    rec = Recorder(out / "suite.json", merge(SuiteRecord.read(out / "suite.json"),
                                             header(profile, device_name, ctx, budget_s)))
    deadline = started + budget_s
    env = SMOKE_ENV if args.cpu_smoke else {}
    print(f"owb GPU suite ({profile.mode}) on {device_name}: steps {', '.join(chosen)}; out {out}", flush=True)
    # A GPU step runs alone in its process (memory freed, time-limited by itself); on a CPU one process runs them
    # all, so vLLM and torch are imported once.
    for group in [chosen] if args.cpu_smoke else [[step] for step in chosen]:
        left = deadline - time.perf_counter()
        need, most = (10.0, left) if args.cpu_smoke else table[group[0]].step.TIME_S
        if left < need:
            skipped = f"{left:.0f} s of the budget left; it needs about {need} s"
            results = {step: SuiteRecord(steps={step: StepStatus(status="skipped", reason=skipped)})
                       for step in group}
        else:
            results = run_group(group, work, out / "suite.log", min(left, most), env)
        for step, found in results.items():
            status = found.steps.pop(step)
            merge(rec.data, found)
            rec.data.steps = {**rec.data.steps, step: status}
            print(f"[{status.status:>7}] {step:<12} {number(status.wall_s, 1):>7} s  {status.reason or ''}",
                  flush=True)
        save(rec, out, ctx.run_model)
    finish(rec.data, out, started)


def save(rec: Recorder, out: Path, run_model: str) -> None:
    """Derive the figures of two steps, then rewrite suite.json and suite.md."""
    from harness.records.store import atomic_write_text

    derive(rec.data, run_model)
    rec.data.updated_at = now()
    rec.save()
    atomic_write_text(out / "suite.md", markdown(rec.data))


def finish(doc: SuiteRecord, out: Path, started: float) -> None:
    """Print the table and, where steps did not finish, the command that runs them again."""
    print("\n" + markdown(doc), flush=True)
    missing = [s for s, status in doc.steps.items() if status.status != "ok"]
    if missing:
        print(f"not finished: {', '.join(missing)}; again, on the same machine: "
              f"scripts/gpu_suite.sh --out {out} --steps {','.join(missing)}", flush=True)
    print(f"suite: {time.perf_counter() - started:.0f} s; results: {out}/suite.json, {out}/suite.md", flush=True)
