"""The real benchmark data in ../shared/data: gold answers replayed score 100%, a tiny model runs on it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.contract import check_run
from tests.helpers import owb

pytestmark = pytest.mark.slow  # real engines or subprocesses: `make test` runs these, `make test-fast` does not


def _run_dir(result, out: Path) -> Path:  # noqa: ANN001
    assert result.returncode == 0, result.stderr
    return next(out.iterdir())


def _replay(shared_data: Path, tmp_path: Path, task: str, outputs: dict[str, str]) -> dict:
    """Run `outputs` (doc_id -> text) through `owb run --backend replay` on the real data; the task's run.json entry."""
    replay = tmp_path / "gold.jsonl"
    replay.write_text("\n".join(json.dumps({"task": task, "doc_id": d, "sample_idx": 0, "output": o})
                                for d, o in outputs.items()))
    out = tmp_path / "runs"
    run_dir = _run_dir(owb("run", "--model", "tiny-qwen2", "--backend", "replay", "--replay", str(replay),
                           "--tasks", task, "--data-dir", str(shared_data), "--output", str(out)), out)
    return check_run(run_dir)["tasks"][task]


def test_gsm8k_gold_solutions_replayed_score_100(shared_data: Path, tmp_path: Path) -> None:
    rows = [json.loads(x) for x in (shared_data / "gsm8k" / "test.jsonl").read_text().splitlines()]
    entry = _replay(shared_data, tmp_path, "gsm8k", {str(i): r["answer"] for i, r in enumerate(rows)})
    assert entry["n"] == 1319
    assert entry["metrics"]["strict_match"]["value"] == 100.0
    assert entry["config"]["data"]["file_sha256"].startswith("3730d312")


def test_math500_reference_answers_boxed_score_100(shared_data: Path, tmp_path: Path) -> None:
    rows = [json.loads(x) for x in (shared_data / "math500" / "test.jsonl").read_text().splitlines()]
    entry = _replay(shared_data, tmp_path, "math500",
                    {r["unique_id"]: f"Hence the answer is $\\boxed{{{r['answer']}}}$." for r in rows})
    assert entry["n"] == 500
    assert entry["metrics"]["math_verify"]["value"] == 100.0


def test_tiny_model_on_real_data_with_limit(shared_data: Path, tmp_path: Path) -> None:
    out = tmp_path / "runs"
    run_dir = _run_dir(owb("run", "--model", "tiny-qwen2", "--tasks", "gsm8k,math500", "--data-dir", str(shared_data),
                           "--limit", "50", "--output", str(out)), out)
    record = check_run(run_dir)
    assert record["tasks"]["gsm8k"]["n"] == 50 and record["tasks"]["math500"]["n"] == 50
    first = json.loads((run_dir / "samples" / "math500.jsonl").read_text().splitlines()[0])
    assert first["doc_id"].startswith("test/")  # MATH-500's own unique_id
