"""Code tasks: every reference solution passes through `owb run --backend replay`, wrong ones fail, pass@k."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.scoring.code import extract_code, fenced_blocks, humaneval_program
from tests.contract import check_run
from tests.helpers import run_cli, samples, write_replay


def _replay_run(tmp_path: Path, task: str, lines: list[dict], *extra: str) -> dict:
    replay = write_replay(tmp_path / f"{task}.jsonl", lines)
    run_dir = run_cli("--model", "tiny-qwen2", "--backend", "replay", "--replay", str(replay), "--tasks", task,
                      "--output", str(tmp_path / "runs"), *extra)
    record = check_run(run_dir)
    record["_samples"] = samples(run_dir, task)
    return record


@pytest.mark.slow
def test_all_humaneval_canonical_solutions_pass(shared_data: Path, tmp_path: Path) -> None:
    rows = [json.loads(x) for x in (shared_data / "humaneval" / "HumanEval.jsonl").read_text().splitlines()]
    lines = [{"task": "humaneval", "doc_id": r["task_id"], "sample_idx": 0, "output": r["prompt"] + r["canonical_solution"]}
             for r in rows]
    record = _replay_run(tmp_path, "humaneval", lines, "--data-dir", str(shared_data))
    entry = record["tasks"]["humaneval"]
    assert entry["n"] == 164 and entry["metrics"]["pass@1"]["value"] == 100.0
    assert {s["status"] for s in record["_samples"]} == {"passed"}
    assert entry["scorer"]["sandbox"]["mode"] in ("root-namespaces", "bubblewrap", "user-namespaces")


BASE_CARD = """id: tiny-base
family: qwen2.5
architecture: qwen2
tiny: qwen2
dtype: float32
chat: false
sampling: {'off': {temperature: 0.0}}
max_new_tokens: {'off': 16}
"""


@pytest.mark.slow
@pytest.mark.parametrize("chat", [False, True], ids=["base-card", "chat-card"])
def test_canonical_bodies_as_bare_completions_pass(shared_data: Path, tmp_path: Path, chat: bool) -> None:
    """The standard HumanEval protocol: the model completes the prompt with the body alone (a base model always; a
    chat model sometimes). All 164 canonical bodies, replayed as the raw output, pass through both kinds of card."""
    rows = [json.loads(x) for x in (shared_data / "humaneval" / "HumanEval.jsonl").read_text().splitlines()]
    lines = [{"task": "humaneval", "doc_id": r["task_id"], "sample_idx": 0, "output": r["canonical_solution"]}
             for r in rows]
    card = "tiny-qwen2"
    if not chat:
        (tmp_path / "base.yaml").write_text(BASE_CARD)
        card = str(tmp_path / "base.yaml")
    replay = write_replay(tmp_path / "bodies.jsonl", lines)
    run_dir = run_cli("--model", card, "--backend", "replay", "--replay", str(replay), "--tasks", "humaneval",
                      "--data-dir", str(shared_data), "--output", str(tmp_path / "runs"))
    entry = check_run(run_dir)["tasks"]["humaneval"]
    assert entry["metrics"]["pass@1"]["value"] == 100.0, [s["stderr"] for s in samples(run_dir, "humaneval")
                                                          if s["status"] != "passed"][:2]
    first = samples(run_dir, "humaneval")[0]
    assert first["answer"].startswith("    ") and first["prompt"].startswith("from typing") is not chat


@pytest.mark.slow
@pytest.mark.parametrize(("task", "file"), [("mbpp", "mbpp.jsonl"), ("mbpp_sanitized", "sanitized-mbpp.jsonl")])
def test_all_mbpp_reference_solutions_of_the_test_split_pass(shared_data: Path, tmp_path: Path, task: str,
                                                            file: str) -> None:
    rows = [json.loads(x) for x in (shared_data / "mbpp" / file).read_text().splitlines()]
    lines = [{"task": task, "doc_id": str(r["task_id"]), "sample_idx": 0, "output": f"```python\n{r['code']}\n```"}
             for r in rows if 11 <= r["task_id"] <= 510]
    record = _replay_run(tmp_path, task, lines, "--data-dir", str(shared_data))
    entry = record["tasks"][task]
    assert entry["n"] == (500 if task == "mbpp" else 257)
    assert entry["metrics"]["pass@1"]["value"] == 100.0


def test_wrong_solutions_fail_and_pass_at_k_uses_the_unbiased_estimator(tmp_path: Path) -> None:
    fixture = Path(__file__).resolve().parents[2] / "tasks" / "fixtures" / "humaneval.jsonl"
    rows = [json.loads(x) for x in fixture.read_text().splitlines()]
    lines = []
    for doc_index, r in enumerate(rows):
        for k in range(10):
            right = k < doc_index * 3  # doc 0: 0/10 right, doc 1: 3/10, doc 2: 6/10, doc 3: 9/10
            body = r["canonical_solution"] if right else "    return None\n"
            lines.append({"task": "humaneval", "doc_id": r["task_id"], "sample_idx": k,
                          "output": f"Here you go:\n```python\n{r['prompt']}{body}```\nDone."})
    record = _replay_run(tmp_path, "humaneval", lines, "--data", "fixture", "--samples", "10")
    metrics = record["tasks"]["humaneval"]["metrics"]
    assert metrics["pass@1"]["value"] == pytest.approx(100 * (0 + 0.3 + 0.6 + 0.9) / 4)
    from harness.core.stats import pass_at_k

    expected10 = 100 * sum(pass_at_k(10, c, 10) for c in (0, 3, 6, 9)) / 4
    assert metrics["pass@10"]["value"] == pytest.approx(expected10)
    assert "pass@100" not in metrics  # k > n is not reported
    statuses = {s["status"] for s in record["_samples"] if s["scores"]["passed"] == 0}
    assert statuses == {"failed"}
    failed = next(s for s in record["_samples"] if s["scores"]["passed"] == 0)
    assert "AssertionError" in failed["stderr"]


def test_extraction_takes_the_fenced_function_and_drops_stray_statements() -> None:
    answer = ("First a sketch:\n```python\nprint('hi')\n```\nFinal:\n```python\nimport math\n\n"
              "def area(r):\n    return math.pi * r * r\n\nprint(area(2))\nassert area(1) > 3\n```")
    code = extract_code(answer, "area")
    assert code == "import math\n\ndef area(r):\n    return math.pi * r * r"
    assert fenced_blocks("```python\ndef f():\n    return 1") == ["def f():\n    return 1"]  # unclosed fence
    assert extract_code("def f():\n    return 1\n", "f") == "def f():\n    return 1"


def test_humaneval_program_keeps_prompt_imports_and_completes_bodies() -> None:
    doc = {"prompt": "from typing import List\n\ndef f(xs: List[int]) -> int:\n    \"\"\"doc\"\"\"\n",
           "entry_point": "f", "test": "def check(c):\n    assert c([1]) == 1\n"}
    full = humaneval_program("```python\ndef f(xs: List[int]) -> int:\n    return xs[0]\n```", doc)
    assert full.startswith("from typing import List\ndef f(")
    body = humaneval_program("    return xs[0]\n", doc)
    assert body.startswith(doc["prompt"] + "    return xs[0]")
    assert body.rstrip().endswith("check(f)")


def test_without_a_sandbox_code_tasks_need_unsafe_exec(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Where no mode isolates (simulated), a code task stops with one line saying why; --unsafe-exec runs it in the
    plain mode, which run.json records."""
    from harness.sandbox import base as sandbox

    sandbox.detect_mode.cache_clear()
    monkeypatch.setattr(sandbox, "_probe", lambda mode: "not available here")
    try:
        rows = [json.loads(x) for x in (Path(__file__).resolve().parents[2] / "tasks" / "fixtures" /
                                        "humaneval.jsonl").read_text().splitlines()]
        lines = [{"task": "humaneval", "doc_id": r["task_id"], "sample_idx": 0, "output": r["prompt"] +
                  r["canonical_solution"]} for r in rows]
        for name in ("refused", "unsafe"):
            (tmp_path / name).mkdir()
        with pytest.raises(sandbox.NoSandbox, match="pass --unsafe-exec"):
            _replay_run(tmp_path / "refused", "humaneval", lines, "--data", "fixture")
        record = _replay_run(tmp_path / "unsafe", "humaneval", lines, "--data", "fixture", "--unsafe-exec")
        assert record["tasks"]["humaneval"]["scorer"]["sandbox"]["mode"] == "plain"
        assert record["invocation"]["unsafe_exec"] is True
        assert record["tasks"]["humaneval"]["metrics"]["pass@1"]["value"] == 100.0
    finally:
        sandbox.detect_mode.cache_clear()
