"""`owb bench --backend openai` beside `vllm bench serve` on one `vllm serve` of the run model's shape (random weights,
the real tokenizer, prefix caching off): the same fixed-length workload (EOS ignored, greedy), the tools alternated,
at one request in flight and at many; each run's figures under vLLM's keys."""

from __future__ import annotations

import time
from pathlib import Path

import yaml

from benchmarks.gpu_suite.profile import Ctx
from benchmarks.gpu_suite.record import Recorder, ServeFigures, ServeLevel, ServeResult
from harness.config.cards import ModelCard
from harness.engines.weights import shape_dir
from harness.measure.vllm_serve import ServeWorkload, alternated, level_figure, vllm_server
from harness.records.bench import BenchLevel

NAME = "serve"
TIME_S: tuple[float, float] = (120, 300)
PER_MODEL = False
# mode -> (input tokens, output tokens, prompts per run, requests in flight per level, alternations)
WORKLOAD = {"gpu": (512, 128, 128, (1, 64), 2), "cpu-smoke": (32, 16, 8, (4,), 1)}
DEVICE_ARGS = {"gpu": ["--dtype", "bfloat16", "--gpu-memory-utilization", "0.5"],
               "cpu-smoke": ["--dtype", "float32", "--enforce-eager", "--gpu-memory-utilization", "0.3"]}


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
    client_card = str(_client_card(card, ctx, work))
    start = time.perf_counter()
    with vllm_server(str(shape_dir(card)), card.id, work / "server.log", args) as url:
        result.server_start_s = time.perf_counter() - start
        rec.save()
        for concurrency in levels:
            level = ServeLevel(max_concurrency=concurrency, vllm=[], owb=[])
            result.levels.append(level)
            load = ServeWorkload(input_len, output_len, prompts, concurrency)
            for tool, measured in alternated(url, card.id, ctx.tokenizer_dir, client_card, load, work, alternations):
                (level.vllm if tool == "vllm" else level.owb).append(_figures(measured))
                rec.save()


def _client_card(card: ModelCard, ctx: Ctx, work: Path) -> Path:
    """The card owb bench drives the server with: the run model's, its tokenizer read from the local copy."""
    client = card.model_copy(update={"id": f"{card.id}-served", "hf_repo": None, "local_path": ctx.tokenizer_dir})
    path = work / "client-card.yaml"
    path.write_text(yaml.safe_dump(client.model_dump(mode="json", exclude_defaults=True)))
    return path


def _figures(level: BenchLevel) -> ServeFigures:
    """A level's figures under vLLM's keys."""
    return ServeFigures.model_validate({key: level_figure(level, key) for key in ServeFigures.model_fields})
