"""`owb bench --backend openai` beside `vllm bench serve` on one `vllm serve` of the run model's shape (random weights,
the real tokenizer, prefix caching off): the same fixed-length workload (EOS ignored, greedy), the tools alternated,
at one request in flight and at many; each run's figures under vLLM's keys."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import yaml

from benchmarks.gpu_suite.profile import REPO, Ctx
from benchmarks.gpu_suite.record import Recorder, ServeFigures, ServeLevel, ServeResult
from harness.config.cards import ModelCard
from harness.engines.weights import shape_dir
from harness.measure.vllm_serve import serve_bench_args, vllm_command, vllm_level, vllm_server
from harness.records.bench import BenchLevel
from harness.records.store import read_bench

NAME = "serve"
TIME_S: tuple[float, float] = (120, 300)
PER_MODEL = False
# mode -> (input tokens, output tokens, prompts per run, requests in flight per level, alternations)
WORKLOAD = {"gpu": (512, 128, 128, (1, 64), 2), "cpu-smoke": (32, 16, 8, (4,), 1)}
DEVICE_ARGS = {"gpu": ["--dtype", "bfloat16", "--gpu-memory-utilization", "0.5"],
               "cpu-smoke": ["--dtype", "float32", "--enforce-eager", "--gpu-memory-utilization", "0.3"]}
KEYS = tuple(ServeFigures.model_fields)


def run(ctx: Ctx, rec: Recorder, label: str) -> None:
    """Serve `label`'s shape, then run both tools on each level, alternating which goes first."""
    card = ctx.card(label)
    input_len, output_len, prompts, levels, alternations = WORKLOAD[ctx.mode]
    work = Path(ctx.work) / "serve"
    work.mkdir(parents=True, exist_ok=True)
    args = ["--load-format", "dummy", "--tokenizer", ctx.tokenizer_dir, "--no-enable-prefix-caching",
            "--max-model-len", str(max(ctx.max_model_len, input_len + output_len)), *DEVICE_ARGS[ctx.mode]]
    # The lists are passed, not left to their defaults: suite.json keeps only fields that were set.
    result = rec.data.serve = ServeResult(card=card.id, input_len=input_len, output_len=output_len,
                                          num_prompts=prompts, server_args=args, levels=[])
    rec.save()
    client_card = _client_card(card, ctx, work)
    start = time.perf_counter()
    with vllm_server(str(shape_dir(card)), card.id, work / "server.log", args) as url:
        result.server_start_s = time.perf_counter() - start
        rec.save()
        for concurrency in levels:
            level = ServeLevel(max_concurrency=concurrency, vllm=[], owb=[])
            result.levels.append(level)
            for i in range(alternations):
                for tool in (("vllm", "owb") if i % 2 == 0 else ("owb", "vllm")):
                    if tool == "vllm":
                        level.vllm.append(_vllm(url, card.id, ctx, result, concurrency, work, i))
                    else:
                        level.owb.append(_owb(url, client_card, result, concurrency, work, i))
                    rec.save()


def _client_card(card: ModelCard, ctx: Ctx, work: Path) -> Path:
    """The card owb bench drives the server with: the run model's, its tokenizer read from the local copy."""
    client = card.model_copy(update={"id": f"{card.id}-served", "hf_repo": None, "local_path": ctx.tokenizer_dir})
    path = work / "client-card.yaml"
    path.write_text(yaml.safe_dump(client.model_dump(mode="json", exclude_defaults=True)))
    return path


def _vllm(url: str, model: str, ctx: Ctx, result: ServeResult, concurrency: int, work: Path, i: int) -> ServeFigures:
    """One `vllm bench serve` run."""
    out = work / f"vllm-c{concurrency}-{i}.json"
    args = serve_bench_args(url, model, ctx.tokenizer_dir, result.input_len, result.output_len, result.num_prompts,
                            concurrency, None, concurrency, out, seed=i)
    subprocess.run(vllm_command(*args), check=True, capture_output=True, text=True)
    return _figures(vllm_level(out))


def _owb(url: str, card: Path, result: ServeResult, concurrency: int, work: Path, i: int) -> ServeFigures:
    """One `owb bench --backend openai` run."""
    out = work / f"owb-c{concurrency}-{i}"
    command = [sys.executable, "-c", "from harness.cli import main; main()", "bench", "--model", str(card),
               "--backend", "openai", "--base-url", url, "--input-len", str(result.input_len), "--output-len",
               str(result.output_len), "--max-concurrency", str(concurrency), "--num-prompts",
               str(result.num_prompts), "--num-warmups", str(concurrency), "--seed", str(i), "--output", str(out)]
    subprocess.run(command, check=True, capture_output=True, text=True, cwd=REPO)
    return _figures(read_bench(next(out.glob("*/bench.json"))).levels[0])


def _figures(level: BenchLevel) -> ServeFigures:
    """A level's figures under vLLM's keys (an aggregate, or a latency statistic)."""
    return ServeFigures.model_validate({key: getattr(level, key) if key in BenchLevel.model_fields
                                        else level.stat(key) for key in KEYS})
