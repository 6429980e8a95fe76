"""`owb run` through transformers on every tiny family, checked against the file contract."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.engines.tiny import RECIPES
from tests.contract import check_run
from tests.helpers import run_cli, samples

pytestmark = pytest.mark.slow  # real engines or subprocesses: `make test` runs these, `make test-fast` does not


@pytest.mark.parametrize("family", sorted(RECIPES))
def test_every_tiny_family_runs_and_writes_the_contract(family: str, tmp_path: Path) -> None:
    run_dir = run_cli("--model", f"tiny-{family}", "--tasks", "gsm8k,math500", "--data", "fixture",
                      "--limit", "4", "--output", str(tmp_path))
    record = check_run(run_dir)
    assert record["model"]["id"] == f"tiny-{family}"
    assert record["backend"]["name"] == "hf"
    for task in ("gsm8k", "math500"):
        entry = record["tasks"][task]
        assert entry["n"] == 4
        perf = entry["perf"]
        assert perf["output_tokens"] > 0 and perf["output_tokens_per_s"] > 0
        assert perf["ttft_s"]["p50"] > 0 and perf["e2e_s"]["p50"] >= perf["ttft_s"]["p50"]
        written = samples(run_dir, task)
        assert all(s["prompt_tokens"] > 0 for s in written)
        assert all(1 <= s["output_tokens"] <= 48 for s in written)


def test_prompts_go_through_the_family_template(tmp_path: Path) -> None:
    run_dir = run_cli("--model", "tiny-llama", "--tasks", "math500", "--data", "fixture", "--limit", "1",
                      "--output", str(tmp_path))
    sample = samples(run_dir, "math500")[0]
    assert sample["prompt"].startswith("<｜begin▁of▁sentence｜><｜User｜>")
    assert sample["prompt"].endswith("<｜Assistant｜><think>\n")


def test_greedy_runs_are_reproducible(tmp_path: Path) -> None:
    outputs = []
    for out in ("a", "b"):
        run_dir = run_cli("--model", "tiny-qwen3", "--tasks", "gsm8k", "--data", "fixture", "--limit", "3",
                          "--output", str(tmp_path / out))
        outputs.append([json.loads(x)["raw_output"] for x in (run_dir / "samples" / "gsm8k.jsonl").read_text().splitlines()])
    assert outputs[0] == outputs[1]


def test_samples_k_writes_k_per_doc_and_pass1_is_their_mean(tmp_path: Path) -> None:
    replay = tmp_path / "replay.jsonl"
    fixture = Path(__file__).resolve().parents[2] / "tasks" / "fixtures" / "gsm8k.jsonl"
    rows = [json.loads(x) for x in fixture.read_text().splitlines()][:3]
    lines = []
    for i, row in enumerate(rows):
        gold = row["answer"].split("####")[-1].strip()
        for k in range(4):
            right = k < i + 1  # doc 0: 1/4 right, doc 1: 2/4, doc 2: 3/4
            lines.append({"task": "gsm8k", "doc_id": str(i), "sample_idx": k, "output": f"#### {gold if right else -1}"})
    replay.write_text("\n".join(json.dumps(x) for x in lines))
    run_dir = run_cli("--model", "tiny-qwen2", "--backend", "replay", "--replay", str(replay), "--tasks", "gsm8k",
                      "--data", "fixture", "--limit", "3", "--samples", "4", "--output", str(tmp_path / "runs"))
    record = check_run(run_dir)
    written = samples(run_dir, "gsm8k")
    assert len(written) == 12
    per_doc = {}
    for s in written:
        per_doc.setdefault(s["doc_id"], []).append(s["scores"]["strict_match"])
    assert all(len(v) == 4 for v in per_doc.values())
    expected = 100 * sum(sum(v) / 4 for v in per_doc.values()) / 3
    assert record["tasks"]["gsm8k"]["metrics"]["strict_match"]["value"] == pytest.approx(expected)
    assert expected == pytest.approx(50.0)
    # maj@4: doc 0 loses the vote, doc 1 ties and the first answer seen (right) wins, doc 2 wins.
    assert record["tasks"]["gsm8k"]["metrics"]["maj@4"]["value"] == pytest.approx(100 * 2 / 3)


def test_code_tasks_through_a_real_engine(tmp_path: Path) -> None:
    run_dir = run_cli("--model", "tiny-qwen3", "--tasks", "humaneval,mbpp", "--data", "fixture", "--limit", "3",
                      "--samples", "2", "--output", str(tmp_path))
    record = check_run(run_dir)
    for task in ("humaneval", "mbpp"):
        entry = record["tasks"][task]
        assert set(entry["metrics"]) == {"pass@1"}  # k=10 needs at least 10 samples
        written = samples(run_dir, task)
        assert len(written) == 6
        assert all(s["status"] in ("passed", "failed", "timeout", "error") and "passed" in s["scores"] for s in written)


def test_base_model_prompts_use_few_shot_from_the_data(tmp_path: Path) -> None:
    card = tmp_path / "tiny-base.yaml"
    card.write_text("id: tiny-base\nfamily: qwen2.5\narchitecture: qwen2\ntiny: qwen2\ndtype: float32\nchat: false\n"
                    "sampling: {'off': {temperature: 0.0}}\nmax_new_tokens: {'off': 16}\n")
    run_dir = run_cli("--model", str(card), "--tasks", "mbpp,gsm8k", "--data", "fixture", "--limit", "2",
                      "--output", str(tmp_path / "runs"))
    check_run(run_dir)
    mbpp = samples(run_dir, "mbpp")[0]
    assert mbpp["prompt"].count("[BEGIN]") == 4 and mbpp["prompt"].count("[DONE]") == 3
    assert "Write a function to reverse a string." in mbpp["prompt"]  # task_id 3 is a shot
    assert "[DONE]" not in mbpp["raw_output"]
    gsm = samples(run_dir, "gsm8k")[0]
    assert gsm["prompt"].count("Question:") == 6 and gsm["prompt"].endswith("Answer:")
