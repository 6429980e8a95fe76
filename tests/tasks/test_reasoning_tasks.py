"""The reasoning benchmarks the seed models are judged on (AIME 2024/2025, AMC 2023, Minerva, OlympiadBench): gold
answers score 100% on the real data, AIME 2025's broken escapes are repaired, and the R1 protocol's k samples."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from harness.config.taskspec import load_task_spec
from harness.scoring.maths import last_boxed
from tests.contract import check_run
from tests.helpers import REPO, FakeBackend, run_cli, samples, write_replay

TASKS = {"aime24": 30, "aime25": 30, "amc23": 40, "minerva_math": 272, "olympiadbench": 675}


def gold_output(task: str, row: dict) -> str:
    """A correct model answer for a row, in the file's own terms."""
    if task == "minerva_math":
        return row["solution"]  # its last \\boxed{} is the answer
    if task == "olympiadbench":
        return f"The answer is $\\boxed{{{row['final_answer'][0].strip('$')}}}$."
    return f"So the answer is \\boxed{{{row['answer']}}}."


def _rows(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text().splitlines() if x.strip()]


@pytest.mark.slow
@pytest.mark.parametrize("task", sorted(TASKS))
def test_gold_answers_score_100_on_the_real_data(task: str, shared_data: Path, tmp_path: Path) -> None:
    spec = load_task_spec(task)
    rows = _rows(shared_data / spec.source.local.file)
    ids = [str(r[spec.id_field]) if spec.id_field else str(i) for i, r in enumerate(rows)]
    lines = [{"task": task, "doc_id": d, "sample_idx": 0, "output": gold_output(task, r)}
             for d, r in zip(ids, rows, strict=True)]
    run_dir = run_cli("--model", "tiny-qwen2", "--backend", "replay", "--replay",
                      str(write_replay(tmp_path / "gold.jsonl", lines)), "--tasks", task, "--data-dir", str(shared_data),
                      "--output", str(tmp_path / "runs"))
    entry = check_run(run_dir)["tasks"][task]
    failed = [s["doc_id"] for s in samples(run_dir, task) if s["scores"]["math_verify"] != 1.0]
    assert entry["n"] == TASKS[task] and failed == [], failed[:5]
    assert entry["metrics"]["math_verify"]["value"] == 100.0


def test_aime25s_broken_escapes_are_repaired_as_matharena_writes_them(shared_data: Path) -> None:
    """Rows 18 and 27 lost `\\f` of `\\frac` to form feeds, row 19 `\\t` of `\\triangle` to a tab; the repaired text
    has no control characters, and each command the repair restores is one the MathArena .tex of that problem uses."""
    from harness.tasks.data import load_documents

    docs = {d.doc_id: d for d in load_documents(load_task_spec("aime25"), "local", shared_data, None).docs}
    raw = {str(r["id"]): r for r in _rows(shared_data / "aime25" / "test.jsonl")}
    answers = {}
    for contest, offset in (("aime_2025_I", 0), ("aime_2025_II", 15)):
        for line in (shared_data / "aime_matharena" / contest / "answers.csv").read_text().splitlines()[1:]:
            number, answer = line.split(",")
            answers[str(int(number) - 1 + offset)] = (contest, int(number), answer.strip())
    for doc_id in ("18", "19", "27"):
        broken, fixed = raw[doc_id]["problem"], docs[doc_id].fields["problem"]
        assert re.search(r"[\f\t]", broken) and not re.search(r"[\x00-\x08\x0b-\x1f]", fixed)
        # Each control character became two characters (backslash + letter): the k-th one sits at i + k in `fixed`.
        starts = [i + k for k, i in enumerate(m.start() for m in re.finditer(r"[\f\t]", broken))]
        restored = {found.group(0) for i in starts if (found := re.match(r"\\[a-zA-Z]+", fixed[i:]))}
        contest, number, answer = answers[doc_id]
        tex = (shared_data / "aime_matharena" / contest / "problems" / f"{number}.tex").read_text()
        assert restored and all(cmd in tex for cmd in restored), (doc_id, restored)
        assert str(docs[doc_id].target) == answer
    assert all(str(docs[d].target) == answers[d][2] for d in docs), "every answer equals MathArena's"


def test_every_new_task_runs_on_its_fixture(tmp_path: Path) -> None:
    """Gold outputs replayed on each task's fixture score 100%: AIME's zero-padded strings and AMC's floats compare as
    numbers, Minerva's target is the last box of its solution, OlympiadBench's a list."""
    for task in TASKS:
        rows = _rows(REPO / "tasks" / "fixtures" / f"{task}.jsonl")
        spec = load_task_spec(task)
        lines = [{"task": task, "doc_id": str(r[spec.id_field]), "sample_idx": 0, "output": gold_output(task, r)}
                 for r in rows]
        run_dir = run_cli("--model", "tiny-qwen2", "--backend", "replay", "--replay",
                          str(write_replay(tmp_path / f"{task}.jsonl", lines)), "--tasks", task, "--data", "fixture",
                          "--output", str(tmp_path / task))
        assert check_run(run_dir)["tasks"][task]["metrics"]["math_verify"]["value"] == 100.0, task
    assert last_boxed(_rows(REPO / "tasks" / "fixtures" / "minerva_math.jsonl")[2]["solution"]) == "\\frac{3}{4}"


def test_the_r1_protocol_at_k_4(tmp_path: Path) -> None:
    """--protocol r1 --samples 4 (the task's default is 64): 4 samples per problem with the card's thinking sampling;
    pass@1 (math_verify) is their mean per problem, cons@4 the answer most samples agree on (1/2 and 0.5 agree)."""
    rows = _rows(REPO / "tasks" / "fixtures" / "aime24.jsonl")
    outs = {0: ["\\boxed{14}", "\\boxed{14}", "\\boxed{7}", "\\boxed{014}"],  # 3 of 4 right; 14 and 014 vote together
            1: ["\\boxed{65}", "\\boxed{1}", "\\boxed{2}", "\\boxed{2}"],  # 1 of 4 right; the vote picks 2
            2: ["\\boxed{5}", "\\boxed{5}", "\\boxed{24}", "\\boxed{24.0}"]}  # a 2-2 tie: the first answer seen wins
    lines = [{"task": "aime24", "doc_id": str(r["id"]), "sample_idx": k, "output": o}
             for i, r in enumerate(rows) for k, o in enumerate(outs[i])]
    card = tmp_path / "sampled-r1.yaml"
    card.write_text((REPO / "model_cards" / "tiny-llama.yaml").read_text().replace("temperature: 0.0", "temperature: 0.6"))
    run_dir = run_cli("--model", str(card), "--backend", "replay", "--replay",
                      str(write_replay(tmp_path / "r1.jsonl", lines)), "--tasks", "aime24", "--protocol", "r1",
                      "--samples", "4", "--data", "fixture", "--output", str(tmp_path / "runs"))
    record = check_run(run_dir)
    entry = record["tasks"]["aime24"]
    assert record["invocation"]["protocol"] == "r1" and record["thinking"] == "on"
    assert entry["config"]["generation"]["samples_per_doc"] == 4 and entry["config"]["generation"]["temperature"] == 0.6
    assert entry["n_samples"] == 12
    assert entry["metrics"]["math_verify"]["value"] == pytest.approx(100 * (3 / 4 + 1 / 4 + 2 / 4) / 3)
    assert entry["metrics"]["cons@4"]["value"] == pytest.approx(100 * (1 + 0 + 0) / 3)


def test_the_r1_protocol_takes_each_tasks_k_and_refuses_greedy(tmp_path: Path) -> None:
    from harness.config.cards import load_card
    from harness.core.errors import ConfigError
    from harness.pipeline.plan import plan_task, resolve_task, run_mode
    from harness.records.run import RunOptions

    card = load_card("qwen3-8b")
    opts = RunOptions(model="qwen3-8b", tasks=("aime24", "math500"), protocol="r1")
    mode = run_mode(card, opts)
    plans = [plan_task(resolve_task(t), card, mode, opts) for t in opts.tasks]
    assert mode == "on" and [p.samples for p in plans] == [64, 4]
    assert [p.max_new_tokens for p in plans] == [38912, 32768], "Qwen3's longer AIME budget"
    assert plans[0].sampling.temperature == 0.6
    with pytest.raises(ConfigError, match="drop --greedy"):
        run_mode(card, opts.model_copy(update={"greedy": True}))
    with pytest.raises(ConfigError, match="has no `r1` protocol"):
        plan_task(resolve_task("gsm8k"), card, mode, opts)


def test_the_reasoning_suite_runs_each_task_under_its_protocol(fake_backend: type[FakeBackend], tmp_path: Path) -> None:
    """--suite reasoning: AIME 2024/2025, MATH-500, AMC 2023, HumanEval+ and MBPP+ under the R1 protocol, each with
    its own k (here capped by --samples 2 to stay small), through an in-process engine on the fixtures."""
    run_dir = run_cli("--model", "tiny-llama", "--backend", "fake", "--suite", "reasoning", "--samples", "2",
                      "--data", "fixture", "--limit", "2", "--output", str(tmp_path),
                      "--backend-arg", "answer=thinking </think> \\boxed{24}")
    record = check_run(run_dir)
    assert list(record["tasks"]) == ["aime24", "aime25", "math500", "gpqa_diamond", "livecodebench", "amc23",
                                     "humaneval_plus", "mbpp_plus"]
    assert record["invocation"]["protocol"] == "r1" and record["thinking"] == "on"
    assert {t: e["n_samples"] for t, e in record["tasks"].items()} == dict.fromkeys(record["tasks"], 4)
    assert "plus_pass@1" in record["tasks"]["humaneval_plus"]["metrics"]
    assert "cons@2" in record["tasks"]["aime25"]["metrics"]
