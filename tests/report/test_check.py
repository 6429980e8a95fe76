"""`owb check` (paired tests), `owb compare` (tables, HTML report in headless Chromium) and `owb rescore`."""

from __future__ import annotations

import json
import random
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from harness.report.check import MetricCheck, mcnemar_exact, paired_bootstrap, paired_test, sign_flip_test
from tests.helpers import REPO, Ended, owb, run_cli, run_main, samples, write_replay

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


def _check(base: Path, cand: Path, *extra: str) -> Ended:
    return run_main("check", "--baseline", str(base), "--candidate", str(cand), *extra)


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
def test_k_samples_pair_per_document_and_keep_the_false_alarm_rate() -> None:
    """200 pairs of simulated runs of equal true accuracy, 150 problems of varied difficulty, K = 4 correlated samples
    each (on half the problems a run's 4 samples repeat one answer, as low-temperature sampling often does): pairing
    per document (the mean of its samples) with the sign-flip test fails at most alpha of them, where pairing the
    600 samples as if independent fails far more good candidates."""
    rng = np.random.default_rng(7)

    def run(difficulty: np.ndarray) -> np.ndarray:
        draws = rng.random((150, 4)) < difficulty[:, None]
        collapsed = rng.random(150) < 0.5
        return np.where(collapsed[:, None], draws[:, :1], draws)

    failed = per_sample_failed = 0
    for _ in range(200):
        difficulty = rng.beta(0.4, 0.4, 150)
        base, cand = run(difficulty), run(difficulty)
        b, c = base.mean(axis=1), cand.mean(axis=1)
        test, p, ci = paired_test(b, c, samples_per_doc=4)
        assert test == "sign-flip permutation" and ci is not None
        check = MetricCheck("t", "m", 150, 100 * b.mean(), 100 * c.mean(), True, test, p, ci)
        failed += check.regressed(max_drop=0.0, alpha=0.05)
        per_sample_failed += mcnemar_exact(base.ravel().astype(float), cand.ravel().astype(float)) < 0.05
    assert failed / 200 <= 0.05, failed
    assert per_sample_failed / 200 >= 0.10, per_sample_failed
    assert paired_test(np.array([1.0, 0.0]), np.array([0.0, 0.0]), 1)[0] == "McNemar exact"
    assert sign_flip_test(np.ones(30), np.zeros(30)) < 0.001


def test_check_pairs_documents_of_k_samples(tmp_path: Path) -> None:
    """Runs with K = 3: one row per metric, paired over the documents, with the sign-flip test."""
    rows = [json.loads(x) for x in (REPO / "tasks" / "fixtures" / "gsm8k.jsonl").read_text().splitlines()]
    gold = [r["answer"].split("####")[-1].strip() for r in rows]
    runs = []
    for name, right in (("a", 2), ("b", 1)):
        lines = [{"task": "gsm8k", "doc_id": str(i), "sample_idx": k, "output": f"#### {g if k < right else -1}"}
                 for i, g in enumerate(gold) for k in range(3)]
        runs.append(run_cli("--model", "tiny-qwen2", "--backend", "replay", "--replay",
                            str(write_replay(tmp_path / f"{name}.jsonl", lines)), "--tasks", "gsm8k", "--data",
                            "fixture", "--samples", "3", "--output", str(tmp_path / name)))
    result = _check(*runs)
    assert result.returncode == 1, result.stdout
    assert "| gsm8k | strict_match | 12 | 66.67 | 33.33 | +33.33" in result.stdout
    assert "sign-flip permutation" in result.stdout and "maj@3" not in result.stdout


def test_incomplete_runs_and_changed_settings_are_refused(shared_data: Path, tmp_path: Path,
                                                          baseline_outputs) -> None:  # noqa: ANN001
    outputs, _ = baseline_outputs
    a = _gsm8k_run(shared_data, tmp_path / "a", outputs[:50])
    live = tmp_path / "live"
    shutil.copytree(a, live)
    record = json.loads((live / "run.json").read_text())
    record["status"] = "running"
    (live / "run.json").write_text(json.dumps(record))
    result = _check(a, live)
    assert result.returncode == 2 and "is not complete (status running)" in result.stderr
    record["status"] = "complete"
    (live / "run.json").write_text(json.dumps(record))
    path = live / "samples" / "gsm8k.jsonl"
    path.write_text("".join(path.read_text().splitlines(keepends=True)[:40]))
    result = _check(a, live)
    assert result.returncode == 2 and "task gsm8k has 40 samples on disk, run.json counts 50" in result.stderr
    replay = write_replay(tmp_path / "longer.jsonl", [{"task": "gsm8k", "doc_id": str(i), "sample_idx": 0, "output": o}
                                                      for i, o in enumerate(outputs[:50])])
    longer = run_cli("--model", "tiny-qwen2", "--backend", "replay", "--replay", str(replay), "--tasks", "gsm8k",
                     "--data-dir", str(shared_data), "--limit", "50", "--max-new-tokens", "77",
                     "--output", str(tmp_path / "longer"))
    result = _check(a, longer)
    assert result.returncode == 2 and "max_new_tokens 48 -> 77" in result.stderr
    assert "--allow-config-change" in result.stderr
    allowed = _check(a, longer, "--allow-config-change")
    assert allowed.returncode == 0 and "Settings differ (--allow-config-change):** gsm8k: max_new_tokens" in allowed.stdout


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
    runs_table = dom[dom.index('<table id="runs">') : dom.index("</table>", dom.index('<table id="runs">'))]
    assert runs_table.count("<tr>") == 1 + 3, "a header row and one row per run"
    assert dom.count("<h3>owb diagnose ") == 3, "a diagnosis of each run's headline score"
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
    rows = [json.loads(x) for x in path.read_text().splitlines()]
    original = json.loads((run_dir / "run.json").read_text())
    # Simulate a fixed scorer: give the first sample a right (boxed, closed-reasoning) output and a stale score.
    rows[0]["raw_output"] = f"think\n</think>\nSo \\boxed{{{rows[0]['target']}}}"
    rows[0]["scores"] = {"math_verify": 0.0}
    path.write_text("".join(json.dumps(s) + "\n" for s in rows))
    result = owb("rescore", str(run_dir))
    assert result.returncode == 0, result.stderr
    after = samples(run_dir, "math500")  # the answer is a span of the raw output: read it as owb does
    assert after[0]["scores"]["math_verify"] == 1.0 and after[0]["answer"] == f"So \\boxed{{{rows[0]['target']}}}"
    assert [s["output_tokens"] for s in after] == [s["output_tokens"] for s in rows]
    record = json.loads((run_dir / "run.json").read_text())
    assert record["tasks"]["math500"]["metrics"]["math_verify"]["value"] == 25.0
    assert record["tasks"]["gsm8k"]["metrics"] == original["tasks"]["gsm8k"]["metrics"]
    assert "rescored_at" in record


def test_compare_shows_published_claims_only_beside_runs_measured_like_them() -> None:
    """The committed example runs (scripts/example_runs.py): Qwen3-8B's MATH-500 claims sit beside the run of their
    thinking mode; Hunyuan-7B's full-MATH claim is never shown beside MATH-500; R1-Distill's claim (the R1 protocol,
    k = 4) only beside the run made with --protocol r1; every claim with its protocol and source."""
    from harness.report.export import to_markdown
    from harness.report.rows import load_row

    examples = REPO / "results" / "examples"
    rows = {path.name: load_row(path) for path in sorted(examples.iterdir())}
    shown = {name: {k: [s.claim.value for s in v] for k, v in row.published.items()} for name, row in rows.items()}
    assert shown == {
        "hunyuan-7b-math500": {},
        "qwen3-8b-no-thinking": {("math500", "math_verify"): [87.4]},
        "qwen3-8b-thinking": {("math500", "math_verify"): [97.4]},
        "r1-distill-7b-greedy-like": {},
        "r1-distill-7b-protocol-r1": {("math500", "math_verify"): [92.8]},
    }
    md = to_markdown(list(rows.values()))
    assert "Source: DeepSeek-R1 paper Table 5 / README" in md and "k=4, temp 0.6, top_p 0.95" in md
    assert "Source: Qwen3 Technical Report Tables 15-20" in md and "presence 1.5" in md
    assert "93.7" not in md, "Hunyuan's full-MATH score is not a MATH-500 claim"


def test_every_cards_claims_name_tasks_that_exist() -> None:
    from harness.config.cards import all_cards
    from harness.core.paths import TASKS_DIR

    tasks = {p.stem for p in TASKS_DIR.glob("*.yaml")}
    claims = [(card.id, c) for card in all_cards() for c in card.published]
    assert len(claims) > 100
    for card_id, claim in claims:
        assert claim.task is None or claim.task in tasks, (card_id, claim.benchmark)
        assert claim.source, (card_id, claim.benchmark)
        if claim.benchmark == "MATH":
            assert claim.task in (None, "math"), f"{card_id}: a full-MATH score filed under another owb task"
