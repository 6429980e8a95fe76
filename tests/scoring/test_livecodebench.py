"""LiveCodeBench: the Hub file's tests decoded as LiveCodeBench decodes them, a tampered private-tests pickle refused
without running, LiveCodeBench's prompt and code extraction, and per-sample parity of the verdicts with
LiveCodeBench's own evaluator (the `nvidia-livecodebench` package) on right, wrong, timed-out and crashing code."""

from __future__ import annotations

import base64
import importlib.util
import json
import pickle
import secrets
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from harness.config.cards import load_card
from harness.core.errors import DataError
from harness.pipeline.plan import resolve_task
from harness.scoring.livecodebench.decode import decode_private, problem_tests
from harness.scoring.livecodebench.driver import PRELUDE
from harness.scoring.livecodebench.scorer import LiveCodeBenchArgs, LiveCodeBenchScorer, extract_code, verdict
from harness.tasks.prompts import chat_messages
from tests.helpers import fixture_rows, run_main, write_replay

lcb = pytest.importorskip("livecodebench", reason="LiveCodeBench's evaluator (pip install nvidia-livecodebench)")

from livecodebench.benchmarks.code_generation import CodeGenerationProblem  # noqa: E402
from livecodebench.evaluation.compute_code_generation_metrics import evaluate_generations_by_problem  # noqa: E402
from livecodebench.evaluation.testing_util import import_string  # noqa: E402
from livecodebench.lm_styles import LMStyle  # noqa: E402
from livecodebench.utils.extraction_utils import extract_code as lcb_extract_code  # noqa: E402

ROWS = {row["question_id"]: row for row in fixture_rows("livecodebench")}


def _problem(question_id: str, content: str, starter: str, fn_name: str | None,
             tests: list[tuple[str, str]]) -> dict[str, Any]:
    """A row in the Hub's schema: the first test public, the rest private (pickled as the Hub stores them)."""
    kind = "functional" if fn_name else "stdin"
    cases = [{"input": i, "output": o, "testtype": kind} for i, o in tests]
    return {"question_title": question_id, "question_content": content, "platform": "leetcode" if fn_name else "atcoder",
            "question_id": question_id, "contest_id": "c", "contest_date": "2024-11-01T00:00:00",
            "starter_code": starter, "difficulty": "easy", "public_test_cases": json.dumps(cases[:1]),
            "private_test_cases": base64.b64encode(zlib.compress(pickle.dumps(json.dumps(cases[1:])))).decode(),
            "metadata": json.dumps({"func_name": fn_name} if fn_name else {})}


PAIRS = _problem("pairs", "Return [[i, i + 1] for i in range(n)].", "class Solution:\n    def pairs(self, n):\n",
                 "pairs", [("2", "[[0, 1], [1, 2]]"), ("1", "[[0, 1]]")])
SUM = "a, b = map(int, input().split())\n"
# (problem, code, what it probes): LiveCodeBench's rules for stdin and functional problems.
CASES: list[tuple[dict[str, Any], str, str]] = [
    (ROWS["abc900_a"], SUM + "print(a + b)", "right"),
    (ROWS["abc900_a"], "a, b = map(int, open(0).read().split())\nprint(a + b)", "runtime error: the prelude binds the real open before LiveCodeBench mocks it, so open(0) reads nothing"),
    (ROWS["abc900_a"], SUM + "print(a + b)\nexit()", "right: exit() ends the program quietly"),
    (ROWS["abc900_a"], SUM + "print(a + b, '  ')\nprint()", "right: trailing spaces and lines are stripped"),
    (ROWS["abc900_a"], SUM + "print(a - b)", "wrong answer"),
    (ROWS["abc900_a"], "import sys\na, b = map(int, sys.stdin.buffer.read().split())\nprint(a + b)",
     "runtime error: LiveCodeBench's stdin has no .buffer"),
    (ROWS["abc900_a"], SUM + "print(a + b)\nquit()", "runtime error: quit is removed"),
    (ROWS["abc900_a"], "n = int(input().split()[0])\ndef f():\n    global n\n    return n\nprint(f())",
     "runtime error: the program is wrapped in a function, so `global n` finds nothing"),
    (ROWS["abc900_a"], "print(", "syntax error"),
    (ROWS["abc900_a"], "while True:\n    pass", "timeout"),
    (ROWS["abc900_a"], "import ctypes\nctypes.string_at(0)", "crash: a segmentation fault"),
    (ROWS["abc905_b"], "def main():\n    input()\n    print(' '.join(input().split()[::-1]))\n"
                       "if __name__ == '__main__':\n    main()", "right: the __main__ block is lifted"),
    (ROWS["2090A"], "d, t = map(int, input().split())\nprint(d / t)", "right"),
    (ROWS["2090A"], "d, t = map(int, input().split())\nprint(f'{d / t:.3f}')", "right: 2.500 equals 2.5 as Decimals"),
    (ROWS["2090A"], "d, t = map(int, input().split())\nprint(round(d / t))", "wrong answer"),
    (ROWS["9001"], "class Solution:\n    def countPairs(self, nums, target):\n        return sum(nums[i] + nums[j] < "
                   "target for i in range(len(nums)) for j in range(i + 1, len(nums)))", "right"),
    (ROWS["9001"], "def countPairs(nums, target):\n    return sum(nums[i] + nums[j] < target for i in "
                   "range(len(nums)) for j in range(i + 1, len(nums)))", "right: a module-level function"),
    (ROWS["9001"], "class Solution:\n    def countPairs(self, nums, target):\n        return len(nums)", "wrong"),
    (ROWS["9001"], "class Solution:\n    def countPairs(self, nums, target):\n        raise ValueError", "error"),
    (ROWS["9001"], "class Solution:\n    def count_pairs(self, nums, target):\n        return 0", "no such method"),
    (ROWS["9001"], "class Solution:\n    def countPairs(self, nums, target):\n        while True:\n            pass",
     "timeout in a method"),
    (ROWS["9002"], "class Solution:\n    def runningMax(self, nums):\n        out = []\n        for x in nums:\n"
                   "            out.append(max(out[-1], x) if out else x)\n        return tuple(out)",
     "right: a returned tuple counts as a list"),
    (PAIRS, "class Solution:\n    def pairs(self, n):\n        return [[i, i + 1] for i in range(int(n))]", "right"),
    (PAIRS, "class Solution:\n    def pairs(self, n):\n        return [(i, i + 1) for i in range(int(n))]",
     "wrong: only the outer tuple becomes a list"),
]


def _livecodebench(row: dict[str, Any], code: str) -> list[Any]:
    """LiveCodeBench's own verdict for one generation: its per-test results ([-2] when its process died)."""
    sample = CodeGenerationProblem(**row).get_evaluation_sample()
    results, _ = evaluate_generations_by_problem(([code], sample, False, 6))
    return list(results[0])


def _owb(scorer: LiveCodeBenchScorer, items: list[tuple[dict[str, Any], str]]) -> list[list[Any] | None]:
    """owb's driver's per-test results for each generation, run in the sandbox (None: no verdict)."""
    nonces = [secrets.token_hex(8) for _ in items]
    plans = [scorer.program(row, code, nonce) for (row, code), nonce in zip(items, nonces, strict=True)]
    ran = scorer.sandbox.run_many([p for p, _ in plans], [w for _, w in plans])
    return [verdict(r, n) for r, n in zip(ran, nonces, strict=True)]


@pytest.mark.slow
def test_verdicts_match_livecodebench_per_sample() -> None:
    """Every generation passes or fails as under LiveCodeBench's evaluator, with the same per-test results
    (True, -2 wrong, -3 timeout, -4 error) wherever LiveCodeBench's process reported them; a crash fails both."""
    items = [(row, code) for row, code, _ in CASES]
    with ThreadPoolExecutor(2) as pool:
        theirs = list(pool.map(lambda item: _livecodebench(*item), items))
    scorer = LiveCodeBenchScorer(LiveCodeBenchArgs())
    try:
        ours = _owb(scorer, items)
        scored = scorer.score_batch([_to_score(row, code) for row, code in items])
    finally:
        scorer.close()
    for (_, code, why), lcb_results, owb_results, graded in zip(CASES, theirs, ours, scored, strict=True):
        lcb_passed = bool(lcb_results) and all(r is True or r == 1 for r in lcb_results)
        assert graded.scores["passed"] == float(lcb_passed), (why, code, lcb_results, owb_results)
        if "crash" in why:
            assert owb_results is None and not lcb_passed, (lcb_results, owb_results)
        else:
            assert owb_results == lcb_results, (why, lcb_results, owb_results)
    statuses = {why: g.extra["status"] for (_, _, why), g in zip(CASES, scored, strict=True)}
    assert statuses["timeout"] == statuses["timeout in a method"] == "timeout"
    assert sum(g.scores["passed"] for g in scored) == sum(why.startswith("right") for _, _, why in CASES) == 10


def _to_score(row: dict[str, Any], code: str) -> Any:
    from harness.scoring.base import ToScore

    return ToScore(answer=f"Reasoning first.\n```python\n{code}\n```\n", target=row["question_id"], doc=row)


def test_tests_decode_as_livecodebench_decodes_them() -> None:
    """Public and private tests (pickled or plain JSON) and the function name, exactly as LiveCodeBench reads them."""
    for row in [*ROWS.values(), PAIRS]:
        theirs = json.loads(CodeGenerationProblem(**row).get_evaluation_sample()["input_output"])
        ours = problem_tests(row)
        assert (ours.inputs, ours.outputs, ours.fn_name) == (theirs["inputs"], theirs["outputs"], theirs["fn_name"])
    assert PRELUDE == import_string, "LiveCodeBench's prelude, verbatim"


class _Payload:
    """A pickle that, when loaded by pickle.loads, opens (creates) the file it names."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self) -> tuple[Any, ...]:
        return (open, (str(self.path), "w"))


def _tampered(path: Path) -> str:
    return base64.b64encode(zlib.compress(pickle.dumps(_Payload(path)))).decode()


def test_a_malicious_private_tests_pickle_is_refused_without_running(tmp_path: Path) -> None:
    """The payload works under plain pickle (it creates its file); owb's decoder refuses it and nothing is created,
    and `owb run` on a data directory holding it stops with one error line."""
    proof = tmp_path / "proof"
    pickle.loads(zlib.decompress(base64.b64decode(_tampered(proof))))  # noqa: S301 - the proof that it would run
    assert proof.exists()
    marker = tmp_path / "pwned"
    with pytest.raises(DataError, match=r"refused to load io.open"):
        decode_private(_tampered(marker), "9001")
    assert not marker.exists()
    data = tmp_path / "data" / "livecodebench"
    data.mkdir(parents=True)
    rows = [dict(row, private_test_cases=_tampered(marker)) if row["question_id"] == "9001" else row
            for row in ROWS.values()]
    (data / "test.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    replay = write_replay(tmp_path / "replay.jsonl", [{"task": "livecodebench", "doc_id": q, "sample_idx": 0,
                                                       "output": "```python\nprint(1)\n```"} for q in ROWS])
    ended = run_main("run", "--model", "tiny-qwen2", "--backend", "replay", "--replay", str(replay), "--tasks",
                     "livecodebench", "--data-dir", str(tmp_path / "data"), "--output", str(tmp_path / "runs"))
    assert ended.returncode == 2 and "refused to load io.open" in ended.stderr, ended.stderr
    assert not marker.exists()


def test_code_is_extracted_as_livecodebench_extracts_it() -> None:
    outputs = ["Plan.\n```python\nprint(1)\n```\nDone.", "```python\nx = 1\n```\ntext\n```python\nprint(2)\n```",
               "no code at all", "```\nprint(3)\n```", "one fence ```python\nprint(4)", "```python\n\n```",
               "  ```python\nprint(5)\n  ```  trailing"]
    for output in outputs:
        assert extract_code(output) == lcb_extract_code(output, LMStyle.OpenAIChat), output


def _lcb_prompts() -> Any:
    """LiveCodeBench's prompt module, loaded from its file (the package's __init__ imports API clients)."""
    import livecodebench

    path = Path(livecodebench.__file__).parent / "prompts" / "code_generation.py"
    spec = importlib.util.spec_from_file_location("lcb_code_generation_prompts", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_prompt_is_livecodebenchs_with_and_without_starter_code() -> None:
    """The user turn is LiveCodeBench's system message and question template (its reasoning-model format), for
    stdin problems and for LeetCode problems with starter code."""
    prompts = _lcb_prompts()
    task = resolve_task("livecodebench@window=..")
    card = load_card("deepseek-r1-distill-qwen-7b")
    docs = task.documents("fixture", None, None).docs
    assert {bool(d.fields["starter_code"]) for d in docs} == {True, False}
    for doc in docs:
        expected = (prompts.PromptConstants.SYSTEM_MESSAGE_GENERIC + "\n\n"
                    + prompts.get_generic_question_template_answer(CodeGenerationProblem(**ROWS[doc.doc_id])))
        assert chat_messages(task.spec, card, "on", doc) == [{"role": "user", "content": expected}]
