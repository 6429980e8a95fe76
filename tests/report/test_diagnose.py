"""`owb diagnose`: a replayed run whose causes are known (outputs cut off at the budget, missing boxes, a think block
never closed, none opened or an empty one, a loop, empty outputs, greedy decoding and a short budget against the
card and the R1 claim, ten problems) and each detector's finding; an older run's unknown count; the loop detector."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.records.store import RunDir
from harness.report.detectors import loop_period
from harness.report.diagnose import Finding, RunDiagnosis, diagnose_run
from tests.helpers import REPO, fixture_rows, run_cli, write_replay

RIGHT = {"fixture/prealgebra/5.json", "fixture/precalculus/6.json", "fixture/intermediate_algebra/7.json",
         "fixture/geometry/8.json", "fixture/algebra/9.json"}


def _output(i: int, answer: str) -> dict:
    """Document i's output (both samples alike) and how it ended."""
    cut = {"output": "<think>\nLet me think about the cases", "finish_reason": "length", "output_tokens": 512}
    outputs = {
        0: cut, 1: cut,
        2: {"output": "<think>\nok\n</think>\nThe answer is two."},
        3: {"output": "<think>\nok\n</think>\nI keep adding: " + "the sum is 35, " * 30},
        4: {"output": ""},
        5: {"output": f"The answer is $\\boxed{{{answer}}}$."},  # no think block at all
        6: {"output": f"<think>\n\n</think>\n\\boxed{{{answer}}}"},  # an empty one (the R1 bypass)
    }
    return outputs.get(i, {"output": f"<think>\nok\n</think>\n\\boxed{{{answer}}}"})


@pytest.fixture(scope="module")
def known_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """R1-Distill-Qwen-1.5B (thinks always) replayed on the 10 MATH-500 fixture problems, 2 samples each, greedy,
    at a 512-token budget."""
    tmp = tmp_path_factory.mktemp("diagnose")
    lines = [{"task": "math500", "doc_id": r["unique_id"], "sample_idx": k, **_output(i, r["answer"])}
             for i, r in enumerate(fixture_rows("math500")) for k in range(2)]
    return run_cli("--model", "deepseek-r1-distill-qwen-1.5b", "--backend", "replay", "--replay",
                   str(write_replay(tmp / "known.jsonl", lines)), "--tasks", "math500", "--data", "fixture",
                   "--samples", "2", "--greedy", "--max-new-tokens", "512", "--output", str(tmp / "runs"))


@pytest.fixture(scope="module")
def findings(known_run: Path) -> dict[str, Finding]:
    diagnosis = diagnose_run(known_run)
    assert [t.task for t in diagnosis.tasks] == ["math500"] and diagnosis.tasks[0].samples == 20
    return {f.kind: f for f in diagnosis.tasks[0].findings}


def _docs(*indices: int) -> list[str]:
    rows = fixture_rows("math500")
    return [rows[i]["unique_id"] for i in indices]


# kind -> (samples flagged, their documents, points it would move)
EXPECTED: dict[str, tuple[int, list[int], float | None]] = {
    "truncation": (4, [0, 1], 100 * 4 / 20 * (10 / 16)),  # 20% of samples, the rest score 62.5%
    "no_answer": (10, [0, 1, 2], 100 * 10 / 20 * 1.0),
    "unclosed_thinking": (4, [0, 1], 100 * 4 / 20 * (10 / 16)),
    "unopened_thinking": (4, [5, 6], 100 * 4 / 20 * (6 / 16 - 1.0)),  # these scored 100%, the rest 37.5%
    "repetition": (2, [3], 100 * 2 / 20 * (10 / 18)),
    "empty_output": (2, [4], 100 * 2 / 20 * (10 / 18)),
}


@pytest.mark.parametrize("kind", list(EXPECTED))
def test_each_per_sample_detector_finds_its_cause(findings: dict[str, Finding], kind: str) -> None:
    count, docs, effect = EXPECTED[kind]
    found = findings.get(kind)
    assert found is not None, f"no {kind} finding"
    assert found.count == count and found.share == pytest.approx(count / 20)
    assert found.examples == _docs(*docs)
    assert found.effect == pytest.approx(effect)


def test_settings_differ_names_each_difference(findings: dict[str, Finding]) -> None:
    found = findings["settings_differ"]
    claim = "(MATH-500 claim, DeepSeek-R1 paper Table 5 / README)"
    for text in ("temperature 0 (run) vs 0.6 (card)", "top_p 1 (run) vs 0.95 (card)",
                 "max_new_tokens 512 (run) vs 32768 (card, thinking on)", f"samples per problem 2 (run) vs 4 {claim}",
                 f"temperature 0 (run) vs 0.6 {claim}", f"max tokens 512 (run) vs 32768 {claim}",
                 f"protocol none (run) vs 'r1' {claim}"):
        assert text in found.differences, (text, found.differences)
    assert found.count == len(found.differences) and all(d in found.detail for d in found.differences)


def test_too_few_samples_sizes_the_run(findings: dict[str, Finding]) -> None:
    found = findings["too_few_samples"]
    assert found.count == 10
    assert "over 10 documents at k=2, wider than the +-5 tolerance" in found.detail
    assert "k=2 samples per problem where the claims use k=4" in found.detail


def test_a_replayed_line_that_hit_its_budget_is_a_truncated_sample(known_run: Path,
                                                                     findings: dict[str, Finding]) -> None:
    """Replay lines carry finish_reason and output_tokens: `finish_reason: length` is a truncated sample, with its
    token count, and the diagnosis counts it."""
    cut = {s.key: s for s in RunDir(known_run).samples("math500").stats() if s.doc_id in _docs(0, 1)}
    assert len(cut) == 4
    assert all(s.finish_reason == "length" and s.truncated and s.output_tokens == 512 for s in cut.values())
    assert findings["truncation"].count == len(cut)
    assert "max_new_tokens 512" in findings["truncation"].detail
    assert "of these also no_answer 4, unclosed_thinking 4" in findings["truncation"].detail


def test_a_clean_run_has_no_per_sample_findings(tmp_path: Path) -> None:
    lines = [{"task": "math500", "doc_id": r["unique_id"], "output": f"<think>\nok\n</think>\n\\boxed{{{r['answer']}}}"}
             for r in fixture_rows("math500")]
    run = run_cli("--model", "deepseek-r1-distill-qwen-1.5b", "--backend", "replay", "--replay",
                  str(write_replay(tmp_path / "clean.jsonl", lines)), "--tasks", "math500", "--data", "fixture",
                  "--output", str(tmp_path / "runs"))
    kinds = {f.kind for f in diagnose_run(run).tasks[0].findings}
    assert kinds == {"settings_differ", "too_few_samples"}, kinds  # k=1 against the claim's 4; 10 problems


def test_an_older_run_says_the_no_answer_count_is_unknown() -> None:
    """Runs written before scorers recorded extraction failures: the count is unknown, not 0."""
    diagnosis: RunDiagnosis = diagnose_run(REPO / "tests" / "fixtures" / "v1" / "replayed")
    for task in diagnosis.tasks:
        found = {f.kind: f for f in task.findings}["no_answer"]
        assert found.count is None and found.share is None and found.detail.startswith("unknown")


def test_loop_detector() -> None:
    assert loop_period("the " * 40) == 1
    assert loop_period("Some working first. " + "the sum is 35, " * 10) == 5
    assert loop_period("Let me check. " + "Wait, that is wrong. " * 3) is None, "three repeats are not a loop"
    assert loop_period("1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22 23 24 25 26 27 28 29 30 31 32 33") \
        is None
    assert loop_period("a loop that ended. " * 10 + "Then a different ending with a boxed answer.") is None
    assert loop_period("") is None
