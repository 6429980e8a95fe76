"""The runs the viewer's tests look at, made the way users make them: two replays of the same outputs that differ
(through `owb run --backend replay`), a run still marked running, a run `owb merge` joined from two shards, and a
generated 12,000-sample run summarised by owb's own summariser."""

from __future__ import annotations

import json
import random
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.pipeline.plan import resolve_task
from harness.pipeline.summarize import ScorerPool, summarize_task
from harness.records.sample import SampleRecord
from harness.records.store import RunDir
from tests.helpers import fixture_rows, run_cli, run_main, write_replay

SCRIPT = "<script>alert(1)</script>"
LOST = [str(i) for i in range(4, 12)]  # gsm8k documents B gets wrong where A was right
WON = ["3"]  # and the one it gets right where A was wrong
BIG_DOCS, BIG_K = 3000, 4


def _gsm8k(candidate: bool) -> list[dict[str, Any]]:
    """A: right except a document with no answer, one cut off while thinking and one wrong; B loses LOST, wins WON.
    Document 0 holds a script tag and LaTeX, which must show as text."""
    lines = []
    for i, row in enumerate(fixture_rows("gsm8k")):
        gold = row["answer"].split("####")[-1].strip()
        doc = str(i)
        wrong = (doc == "3" and not candidate) or (candidate and doc in LOST)
        line: dict[str, Any] = {"task": "gsm8k", "doc_id": doc,
                                "output": f"<think>Add the parts up.</think>The answer is {-1 if wrong else gold}.\n"
                                          f"#### {-1 if wrong else gold}"}
        if doc == "0":
            line["output"] = (f"<think>Careful: {SCRIPT} and $\\frac{{1}}{{2}}$.</think>It is {SCRIPT} "
                              f"$\\boxed{{{gold}}}$.\n#### {gold}")
        elif doc == "1":
            line.update(output="<think>Let me think about this for a very long time and", finish_reason="length",
                        output_tokens=48)
        elif doc == "2":
            line["output"] = "<think>Hmm.</think>I cannot tell."
        lines.append(line)
    return lines


def _math500() -> list[dict[str, Any]]:
    rows = fixture_rows("math500")
    return [{"task": "math500", "doc_id": r["unique_id"],
             "output": f"<think>Compute.</think>So it is $\\boxed{{{'x' if i == 9 else r['answer']}}}$."}
            for i, r in enumerate(rows)]


def _humaneval() -> list[dict[str, Any]]:
    """A passing program, a wrong one, one that does not parse and a passing one."""
    lines = []
    for i, row in enumerate(fixture_rows("humaneval")):
        body = row["prompt"] + row["canonical_solution"]
        if i == 1:
            body = row["prompt"] + "    return []\n"
        elif i == 2:
            body = "def is_palindrome(s:\n    return s == s[::-1]\n"
        lines.append({"task": "humaneval", "doc_id": row["task_id"],
                      "output": f"<think>Write it.</think>```python\n{body}```"})
    return lines


def replay_run(tmp: Path, name: str, lines: list[dict[str, Any]], tasks: str, *extra: str) -> Path:
    """One `owb run --backend replay` of the lines on the fixture data, under tmp/<name>/."""
    replay = write_replay(tmp / f"{name}.replay.jsonl", lines)
    return run_cli("--model", "qwen3-8b", "--backend", "replay", "--replay", str(replay), "--tasks", tasks,
                   "--data", "fixture", "--output", str(tmp / name), *extra)


def merged_run(tmp: Path, out: Path) -> Path:
    """Two samples per gsm8k document, some pairs disagreeing, run as shards 1/2 and 2/2 and merged into out/."""
    lines = []
    for i, row in enumerate(fixture_rows("gsm8k")):
        gold = row["answer"].split("####")[-1].strip()
        lines += [{"task": "gsm8k", "doc_id": str(i), "sample_idx": k,
                   "output": f"<think>Sum.</think>#### {gold if (i + k) % 3 else -1}"} for k in range(2)]
    replay = write_replay(tmp / "merged.replay.jsonl", lines)
    shards = [run_cli("--model", "qwen3-8b", "--backend", "replay", "--replay", str(replay), "--tasks", "gsm8k",
                      "--data", "fixture", "--samples", "2", "--shard", f"{i}/2", "--output", str(tmp / f"shard{i}"))
              for i in (1, 2)]
    before = set(out.iterdir())
    ended = run_main("merge", *map(str, shards), "--output", str(out))
    assert ended.returncode == 0, ended.stderr
    (merged,) = set(out.iterdir()) - before
    return merged


def running_run(source: Path, out: Path) -> Path:
    """A copy of a run whose run.json still says running (a run being generated)."""
    shutil.copytree(source, out)
    record = json.loads((out / "run.json").read_text())
    record["status"] = "running"
    (out / "run.json").write_text(json.dumps(record, indent=2))
    return out


def _big_sample(i: int, k: int, rng: random.Random) -> SampleRecord:
    gold = str(i * 7 % 1000)
    right = (i + k) % 3 != 0 or i % 5 == 0
    cut = i % 50 == 7 and k == 0
    said = gold if right else str(int(gold) + 1)
    reasoning = f"Problem {i}: " + "we add the numbers and check the sum again. " * rng.randint(10, 40)
    answer = "" if cut else f"The answer is {said}.\n#### {said}"
    tokens = len(reasoning.split()) + len(answer.split())
    return SampleRecord.with_texts(
        reasoning, answer, key=f"gsm8k/{i}/{k}", doc_id=str(i), sample_idx=k,
        prompt=f"Question {i}: what is {i} times 7, modulo 1000?",
        raw_output=f"<think>{reasoning}" + ("" if cut else f"</think>{answer}"),
        extracted=None if cut else {"strict": said, "flexible": said}, target=f"#### {gold}",
        scores={"strict_match": float(right and not cut), "flexible_match": float(right and not cut),
                "math_verify": float(right and not cut)},
        finish_reason="length" if cut else "stop", truncated=cut, prompt_tokens=16, output_tokens=tokens,
        reasoning_tokens=len(reasoning.split()), answer_tokens=len(answer.split()), ttft_s=0.05 + k * 0.01,
        tpot_s=0.01, e2e_s=0.05 + tokens * 0.01, queue_s=0.0, timing_scope="request", extraction_failed=cut)


def big_run(template: Path, out: Path, docs: int = BIG_DOCS) -> Path:
    """`docs` x BIG_K generated gsm8k samples in a copy of a run's record (other documents, priced by the GPU
    hour), summarised by owb's summariser."""
    source = RunDir(template).read_run()
    run_dir = RunDir(out / "big-12k")
    run_dir.create()
    entry = source.tasks["gsm8k"].model_copy(deep=True)
    entry.config.data.docs_hash = f"synthetic-{docs}"
    entry.config.generation.samples_per_doc = BIG_K
    entry.gen_wall_s = 600.0
    record = source.model_copy(deep=True, update={
        "run_id": "big-12k", "samples_per_doc": BIG_K, "tasks": {"gsm8k": entry},
        "invocation": source.invocation.model_copy(update={"gpu_hourly_usd": 2.0, "tasks": ("gsm8k",)})})
    rng = random.Random(0)
    for start in range(0, docs, 250):
        run_dir.append_samples("gsm8k", [_big_sample(i, k, rng) for i in range(start, min(start + 250, docs))
                                         for k in range(BIG_K)])
    scorers = ScorerPool()
    try:
        task = resolve_task("gsm8k")
        summarize_task(task, run_dir, record, record.seed, scorers.of(task))
    finally:
        scorers.close()
    run_dir.write_run(record)
    return run_dir.path


@dataclass(frozen=True)
class Fixtures:
    """Where the runs are: `runs` holds A, B, the running, merged and big runs; `examples` the committed ones."""

    runs: Path
    examples: Path
    a: Path
    b: Path
    running: Path
    merged: Path
    big: Path


def make_runs(tmp: Path, examples: Path, big_docs: int = BIG_DOCS) -> Fixtures:
    """Every fixture run under tmp/runs (shards and replay files beside it, outside)."""
    runs = tmp / "runs"
    tasks = "gsm8k,math500,humaneval"
    a = replay_run(tmp, "a", _gsm8k(False) + _math500() + _humaneval(), tasks)
    b = replay_run(tmp, "b", _gsm8k(True) + _math500() + _humaneval(), tasks)
    runs.mkdir()
    a, b = Path(shutil.move(a, runs / "replay-a")), Path(shutil.move(b, runs / "replay-b"))
    running = running_run(a, runs / "still-running")
    merged = merged_run(tmp, runs)
    return Fixtures(runs, examples, a, b, running, merged, big_run(a, runs, big_docs))
