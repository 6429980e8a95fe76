"""The families' headline tasks beyond AIME and MATH-500: LiveCodeBench (a contest-date window as a task argument),
GPQA-Diamond (options shuffled per question by a recorded seed), the full MATH and the few-shot base-model prompts
(GSM8K chain of thought, MATH 4-shot): gold answers score 100% on the fixtures, task arguments, the card's arguments,
the gated dataset's error, the shuffle under resume, and `--suite reasoning` with the claims beside its columns."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import ClassVar

import pytest

from harness.config.cards import load_card
from harness.core.errors import ConfigError
from harness.engines.base import Generation, GenRequest
from harness.engines.registry import BACKENDS, register_backend
from harness.pipeline.plan import plan_tasks, resolve_task
from harness.records.run import RunOptions
from harness.report.export import to_markdown
from harness.report.rows import load_row
from harness.tasks.prompts import base_prompt
from tests.contract import check_run
from tests.helpers import FakeBackend, run_cli, run_main, samples, write_replay

LCB_GOLD = {
    "abc900_a": "a, b = map(int, input().split())\nprint(a + b)",
    "9001": "class Solution:\n    def countPairs(self, nums, target):\n        return sum(nums[i] + nums[j] < target "
            "for i in range(len(nums)) for j in range(i + 1, len(nums)))",
    "2090A": "d, t = map(int, input().split())\nprint(d / t)",
    "9002": "class Solution:\n    def runningMax(self, nums):\n        best = []\n        for x in nums:\n"
            "            best.append(max(best[-1], x) if best else x)\n        return best",
    "abc905_b": "input()\nprint(' '.join(input().split()[::-1]))",
    "abc850_a": "print(2 * int(input()))",
}


def _gold(task: str) -> list[dict[str, object]]:
    """A right and a wrong answer for every fixture document of a task, as replay lines (sample 0 right)."""
    data = resolve_task(task).documents("fixture", None, None)
    lines = []
    for doc in data.docs:
        if task.startswith("livecodebench"):
            right, wrong = f"```python\n{LCB_GOLD[doc.doc_id]}\n```", "```python\nprint(0)\n```"
        elif task == "gpqa_diamond":
            other = "A" if doc.target != "A" else "B"
            right, wrong = f"Reasoning.\nAnswer: {doc.target}", f"Answer: {other}"
        elif task == "math":
            right, wrong = str(doc.fields["solution"]), "So the answer is \\boxed{-12345}."
        else:
            right, wrong = f"So it is {str(doc.target).split('####')[-1].strip()}. The answer is it.", "The answer is -1."
        lines += [{"task": task, "doc_id": doc.doc_id, "sample_idx": i, "output": out}
                  for i, out in enumerate((right, wrong))]
    return lines


@pytest.mark.parametrize(("task", "metric"), [("livecodebench@window=..", "pass@1"), ("gpqa_diamond", "accuracy"),
                                              ("math", "math_verify"), ("gsm8k_cot", "flexible_match")])
def test_gold_answers_score_100_and_wrong_ones_0_on_each_fixture(task: str, metric: str, tmp_path: Path) -> None:
    """Replayed through the whole pipeline: sample 0 (right) and sample 1 (wrong) of every document average 50%, and
    every right sample scores 1."""
    replay = write_replay(tmp_path / "replay.jsonl", _gold(task))
    run_dir = run_cli("--model", "tiny-qwen2", "--backend", "replay", "--replay", str(replay), "--tasks", task,
                      "--samples", "2", "--data", "fixture", "--output", str(tmp_path / "runs"))
    entry = check_run(run_dir)["tasks"][task]
    score = {"pass@1": "passed"}.get(metric, metric)
    lines = samples(run_dir, task)
    assert all(s["scores"][score] == 1.0 for s in lines if s["sample_idx"] == 0), [s["doc_id"] for s in lines]
    assert all(s["scores"][score] == 0.0 for s in lines if s["sample_idx"] == 1)
    assert entry["metrics"][metric]["value"] == pytest.approx(50.0)


def test_task_arguments_name_the_task_they_make() -> None:
    """`NAME@ARG=VALUE` sets the spec field the YAML names and the task is named in canonical form; unknown
    arguments and bad values are one error each; the card's arguments apply unless the name gives its own."""
    lcb = resolve_task("livecodebench@window=2024-08..2025-01")
    assert lcb.name == "livecodebench@window=2024-08-01..2025-01-31"
    assert [d.doc_id for d in lcb.documents("fixture", None, None).docs] == ["abc900_a", "9001", "2090A", "9002"]
    assert [d.doc_id for d in resolve_task("livecodebench").documents("fixture", None, None).docs] == [
        "9001", "2090A", "9002", "abc905_b"], "Qwen3's v5 window (2024-10..2025-02) by default"
    assert lcb.spec_hash() != resolve_task("livecodebench").spec_hash()
    for bad, message in (("livecodebench@window=2025-02..2024-01", "ends before it starts"),
                         ("livecodebench@window=last-year", "START..END"), ("livecodebench@shots=4", "no argument"),
                         ("mbpp@shots=0", "its arguments: none"), ("gsm8k_cot@shots=-1", "invalid argument"),
                         ("livecodebench@window", "NAME=VALUE")):
        with pytest.raises(ConfigError, match=message):
            resolve_task(bad)
    card = load_card("deepseek-r1-distill-qwen-7b")
    opts = RunOptions(model=card.id, tasks=("livecodebench", "livecodebench@window=2024-10..", "gpqa_diamond"),
                      thinking_budget=(512,))
    names = [p.task.name for p in plan_tasks(card, "on", opts)]
    assert names == ["livecodebench@window=2024-08-01..2025-01-31@think512", "livecodebench@window=2024-10-01..@think512",
                     "gpqa_diamond@think512"]


def test_few_shot_prompts_show_the_first_n_examples() -> None:
    """gsm8k_cot: Wei et al.'s 8 exemplars, or the first 4 (Qwen's base protocol); math: Minerva's 4."""
    for task, shots, marker in (("gsm8k_cot", 8, "\nA: "), ("gsm8k_cot@shots=4", 4, "\nA: "), ("math", 4, "Solution: ")):
        resolved = resolve_task(task)
        data = resolved.documents("fixture", None, 1)
        prompt = base_prompt(resolved.spec, data.docs[0], data.fewshot)
        assert prompt.count(marker) == shots and prompt.startswith(("Q: There are 15 trees", "Problem:\nFind the domain"))


def test_a_gated_dataset_without_a_token_is_one_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr("harness.tasks.data.hub_reachable", lambda: True)
    monkeypatch.setattr("harness.tasks.data._hub_token", lambda: None)
    replay = write_replay(tmp_path / "replay.jsonl", [])
    ended = run_main("run", "--model", "tiny-qwen2", "--backend", "replay", "--replay", str(replay), "--tasks",
                     "gpqa_diamond", "--data", "hf", "--output", str(tmp_path))
    assert ended.returncode == 2
    lines = ended.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: Idavidrein/gpqa is a gated dataset"), lines
    assert "huggingface.co/datasets/Idavidrein/gpqa" in lines[0] and "--data-dir" in lines[0]


class StoppingBackend(FakeBackend):
    """The fake engine, interrupted (as by Ctrl-C) at its fifth answer until `resume` is set."""

    name: ClassVar[str] = "stopping"
    resume: ClassVar[bool] = False
    answered: ClassVar[int] = 0

    def generate(self, requests: Sequence[GenRequest]) -> Iterator[Generation]:
        """The fake answers; the fifth of an unresumed run raises KeyboardInterrupt."""
        for generation in super().generate(requests):
            StoppingBackend.answered += 1
            if StoppingBackend.answered == 5 and not StoppingBackend.resume:
                raise KeyboardInterrupt
            yield generation


@pytest.fixture
def stopping_backend() -> Iterator[type[StoppingBackend]]:
    register_backend("stopping", StoppingBackend)
    StoppingBackend.resume, StoppingBackend.answered = False, 0
    yield StoppingBackend
    BACKENDS.unregister("stopping")


def test_gpqa_shuffle_is_stable_under_resume(stopping_backend: type[StoppingBackend], tmp_path: Path) -> None:
    """A GPQA run interrupted after one batch and resumed keeps every question's option order (resume checks the
    documents and prompts) and ends with the same targets, documents and prompts as an uninterrupted run; a question's
    order depends on the seed and its Record ID only, not on which questions are selected."""
    common = ["run", "--model", "tiny-qwen2", "--tasks", "gpqa_diamond", "--data", "fixture", "--samples", "2",
              "--batch-size", "2", "--backend-arg", "answer=Answer: B"]
    ended = run_main(*common, "--backend", "stopping", "--output", str(tmp_path / "stopped"))
    assert ended.returncode == 130, ended.stderr
    run_dir = next((tmp_path / "stopped").iterdir())
    assert 0 < len(samples(run_dir, "gpqa_diamond")) < 10
    StoppingBackend.resume = True
    assert run_main("run", "--resume", str(run_dir)).returncode == 0
    whole = run_cli(*common[1:], "--backend", "stopping", "--output", str(tmp_path / "whole"))
    resumed, fresh = check_run(run_dir)["tasks"]["gpqa_diamond"], check_run(whole)["tasks"]["gpqa_diamond"]
    assert resumed["config"]["data"]["docs_hash"] == fresh["config"]["data"]["docs_hash"]
    assert resumed["config"]["prompt_hash"] == fresh["config"]["prompt_hash"]
    targets = {(s["doc_id"], s["sample_idx"]): s["target"] for s in samples(run_dir, "gpqa_diamond")}
    assert targets == {(s["doc_id"], s["sample_idx"]): s["target"] for s in samples(whole, "gpqa_diamond")}
    assert resumed["metrics"]["accuracy"]["value"] == fresh["metrics"]["accuracy"]["value"]
    task = resolve_task("gpqa_diamond")
    every = {d.doc_id: d.fields for d in task.documents("fixture", None, None).docs}
    last_two = task.documents("fixture", None, None).docs[-2:]
    assert all(d.fields == every[d.doc_id] for d in last_two)
    orders = {d.doc_id: d.target for d in resolve_task("gpqa_diamond@seed=1").documents("fixture", None, None).docs}
    assert orders != {i: f["correct_letter"] for i, f in every.items()}, "another seed, another order"
    assert {f[f["correct_letter"]] for f in every.values()} == {f["Correct Answer"] for f in every.values()}


@pytest.mark.slow
@pytest.mark.parametrize(("model", "lcb"), [("deepseek-r1-distill-qwen-7b", "livecodebench@window=2024-08-01..2025-01-31"),
                                            ("qwen3-8b", "livecodebench")])
def test_the_reasoning_suite_and_its_claims(model: str, lcb: str, fake_backend: type[FakeBackend],
                                            tmp_path: Path) -> None:
    """--suite reasoning on a seed model runs the families' headline set under the R1 protocol, LiveCodeBench in the
    window of the card's claims; `owb compare` shows beside each task's headline column the matching claim or why
    there is none (here: claims made at k=64 or k=4 beside a run at k=2)."""
    run_dir = run_cli("--model", model, "--backend", "fake", "--suite", "reasoning", "--samples", "2",
                      "--data", "fixture", "--limit", "2", "--output", str(tmp_path),
                      "--backend-arg", "answer=thinking </think> Answer: B \\boxed{24}")
    record = check_run(run_dir)
    assert list(record["tasks"]) == ["aime24", "aime25", "math500", "gpqa_diamond", lcb, "amc23", "humaneval_plus",
                                     "mbpp_plus"]
    assert record["invocation"]["protocol"] == "r1" and record["thinking"] == "on"
    row = load_row(run_dir)
    headline = {(t, e["primary_metric"]) for t, e in record["tasks"].items()}
    assert headline == {key for key in headline if key in row.published or key in row.no_claim}
    shown = {key[0]: [s.claim.value for s in claims] for key, claims in row.published.items()}
    expected = {"deepseek-r1-distill-qwen-7b": {"gpqa_diamond": [49.1], lcb: [37.6]},
                "qwen3-8b": {"gpqa_diamond": [62.0], lcb: [57.5], "math500": [97.4]}}[model]
    assert shown == expected
    assert row.no_claim[("aime24", "math_verify")].startswith("published at k=64 samples per problem; this run k=2")
    assert "publishes no amc23 figure" in row.no_claim[("amc23", "math_verify")]
    md = to_markdown([row])
    assert "no claim: published at k=64 samples per problem; this run k=2" in md
    assert f"{lcb} pass@1 (published)" in md and "window 2024-" in md


def test_local_data_in_the_hub_schema_and_the_csv_columns(tmp_path: Path) -> None:
    """--data-dir DIR reads DIR/livecodebench/test.jsonl (the Hub's rows) and DIR/gpqa_diamond/test.jsonl (the
    released CSV's columns); documents are named by question_id and Record ID, as replay files name them."""
    from tests.helpers import FIXTURES

    lines = []
    for task, folder in (("livecodebench@window=..", "livecodebench"), ("gpqa_diamond", "gpqa_diamond")):
        (tmp_path / "data" / folder).mkdir(parents=True)
        (tmp_path / "data" / folder / "test.jsonl").write_text((FIXTURES / f"{folder}.jsonl").read_text())
        lines += [line for line in _gold(task) if line["sample_idx"] == 0]
    replay = write_replay(tmp_path / "replay.jsonl", lines)
    run_dir = run_cli("--model", "tiny-qwen2", "--backend", "replay", "--replay", str(replay), "--tasks",
                      "livecodebench@window=..,gpqa_diamond", "--data-dir", str(tmp_path / "data"),
                      "--output", str(tmp_path / "runs"))
    record = check_run(run_dir)
    for task, ids in (("livecodebench@window=..", set(LCB_GOLD)), ("gpqa_diamond", {f"recOwb000000000{i}"
                                                                                   for i in range(1, 6)})):
        entry = record["tasks"][task]
        assert entry["config"]["data"]["source"] == "local" and entry["config"]["data"]["file_sha256"]
        assert {s["doc_id"] for s in samples(run_dir, task)} == ids
        assert entry["metrics"][entry["primary_metric"]]["value"] == 100.0
