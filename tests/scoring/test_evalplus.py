"""EvalPlus tasks (HumanEval+, MBPP+): canonical solutions pass, solutions wrong on edge cases pass base and fail plus,
EvalPlus's float tolerance, oracles and time limits, and a candidate cannot forge its verdict."""

from __future__ import annotations

import gzip
import json
from collections import namedtuple
from pathlib import Path
from typing import Any

import pytest

from harness.core.errors import DataError
from harness.sandbox.base import Sandbox
from harness.scoring.base import Scored, ToScore
from harness.scoring.code import humaneval_program
from harness.scoring.evalplus.driver import _check, _plain
from harness.scoring.evalplus.oracles import mbpp_inputs, require_inputs
from harness.scoring.evalplus.scorer import EvalPlusArgs, EvalPlusScorer
from tests.contract import check_run
from tests.helpers import fixture_rows, run_cli, samples, write_replay

# A function whose reference time is known (sleep) and one with float outputs, as EvalPlus rows.
SLEEPER = {"task_id": "T/sleep", "prompt": "import time\n\n\ndef wait(s):\n", "entry_point": "wait",
           "canonical_solution": "    time.sleep(s)\n    return s\n", "base_input": [[0.0]],
           "plus_input": [[0.0], [0.2]], "atol": 0}
THIRD = {"task_id": "T/third", "prompt": "def third(x):\n", "entry_point": "third",
         "canonical_solution": "    return x / 3\n", "base_input": [[1.0]], "plus_input": [[2.0], [10.0], [300.0]],
         "atol": 1e-3}


def _score(doc: dict[str, Any], bodies: list[str], dataset: str = "humaneval", **args: Any) -> list[Scored]:
    scorer = EvalPlusScorer(EvalPlusArgs(dataset=dataset, **args))
    try:
        return scorer.score_batch([ToScore(doc["prompt"] + body, None, doc) for body in bodies])
    finally:
        scorer.close()


def _bits(scored: list[Scored]) -> list[tuple[float, float]]:
    return [(s.scores["base_passed"], s.scores["plus_passed"]) for s in scored]


def _replay(tmp_path: Path, task: str, lines: list[dict[str, Any]], *extra: str) -> tuple[dict[str, Any], list[dict]]:
    replay = write_replay(tmp_path / f"{task}.jsonl", lines)
    run_dir = run_cli("--model", "tiny-qwen2", "--backend", "replay", "--replay", str(replay), "--tasks", task,
                      "--output", str(tmp_path / "runs"), *extra)
    return check_run(run_dir)["tasks"][task], samples(run_dir, task)


def test_evalplus_comparison_rule() -> None:
    """EvalPlus's unsafe_execute: equality, else allclose(rtol 1e-7, atol) for the expected type and length, 1e-6
    enforced once an expected output is a float (and kept for the rest of the phase), and the special oracles."""
    assert _check("exact", 0.3334, float, 1 / 3, None, 1e-3) == (True, 1e-3)
    assert _check("exact", 0.335, float, 1 / 3, None, 1e-3)[0] is False
    assert _check("exact", 1 / 3 + 1e-7, float, 1 / 3, None, 0) == (True, 1e-6)
    assert _check("exact", 1 / 3 + 1e-5, float, 1 / 3, None, 0)[0] is False
    assert _check("exact", [1.0, 2.0000001], list, [1.0, 2.0], None, 0) == (True, 1e-6)
    assert _check("exact", (1.0, 2.0000001), tuple, [1.0, 2.0], None, 0)[0] is False  # the type must match
    assert _check("exact", [1.0], list, [1.0, 2.0], None, 1e-3)[0] is False
    assert _check("exact", 2, int, 2.0, None, 0) == (True, 1e-6)  # equal, then 1e-6 carries over to later inputs
    assert _check("exact", [1, 2], list, [1, 2.0000001], None, 1e-6)[0] is True
    assert _check("exact", [1, 2], list, [1, 2.0000001], None, 0)[0] is False
    assert _check("set_eq", [5, 4], list, (4, 5), None, 0)[0] is True
    assert _check("find_zero", 1.0, float, 7.5, [[-1, 1]], 1e-4)[0] is True  # any root passes
    assert _check("find_zero", 2.0, float, 1.0, [[-1, 1]], 1e-4)[0] is False
    assert _check("surface_area", 33, int, 33, [3, 4], 0)[0] is True
    assert _check("surface_area", 35, int, 33, [3, 4], 0)[0] is True  # Mbpp/581's other reading of "height"
    assert _check("sum_div", 0, int, 7, None, 0)[0] is True
    assert _check("not_none", True, bool, True, None, 0)[0] is True


def test_outputs_are_read_as_builtin_values() -> None:
    """A subclass's __eq__ never decides a comparison; an object of another type is no answer."""
    class Liar(int):
        def __eq__(self, other: object) -> bool:
            return True

        __hash__ = int.__hash__

    class Anything:
        def __eq__(self, other: object) -> bool:
            return True

    assert _plain(Liar(3)) == 3 and type(_plain(Liar(3))) is int and _plain([Liar(1)]) != [2]
    assert type(_plain(namedtuple("P", "x y")(1, 2))) is tuple
    with pytest.raises(TypeError):
        _plain([Anything()])
    big = [0.5] * 1000
    assert _plain(big) is big  # builtin containers of builtin scalars are not copied


def test_mbpp_inputs_are_deserialized_like_evalplus() -> None:
    assert mbpp_inputs("Mbpp/2", [[[3, 4], [4, 5]]]) == [[(3, 4), (4, 5)]]
    assert mbpp_inputs("Mbpp/124", [[1, "(1+2j)"]]) == [(1.0, 1 + 2j)]
    assert mbpp_inputs("Mbpp/115", [[[[1, 2], []]]]) == [[[{1, 2}, {}]]]
    assert mbpp_inputs("Mbpp/580", [[[1, [2, 3]], 4]]) == [((1, (2, 3)), 4)]
    assert mbpp_inputs("Mbpp/3", [[7]]) == [[7]]


def test_hub_rows_without_inputs_are_rejected_before_generation() -> None:
    with pytest.raises(DataError, match="--data-dir"):
        require_inputs({"task_id": "HumanEval/0", "prompt": "", "test": "..."})
    assert require_inputs(SLEEPER) is SLEEPER


def test_fixture_tasks_through_owb_run(tmp_path: Path) -> None:
    """Canonical solutions pass; wrong ones fail base; a solution wrong on an edge case passes base and fails plus;
    other correct outputs pass through EvalPlus's oracles (set equality, any root, Mbpp/581's formula)."""
    wrong = {"HumanEval/0": "def has_close_elements(numbers, threshold):\n    return False\n",
             "HumanEval/4": "def mean_absolute_deviation(numbers):\n    return sum(numbers) / len(numbers)\n",
             "HumanEval/32": "def value(xs, x):\n    return sum(c * x ** i for i, c in enumerate(xs))\n\n"
                             "def find_zero(xs):\n    lo, hi = -1e6, 1e6\n    for _ in range(200):\n"
                             "        mid = (lo + hi) / 2\n        if value(xs, lo) * value(xs, mid) <= 0:\n"
                             "            hi = mid\n        else:\n            lo = mid\n    return lo\n",
             "HumanEval/35": "def max_element(l):\n    m = 0\n    for e in l:\n        if e > m:\n            m = e\n"
                             "    return m\n"}
    expected = {"HumanEval/0": (0, 0), "HumanEval/4": (0, 0), "HumanEval/32": (1, 1), "HumanEval/35": (1, 0)}
    lines = [{"task": "humaneval_plus", "doc_id": r["task_id"], "sample_idx": k,
              "output": r["prompt"] + r["canonical_solution"] if k == 0 else f"```python\n{wrong[r['task_id']]}```"}
             for r in fixture_rows("humaneval_plus") for k in (0, 1)]
    entry, rows = _replay(tmp_path, "humaneval_plus", lines, "--data", "fixture", "--samples", "2")
    got = {(s["doc_id"], s["sample_idx"]): (s["scores"]["base_passed"], s["scores"]["plus_passed"]) for s in rows}
    assert got == {**{(d, 0): (1.0, 1.0) for d in wrong}, **{(d, 1): v for d, v in expected.items()}}
    assert entry["metrics"]["base_pass@1"]["value"] == pytest.approx(100 * 6 / 8)
    assert entry["metrics"]["plus_pass@1"]["value"] == pytest.approx(100 * 5 / 8)
    assert entry["primary_metric"] == "plus_pass@1" and entry["scorer"]["evalplus"]["min_time_limit"] == 4.0
    edge = next(s for s in rows if s["doc_id"] == "HumanEval/35" and s["sample_idx"] == 1)
    assert edge["status"] == "failed" and "plus fail at input 2 of 6: wrong output" in edge["stderr"]
    assert edge["extracted"].startswith("def max_element")

    mbpp = {"Mbpp/2": ("def similar_elements(a, b):\n    return tuple(sorted(set(b) & set(a), reverse=True))\n", 1, 1),
            "Mbpp/3": ("def is_not_prime(n):\n    return n % 2 == 0\n", 0, 0),
            "Mbpp/82": ("def volume_sphere(r):\n    return 4 / 3 * 3.14159 * r ** 3\n", 0, 0),
            "Mbpp/581": ("import math\ndef surface_Area(b, h):\n    return round(b * b + 2 * b * math.sqrt(b * b / 4"
                         " + h * h))\n", 1, 1)}
    lines = [{"task": "mbpp_plus", "doc_id": r["task_id"], "sample_idx": k,
              "output": f"```python\n{r['canonical_solution'] if k == 0 else mbpp[r['task_id']][0]}\n```"}
             for r in fixture_rows("mbpp_plus") for k in (0, 1)]
    entry, rows = _replay(tmp_path, "mbpp_plus", lines, "--data", "fixture", "--samples", "2")
    got = {(s["doc_id"], s["sample_idx"]): (s["scores"]["base_passed"], s["scores"]["plus_passed"]) for s in rows}
    assert got == {**{(d, 0): (1.0, 1.0) for d in mbpp}, **{(d, 1): (v[1], v[2]) for d, v in mbpp.items()}}


def test_float_outputs_pass_within_atol_and_fail_outside() -> None:
    bodies = ["    return x / 3 + 5e-4\n", "    return x / 3 + 5e-3\n", "    return round(x / 3, 1)\n"]
    assert _bits(_score(THIRD, bodies)) == [(1, 1), (0, 0), (0, 0)]
    exact = {**THIRD, "atol": 0}  # float outputs: EvalPlus enforces 1e-6
    assert _bits(_score(exact, ["    return x / 3 + 1e-7\n", "    return x / 3 + 1e-5\n"])) == [(1, 1), (0, 0)]


def test_time_limits_come_from_the_reference_time() -> None:
    """Each input may take max(min_time_limit, 4 x the canonical solution's time): 2x passes, 10x and a loop fail the
    plus input that needs the time, after base passed."""
    bodies = ["    time.sleep(2 * s)\n    return s\n", "    time.sleep(10 * s)\n    return s\n",
              "    while s:\n        pass\n    return s\n"]
    scored = _score(SLEEPER, bodies, min_time_limit=0.3)
    assert _bits(scored) == [(1, 1), (1, 0), (1, 0)]
    assert [s.extra["status"] for s in scored] == ["passed", "timeout", "timeout"]
    assert "plus timeout at input 2 of 2: the input's" in scored[2].extra["stderr"]


def test_a_candidate_cannot_forge_its_verdict() -> None:
    """Wrong answers stay wrong whatever they print, write to inherited descriptors, return or patch."""
    doc = fixture_rows("humaneval_plus")[3]  # max_element
    forged = [
        "import os\ndef max_element(l):\n    for fd in range(1, 64):\n        for v in ('pass', 'fail'):\n"
        "            try:\n                os.write(fd, f'x base {v}\\nx plus {v}\\n'.encode())\n"
        "            except OSError:\n                pass\n    return 0\n",
        "class A:\n    def __eq__(self, other):\n        return True\ndef max_element(l):\n    return A()\n",
        "class A(int):\n    def __eq__(self, other):\n        return True\ndef max_element(l):\n    return A(0)\n",
        "import builtins, sys\nbuiltins.isinstance = lambda *a: True\nbuiltins.abs = lambda x: 0\n"
        "vars(sys.modules['__main__'])['_check'] = lambda *a: (True, 0.0)\ndef max_element(l):\n    return 0\n",
        "import os\ndef max_element(l):\n    os._exit(0)\n",
    ]
    scored = _score(doc, [f"```python\n{f}```" for f in forged])
    assert _bits(scored) == [(0, 0)] * len(forged), [s.extra for s in scored]


def test_expected_outputs_are_cached_per_data_hash(monkeypatch: pytest.MonkeyPatch) -> None:
    from harness.core.paths import owb_home

    doc = {**THIRD, "task_id": "T/cached"}
    assert _bits(_score(doc, ["    return x / 3\n"])) == [(1, 1)]
    assert any(json.loads(p.read_text())["task_id"] == "T/cached" for p in (owb_home() / "evalplus").glob("*.json"))

    def no_reference_run(*args: Any) -> None:
        raise AssertionError("the expected outputs were computed again")

    monkeypatch.setattr(EvalPlusScorer, "_parse_reference", staticmethod(no_reference_run))
    assert _bits(_score(doc, ["    return x / 3\n"])) == [(1, 1)]
    changed = {**doc, "plus_input": [[3.0]]}  # other data, other hash
    with pytest.raises(AssertionError, match="computed again"):
        _score(changed, ["    return x / 3\n"])


def _rows(path: Path) -> list[dict[str, Any]]:
    with gzip.open(path, "rt") as f:
        return [json.loads(line) for line in f]


@pytest.mark.slow
def test_every_humaneval_plus_canonical_solution_passes(shared_data: Path, tmp_path: Path) -> None:
    rows = _rows(shared_data / "humanevalplus" / "HumanEvalPlus.jsonl.gz")
    lines = [{"task": "humaneval_plus", "doc_id": r["task_id"], "sample_idx": 0, "output": r["prompt"] +
              r["canonical_solution"]} for r in rows]
    entry, rows = _replay(tmp_path, "humaneval_plus", lines, "--data-dir", str(shared_data), "--batch-size", "200")
    assert entry["n"] == 164, entry
    assert [s["doc_id"] for s in rows if s["status"] != "passed"] == []
    assert entry["metrics"]["base_pass@1"]["value"] == entry["metrics"]["plus_pass@1"]["value"] == 100.0


@pytest.mark.slow
def test_every_mbpp_plus_canonical_solution_passes(shared_data: Path, tmp_path: Path) -> None:
    rows = _rows(shared_data / "mbppplus" / "MbppPlus.jsonl.gz")
    lines = [{"task": "mbpp_plus", "doc_id": r["task_id"], "sample_idx": 0,
              "output": f"```python\n{r['canonical_solution']}\n```"} for r in rows]
    entry, rows = _replay(tmp_path, "mbpp_plus", lines, "--data-dir", str(shared_data), "--batch-size", "400")
    assert entry["n"] == 378, entry
    assert [(s["doc_id"], s["stderr"]) for s in rows if s["status"] != "passed"] == []
    assert entry["metrics"]["base_pass@1"]["value"] == entry["metrics"]["plus_pass@1"]["value"] == 100.0


EDGE_CASES = {  # each passes the original HumanEval tests
    "HumanEval/26": "def remove_duplicates(numbers):\n    return [n for n in numbers if numbers.count(n) != 2]\n",
    "HumanEval/35": "def max_element(l):\n    m = 0\n    for e in l:\n        if e > m:\n            m = e\n    return m\n",
    "HumanEval/52": "def below_threshold(l, t):\n    return max(l) < t\n",
}


def test_solutions_wrong_on_edge_cases_pass_humaneval_and_base_but_fail_plus(shared_data: Path) -> None:
    original = {r["task_id"]: r for r in map(json.loads, (shared_data / "humaneval" / "HumanEval.jsonl").open())}
    sandbox = Sandbox()
    try:
        runs = sandbox.run_many([humaneval_program(f"```python\n{code}```", original[t])
                                 for t, code in EDGE_CASES.items()])
    finally:
        sandbox.close()
    assert [r.status for r in runs] == ["passed"] * len(EDGE_CASES)
    plus = {r["task_id"]: r for r in _rows(shared_data / "humanevalplus" / "HumanEvalPlus.jsonl.gz")}
    scorer = EvalPlusScorer(EvalPlusArgs(dataset="humaneval"))
    try:
        scored = scorer.score_batch([ToScore(f"```python\n{code}```", None, plus[t]) for t, code in EDGE_CASES.items()])
    finally:
        scorer.close()
    assert _bits(scored) == [(1, 0)] * len(EDGE_CASES), [s.extra["stderr"] for s in scored]
