"""`owb check` (paired tests), `owb compare` (tables, HTML report in headless Chromium) and `owb rescore`."""

from __future__ import annotations

import json
import random
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from harness.regress import mcnemar_exact, paired_bootstrap
from tests.helpers import REPO, owb, run_cli, write_replay

ARTIFACTS = REPO / "runs" / "test-artifacts"


def _gsm8k_run(shared_data: Path, out: Path, outputs: list[str]) -> Path:
    replay = write_replay(out.with_suffix(".jsonl"), [{"task": "gsm8k", "doc_id": str(i), "sample_idx": 0, "output": o}
                                                      for i, o in enumerate(outputs)])
    return run_cli("--model", "tiny-qwen2", "--backend", "replay", "--replay", str(replay), "--tasks", "gsm8k",
                   "--data-dir", str(shared_data), "--limit", str(len(outputs)), "--output", str(out))


@pytest.fixture
def baseline_outputs(shared_data: Path) -> tuple[list[str], list[str]]:
    """200 GSM8K answers, about 60% right, and the gold numbers."""
    rows = [json.loads(x) for x in (shared_data / "gsm8k" / "test.jsonl").read_text().splitlines()][:200]
    gold = [r["answer"].split("####")[-1].strip() for r in rows]
    rng = random.Random(0)
    return [f"#### {g}" if rng.random() < 0.6 else "#### -1" for g in gold], gold


def _check(base: Path, cand: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return owb("check", "--baseline", str(base), "--candidate", str(cand), *extra)


def test_identical_runs_pass(shared_data: Path, tmp_path: Path, baseline_outputs) -> None:  # noqa: ANN001
    outputs, _ = baseline_outputs
    a = _gsm8k_run(shared_data, tmp_path / "a", outputs)
    b = _gsm8k_run(shared_data, tmp_path / "b", outputs)
    result = _check(a, b)
    assert result.returncode == 0, result.stdout
    assert "**Result: PASS**" in result.stdout and "| gsm8k | strict_match | 200 |" in result.stdout


def test_thirty_percent_wrong_answers_fail(shared_data: Path, tmp_path: Path, baseline_outputs) -> None:  # noqa: ANN001
    outputs, _ = baseline_outputs
    rng = random.Random(1)
    worse = [("#### -1" if rng.random() < 0.3 else o) for o in outputs]
    a = _gsm8k_run(shared_data, tmp_path / "a", outputs)
    b = _gsm8k_run(shared_data, tmp_path / "b", worse)
    result = _check(a, b)
    assert result.returncode == 1, result.stdout
    assert "**REGRESSION**" in result.stdout and "McNemar exact" in result.stdout


def test_a_candidate_within_noise_passes(shared_data: Path, tmp_path: Path, baseline_outputs) -> None:  # noqa: ANN001
    outputs, gold = baseline_outputs
    noisy = list(outputs)
    wrong = [i for i, o in enumerate(outputs) if o == "#### -1"]
    right = [i for i, o in enumerate(outputs) if o != "#### -1"]
    for i in right[:4]:
        noisy[i] = "#### -1"  # 4 lost ...
    for i in wrong[:2]:
        noisy[i] = f"#### {gold[i]}"  # ... 2 gained: a 1-point drop, far from significant
    result = _check(_gsm8k_run(shared_data, tmp_path / "a", outputs), _gsm8k_run(shared_data, tmp_path / "b", noisy))
    assert result.returncode == 0, result.stdout
    assert "| +1.00 |" in result.stdout


def test_mismatched_configs_are_refused(shared_data: Path, tmp_path: Path, baseline_outputs) -> None:  # noqa: ANN001
    outputs, _ = baseline_outputs
    a = _gsm8k_run(shared_data, tmp_path / "a", outputs)
    fewer = _gsm8k_run(shared_data, tmp_path / "b", outputs[:100])
    result = _check(a, fewer)
    assert result.returncode == 2 and "scored different documents" in result.stderr
    other = tmp_path / "c"
    shutil.copytree(a, other)
    record = json.loads((other / "run.json").read_text())
    record["tasks"]["gsm8k"]["config"]["prompt_hash"] = "0" * 16
    (other / "run.json").write_text(json.dumps(record))
    result = _check(a, other)
    assert result.returncode == 2 and "different prompt hash" in result.stderr
    assert "Traceback" not in result.stderr


def test_paired_statistics() -> None:
    base = np.array([1] * 30 + [0] * 70, dtype=float)
    cand = base.copy()
    cand[:10] = 0  # 10 lost, 0 gained
    assert mcnemar_exact(base, cand) == pytest.approx(2 * 0.5**10)
    assert mcnemar_exact(base, base) == 1.0
    rng = np.random.default_rng(0)
    x = rng.uniform(0.2, 0.6, 200)
    p, (lo, hi) = paired_bootstrap(x, x - 0.05)
    assert p < 0.001 and lo == pytest.approx(0.05) and hi == pytest.approx(0.05)
    p_noise, _ = paired_bootstrap(x, x + rng.normal(0, 0.05, 200))
    assert p_noise > 0.05


@pytest.mark.slow
def test_slowdown_limit_uses_output_tokens_per_s(tmp_path: Path) -> None:
    out = tmp_path / "runs"
    for _ in range(2):
        assert owb("run", "--model", "tiny-qwen2", "--tasks", "gsm8k", "--data", "fixture", "--limit", "3",
                   "--output", str(out)).returncode == 0
    a, b = sorted(out.iterdir())
    record = json.loads((b / "run.json").read_text())
    record["tasks"]["gsm8k"]["perf"]["wall_s"] *= 3  # the candidate became 3x slower
    (b / "run.json").write_text(json.dumps(record))
    assert _check(a, b, "--max-slowdown", "50").returncode == 1
    assert _check(a, b).returncode == 0  # speed is only checked when asked for


@pytest.mark.slow
def test_compare_html_renders_tables_and_plots_in_chromium(shared_data: Path, tmp_path: Path,
                                                           baseline_outputs) -> None:  # noqa: ANN001
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    outputs, _ = baseline_outputs
    runs = [_gsm8k_run(shared_data, tmp_path / "a", outputs),
            _gsm8k_run(shared_data, tmp_path / "b", ["#### -1"] * 50 + outputs[50:])]
    hf = tmp_path / "hf"
    assert owb("run", "--model", "tiny-qwen3", "--tasks", "gsm8k", "--data-dir", str(shared_data), "--limit", "200",
               "--max-new-tokens", "8", "--thinking", "off", "--output", str(hf)).returncode == 0
    runs.append(next(hf.iterdir()))
    report = tmp_path / "report.html"
    result = owb("compare", *map(str, runs), "--format", "html", "--out", str(report))
    assert result.returncode == 0, result.stderr
    text = report.read_text()
    for external in ("<script", "<link", 'src="http', 'href="http'):
        assert external not in text, f"the report must be self-contained ({external})"
    md = owb("compare", *map(str, runs), "--format", "md").stdout
    assert md.count("\n| 2026") + md.count("\n| 20") >= 3 and "gsm8k strict_match" in md
    csv_text = owb("compare", *map(str, runs), "--format", "csv").stdout
    assert len(csv_text.strip().splitlines()) == 4 and "gsm8k:strict_match:ci95_lo" in csv_text
    if chromium is None:
        pytest.skip("chromium is not installed (.ci/run installs it)")
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
             "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={tmp_path / 'chrome'}"]
    dom = subprocess.run([chromium, *flags, "--dump-dom", report.as_uri()], capture_output=True, text=True,
                         timeout=120).stdout
    assert dom.count("<tr>") == 1 + 3, "a header row and one row per run"
    assert dom.count("<svg") >= 1 and dom.count("<figure") == 1  # one task -> one figure of two plots
    assert "gsm8k: flexible_match" in dom
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shot = ARTIFACTS / "compare-report.png"
    subprocess.run([chromium, *flags, f"--screenshot={shot}", "--window-size=1400,1100", report.as_uri()],
                   capture_output=True, timeout=120)
    assert shot.is_file() and shot.stat().st_size > 20_000
    print(f"screenshot of the HTML report: {shot}")


@pytest.mark.slow
def test_rescore_recomputes_scores_from_raw_outputs(tmp_path: Path) -> None:
    out = tmp_path / "runs"
    assert owb("run", "--model", "tiny-llama", "--tasks", "math500,gsm8k", "--data", "fixture", "--limit", "4",
               "--output", str(out)).returncode == 0
    run_dir = next(out.iterdir())
    path = run_dir / "samples" / "math500.jsonl"
    samples = [json.loads(x) for x in path.read_text().splitlines()]
    original = json.loads((run_dir / "run.json").read_text())
    # Simulate a fixed scorer: give the first sample a right (boxed, closed-reasoning) output and a stale score.
    samples[0]["raw_output"] = f"think\n</think>\nSo \\boxed{{{samples[0]['target']}}}"
    samples[0]["scores"] = {"math_verify": 0.0}
    path.write_text("".join(json.dumps(s) + "\n" for s in samples))
    result = owb("rescore", str(run_dir))
    assert result.returncode == 0, result.stderr
    after = [json.loads(x) for x in path.read_text().splitlines()]
    assert after[0]["scores"]["math_verify"] == 1.0 and after[0]["answer"] == f"So \\boxed{{{samples[0]['target']}}}"
    assert [s["output_tokens"] for s in after] == [s["output_tokens"] for s in samples]
    record = json.loads((run_dir / "run.json").read_text())
    assert record["tasks"]["math500"]["metrics"]["math_verify"]["value"] == 25.0
    assert record["tasks"]["gsm8k"]["metrics"] == original["tasks"]["gsm8k"]["metrics"]
    assert "rescored_at" in record
