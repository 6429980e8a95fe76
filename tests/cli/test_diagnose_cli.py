"""The command line of the verdicts, `owb diagnose` and `owb diff`: every format, `--tolerance`, compare's JSON
holding every figure of its table, the HTML report's verdicts and diagnosis, and one-line errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.report.compare_json import CompareReport
from harness.report.diagnose import RunDiagnosis
from harness.report.drift import DriftReport
from harness.report.rows import load_row
from tests.helpers import REPO, fixture_rows, run_cli, run_main, write_replay

EXAMPLE = REPO / "results" / "examples" / "r1-distill-7b-protocol-r1"  # MATH-500 fixture, k=4, the R1 claim beside it


def test_compare_json_holds_every_figure_of_the_table() -> None:
    ended = run_main("compare", str(EXAMPLE), "--format", "json")
    assert ended.returncode == 0, ended.stderr
    report = CompareReport.model_validate_json(ended.stdout)
    row = load_row(EXAMPLE)
    (run,) = report.runs
    assert (run.run_id, run.model, run.backend, run.thinking) == (row.run_id, row.model, row.backend, row.thinking)
    assert {(m.task, m.metric): m.summary for m in run.metrics} == row.metrics
    assert run.costs == row.costs and run.output_tokens_per_s == row.output_tokens_per_s
    assert run.ttft_p50_s == row.ttft_p50_s
    claims = {(m.task, m.metric): m.claims for m in run.metrics if m.claims}
    shown = row.published[("math500", "math_verify")][0]
    (entry,) = claims[("math500", "math_verify")]
    assert entry.claim == shown.claim and entry.outside_ci == shown.outside_ci and entry.verdict == shown.verdict
    assert entry.verdict is not None and entry.verdict.claim_error == "Wilson over 10 problems x 4 samples"
    assert run.diagnosis is not None and {f.kind for f in run.diagnosis.tasks[0].findings} >= {"too_few_samples"}
    assert report.tolerance == 5.0


def test_tolerance_decides_the_verdict() -> None:
    default = CompareReport.model_validate_json(run_main("compare", str(EXAMPLE), "--format", "json").stdout)
    wide = CompareReport.model_validate_json(run_main("compare", str(EXAMPLE), "--format", "json",
                                                      "--tolerance", "60").stdout)

    def verdict(report: CompareReport) -> str | None:
        entry = next(m for m in report.runs[0].metrics if m.claims).claims[0]
        return entry.verdict.verdict if entry.verdict else None

    assert verdict(default) == "inconclusive" and verdict(wide) == "consistent"
    md = run_main("compare", str(EXAMPLE), "--format", "md").stdout
    assert "92.8* [1] inconclusive" in md and "Verdicts:" in md and "claim's own error: Wilson over 10" in md
    csv_text = run_main("compare", str(EXAMPLE), "--format", "csv").stdout
    assert "math500:math_verify:verdict" in csv_text.splitlines()[0] and ",inconclusive," in csv_text
    terminal = run_main("compare", str(EXAMPLE)).stdout
    assert "inconclusive" in terminal and "run - claim" in terminal


def test_compare_html_and_json_files_carry_verdicts_and_the_diagnosis(tmp_path: Path) -> None:
    page = tmp_path / "report.html"
    assert run_main("compare", str(EXAMPLE), "--out", str(page)).returncode == 0
    text = page.read_text()
    assert "<h2>Verdicts</h2>" in text and "<h2>Diagnosis</h2>" in text and "too_few_samples" in text
    out = tmp_path / "report.json"
    assert run_main("compare", str(EXAMPLE), "--out", str(out)).returncode == 0
    assert CompareReport.model_validate_json(out.read_text()).runs[0].diagnosis is not None
    bad = run_main("compare", str(EXAMPLE), "--format", "xml")
    assert bad.returncode == 2 and bad.stderr.startswith("error: Invalid value for '--format'")


def test_diagnose_prints_a_table_markdown_or_json() -> None:
    table = run_main("diagnose", str(EXAMPLE))
    assert table.returncode == 0 and "too_few_samples" in table.stdout and "owb diagnose" in table.stdout
    md = run_main("diagnose", str(EXAMPLE), "--format", "md").stdout
    assert md.startswith("## owb diagnose") and "| math500 | too_few_samples | 10 |" in md
    parsed = RunDiagnosis.model_validate_json(run_main("diagnose", str(EXAMPLE), "--format", "json").stdout)
    assert parsed.tasks[0].task == "math500"
    missing = run_main("diagnose", str(EXAMPLE.parent / "no-such-run"))
    assert missing.returncode == 2 and missing.stderr.startswith("error: not a run directory")


def _gsm8k_run(tmp: Path, name: str, limit: int, model: str = "tiny-qwen2") -> Path:
    gold = [r["answer"].split("####")[-1].strip() for r in fixture_rows("gsm8k")][:limit]
    lines = [{"task": "gsm8k", "doc_id": str(i), "output": f"#### {g}"} for i, g in enumerate(gold)]
    return run_cli("--model", model, "--backend", "replay", "--replay",
                   str(write_replay(tmp / f"{name}.jsonl", lines)), "--tasks", "gsm8k", "--data", "fixture",
                   "--limit", str(limit), "--output", str(tmp / name))


@pytest.mark.slow
def test_diff_prints_the_audit(tmp_path: Path) -> None:
    """Greedy runs (tiny-qwen2's card) are compared output by output; sampled ones (R1-Distill's) are not."""
    a, b = _gsm8k_run(tmp_path, "a", 12), _gsm8k_run(tmp_path, "b", 12)
    ended = run_main("diff", str(a), str(b))
    assert ended.returncode == 0, ended.stderr
    assert "### Settings" in ended.stdout and "| gsm8k | 12 | 12 | 100.0 | tokens | - | - | - |" in ended.stdout
    assert "**Within noise: no score changed significantly at alpha 0.05" in ended.stdout
    assert "+0.00 points" in ended.stdout
    sampled = [_gsm8k_run(tmp_path, name, 12, "deepseek-r1-distill-qwen-1.5b") for name in ("c", "d")]
    ended = run_main("diff", *map(str, sampled), "--format", "json")
    report = DriftReport.model_validate_json(ended.stdout)
    assert report.within_noise and report.identity == [] and report.not_greedy == ["gsm8k"]


def test_diff_refuses_runs_of_different_documents(tmp_path: Path) -> None:
    ended = run_main("diff", str(_gsm8k_run(tmp_path, "a", 12)), str(_gsm8k_run(tmp_path, "b", 6)))
    assert ended.returncode == 2 and "scored different documents" in ended.stderr
