"""A complete `owb run` (GSM8K, vLLM, greedy) in a fresh process, timed from start to exit, on a card whose local_path
holds random weights of the shape that never pick EOS, so each sample runs to --max-new-tokens."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import yaml

from benchmarks.gpu_suite.profile import REPO, Ctx
from benchmarks.gpu_suite.record import OwbRunResult, Recorder
from benchmarks.gpu_suite.steps.common import model_dir
from harness.config.cards import ModelCard

NAME = "owb-run"
TIME_S: tuple[float, float] = (100, 300)
PER_MODEL = False


def run(ctx: Ctx, rec: Recorder, label: str) -> None:
    """Write the random-weight card of `label` (the run model), run `owb run` on it and read its run.json."""
    card = ctx.card(label)
    start = time.perf_counter()
    weights = model_dir(ctx, card, weights=True)
    result = rec.data.owb_run = OwbRunResult(model=card.id, weights_write_s=time.perf_counter() - start)
    rec.save()
    command = owb_command(ctx, random_card(ctx, card, weights))
    start = time.perf_counter()
    proc = subprocess.run(command, capture_output=True, text=True, cwd=REPO, env={**os.environ, "COLUMNS": "200"})
    wall = time.perf_counter() - start
    print(proc.stdout[-4000:], proc.stderr[-4000:], sep="\n", flush=True)
    found = re.search(r"^results: (.+)$", proc.stdout, re.M)
    result.command, result.exit_code, result.wall_s = ["owb", *command[3:]], proc.returncode, wall
    if proc.returncode or not found:
        result.error = (proc.stderr.strip().splitlines() or ["no output"])[-1][:500]
        rec.save()
        raise RuntimeError(f"owb run exited {proc.returncode}")
    from harness.records.store import RunDir

    record = RunDir(Path(found.group(1).strip())).read_run()
    task = record.tasks["gsm8k"]
    perf = task.perf
    assert perf is not None, "a complete run has its perf summary"
    result.run_status, result.n = record.status, task.n
    result.prompt_tokens, result.output_tokens = perf.prompt_tokens, perf.output_tokens
    result.engine_wall_s, result.engine_output_tokens_per_s = perf.wall_s, perf.output_tokens_per_s
    result.end_to_end_output_tokens_per_s = perf.output_tokens / wall
    result.truncated_rate_pct = task.truncated_rate
    rec.save()


def random_card(ctx: Ctx, card: ModelCard, weights: Path) -> Path:
    """A card YAML whose local_path is the random weights of `card`'s shape."""
    path = Path(ctx.work) / f"{card.id}-random.yaml"
    path.write_text(yaml.safe_dump({
        "id": f"{card.id}-random", "family": card.family, "architecture": card.architecture,
        "local_path": str(weights), "dtype": card.dtype, "thinking": {"kind": "none", "default": "off"},
        "context_length": ctx.max_model_len, "license": "random weights",
        "notes": f"gpu_suite: random weights of {card.id}'s shape, the Qwen2-vocabulary tokenizer, EOS logits 0"}))
    return path


def owb_command(ctx: Ctx, card: Path) -> list[str]:
    """`owb run` on the card: GSM8K, vLLM, greedy, the suite's prompts and lengths and its engine arguments."""
    data = ["--data-dir", str(ctx.data_dir)] if ctx.data_source == "local" else ["--data", "fixture"]
    return [sys.executable, "-c", "from harness.cli import main; main()", "run", "--model", str(card),
            "--backend", "vllm", "--tasks", "gsm8k", "--limit", str(ctx.prompts), "--greedy",
            "--max-new-tokens", str(ctx.output_len), "--max-model-len", str(ctx.max_model_len),
            "--output", str(Path(ctx.work) / "runs"), *data,
            *(f"--engine-arg={k}={json.dumps(v)}" for k, v in ctx.vllm_args.items())]
