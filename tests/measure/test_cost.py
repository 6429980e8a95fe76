"""What a correct answer costs: tokens, dollars (GPU hours or API prices) and energy (null without a GPU) per task,
in run.json and in `owb compare`, with the Pareto plot of score against dollars and the thinking-budget curve."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.core.errors import ConfigError
from harness.report.export import to_csv, to_html, to_markdown
from harness.report.rows import load_row
from tests.contract import check_run
from tests.helpers import FakeBackend, fixture_rows, run_cli, write_replay


def _run(tmp_path: Path, name: str, *args: str) -> Path:
    return run_cli("--model", "tiny-qwen2", "--backend", "fake", "--tasks", "math500", "--data", "fixture",
                   "--backend-arg", "answer=so it is \\boxed{8}", "--output", str(tmp_path / name), *args)


def test_dollars_tokens_and_energy_per_correct_answer(fake_backend: type[FakeBackend], tmp_path: Path) -> None:
    """The fake engine answers 8 everywhere: one of the ten fixture problems is right; it writes 4 tokens each."""
    run_dir = _run(tmp_path, "gpu", "--gpu-hourly-usd", "3.6")
    record = check_run(run_dir)
    entry = record["tasks"]["math500"]
    cost, wall = entry["cost"], entry["perf"]["wall_s"]
    assert cost["correct"] == 1.0 and cost["output_tokens_per_sample"] == 4.0
    assert cost["output_tokens_per_correct"] == 40.0
    assert cost["usd"] == pytest.approx(wall / 3600 * 3.6)
    assert cost["usd_per_1k_correct"] == pytest.approx(1000 * cost["usd"])
    assert cost["usd_per_1m_output_tokens"] == pytest.approx(1e6 * cost["usd"] / 40)
    assert cost["energy"] is None and cost["joules_per_correct"] is None, "no GPU here: null, never 0"
    api = check_run(_run(tmp_path, "api", "--price-in", "0.5", "--price-out", "2"))["tasks"]["math500"]
    prompt_tokens = api["perf"]["prompt_tokens"]
    assert api["cost"]["usd"] == pytest.approx((prompt_tokens * 0.5 + 40 * 2) / 1e6)
    assert "per 1M prompt / output tokens" in api["cost"]["pricing"]
    unpriced = check_run(_run(tmp_path, "free"))["tasks"]["math500"]["cost"]
    assert unpriced["usd"] is None and unpriced["output_tokens_per_correct"] == 40.0
    with pytest.raises(ConfigError, match="not both"):
        _run(tmp_path, "both", "--gpu-hourly-usd", "1", "--price-in", "1", "--price-out", "1")


def test_compare_shows_cost_columns_and_plots(fake_backend: type[FakeBackend], tmp_path: Path) -> None:
    cheap = _run(tmp_path, "cheap", "--gpu-hourly-usd", "1")
    dear = _run(tmp_path, "dear", "--gpu-hourly-usd", "100")
    rows = [load_row(cheap), load_row(dear)]
    md = to_markdown(rows)
    assert "math500 $/1k correct" in md and "math500 tok/correct" in md and "J/correct" not in md
    assert "math500:usd_per_1k_correct" in to_csv(rows)
    html = to_html(rows)
    assert "math500: score against $ per 1,000 correct answers" in html and "Pareto frontier" in html


def test_summaries_have_no_correct_count_for_continuous_scores(tmp_path: Path) -> None:
    rows = fixture_rows("scitldr")
    lines = [{"task": "scitldr", "doc_id": r["paper_id"], "sample_idx": 0, "output": r["target"][0]} for r in rows]
    run_dir = run_cli("--model", "tiny-qwen2", "--backend", "replay", "--replay",
                      str(write_replay(tmp_path / "r.jsonl", lines)), "--tasks", "scitldr", "--data", "fixture",
                      "--output", str(tmp_path / "runs"))
    cost = json.loads((run_dir / "run.json").read_text())["tasks"]["scitldr"]["cost"]
    assert cost["correct"] is None and cost["output_tokens_per_correct"] is None


def test_the_budget_curve_is_drawn_for_runs_with_several_budgets(fake_backend: type[FakeBackend], tmp_path: Path) -> None:
    run_dir = run_cli("--model", "tiny-llama", "--backend", "fake", "--tasks", "math500", "--data", "fixture",
                      "--thinking-budget", "2,4", "--max-new-tokens", "16", "--output", str(tmp_path),
                      "--backend-arg", "answer=thinking thinking thinking thinking thinking thinking \\boxed{8}")
    record = check_run(run_dir)
    assert set(record["tasks"]) == {"math500@think2", "math500@think4"}
    assert "math500: score against thinking budget" in to_html([load_row(run_dir)])


def test_dollars_are_gpu_hours_of_every_gpu_used() -> None:
    """$ = wall x GPUs (tensor x pipeline x data parallel) x the price of one GPU; a served model is priced by the
    hour of the whole server."""
    from harness.measure.cost import gpu_usd, gpus_used, task_cost
    from harness.records.run import PerfSummary, RunOptions

    perf = PerfSummary(wall_s=1800.0, prompt_tokens=10, output_tokens=1000, reasoning_tokens=0, answer_tokens=1000,
                       output_tokens_per_s=None, ttft_s=None, tpot_s=None, e2e_s=None, timing_scope="request")
    opts = RunOptions(model="m", backend="vllm", tp=4, dp=2, gpu_hourly_usd=2.0)
    assert gpus_used(opts) == 8 and gpus_used(RunOptions(model="m")) == 1
    cost = task_cost([], perf, None, [], None, opts)
    assert cost.usd == pytest.approx(0.5 * 8 * 2.0) and cost.gpus == 8
    assert cost.pricing is not None and "x 8 GPUs" in cost.pricing and "start-up not included" in cost.pricing
    assert gpu_usd(3600, 2, None) is None and gpu_usd(None, 2, 1.0) is None and gpu_usd(90, 2, 4.0) == 0.2
