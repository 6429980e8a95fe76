"""GSM8K strict/flexible extraction (lm-evaluation-harness semantics), math-verify equivalence, boxed extraction."""

from __future__ import annotations

import pytest

from harness.scoring.base import ToScore
from harness.scoring.maths import (
    GSM8KScorer,
    MathScorer,
    MathVerifier,
    flexible_extract,
    gsm8k_target,
    last_boxed,
    normalize_number,
    strict_extract,
)

GOLD = "She has 3 + 4 = 7 apples, so 7 * 8 = 56.\n#### 56"


@pytest.fixture(scope="module")
def gsm8k() -> GSM8KScorer:
    scorer = GSM8KScorer()
    yield scorer
    scorer.close()


@pytest.mark.parametrize(
    ("output", "strict", "flexible"),
    [
        ("7 * 8 = 56\n#### 56", 1, 1),  # both agree
        ("The answer is 56.", 0, 1),  # no '#### ': strict fails, flexible takes the last number
        ("#### 56\nCheck: 56 - 1 = 55", 1, 0),  # strict takes the first '#### ', flexible the last number
        ("#### $1,056.", 0, 0),  # wrong number in both
        ("So it costs $56.", 0, 1),  # '$56.' -> '56' after lm-eval's ignore regexes
        ("#### 56.00", 0, 0),  # exact string match, not numeric: '56.00' != '56'
        ("I get 5 and 6", 0, 0),  # flexible: last match is '6'
        ("", 0, 0),
    ],
)
def test_strict_and_flexible_differ_where_lm_eval_does(gsm8k: GSM8KScorer, output: str, strict: int,
                                                        flexible: int) -> None:
    scores = gsm8k.score_batch([ToScore(output, GOLD, {})])[0].scores
    assert (scores["strict_match"], scores["flexible_match"]) == (strict, flexible)


def test_extractors_follow_lm_eval_regexes() -> None:
    assert strict_extract("#### -1,234.5 dollars") == "-1,234.5"
    assert flexible_extract("costs $1,200 and then 3") == "3"
    assert flexible_extract("total: $1,200.") == "$1,200."
    assert normalize_number("$1,200.") == "1200"
    assert gsm8k_target("blah\n#### 1,200") == "1200"
    assert flexible_extract("no digits") is None


def test_math_verify_credits_equivalent_gsm8k_answers(gsm8k: GSM8KScorer) -> None:
    scores = gsm8k.score_batch([ToScore("The total is $\\boxed{56}$.", GOLD, {})])[0].scores
    assert scores["math_verify"] == 1.0 and scores["strict_match"] == 0.0


def test_unclosed_reasoning_scores_zero(gsm8k: GSM8KScorer) -> None:
    scores = gsm8k.score_batch([ToScore("#### 56", GOLD, {}, unclosed=True)])[0].scores
    assert set(scores.values()) == {0.0}


@pytest.mark.parametrize(
    ("text", "boxed"),
    [
        ("so \\boxed{5}.", "5"),
        ("first \\boxed{1} then \\boxed{2}", "2"),
        ("\\boxed{\\frac{\\sqrt{3}}{2}}", "\\frac{\\sqrt{3}}{2}"),
        ("\\boxed{\\left\\{ 1, 2 \\right\\}}", "\\left\\{ 1, 2 \\right\\}"),
        ("$\\boxed 7$", "7"),
        ("\\fbox{x+1}", "x+1"),
        ("\\boxed{unbalanced", None),
        ("no box at all: 5", None),
    ],
)
def test_last_boxed_matches_nested_braces(text: str, boxed: str | None) -> None:
    assert last_boxed(text) == boxed


@pytest.fixture(scope="module")
def math500() -> MathScorer:
    scorer = MathScorer()
    yield scorer
    scorer.close()


@pytest.mark.parametrize(
    ("target", "answer", "ok"),
    [
        ("\\frac{1}{2}", "The answer is \\boxed{\\dfrac{1}{2}}.", 1),
        ("\\frac{1}{2}", "\\boxed{0.5}", 1),
        ("\\frac{1}{2}", "\\boxed{1/2}", 1),
        ("\\frac{19}{12}", "\\boxed{\\frac{38}{24}}", 1),
        ("10", "\\boxed{10\\text{ cm}}", 1),
        ("90^\\circ", "\\boxed{90}", 1),
        ("6\\sqrt{2}", "\\boxed{\\sqrt{72}}", 1),
        ("\\frac{\\sqrt{3}}{2}", "\\boxed{\\frac{\\sqrt{3}}{2}}", 1),
        ("(-1, 5)", "\\boxed{(-1,5)}", 1),
        ("\\frac{1}{2}", "\\boxed{\\frac{1}{3}}", 0),
        ("13", "the answer is 13", 0),  # no \boxed{}: nothing to verify
        ("13", "\\boxed{13} wait, \\boxed{12}", 0),  # the last box counts
    ],
)
def test_math_verify_equivalences(math500: MathScorer, target: str, answer: str, ok: int) -> None:
    assert math500.score_batch([ToScore(answer, target, {})])[0].scores["math_verify"] == ok


def test_a_pathological_answer_is_cut_off_by_the_timeout() -> None:
    verifier = MathVerifier(timeout_s=2.0)
    try:
        assert verifier.equivalent("\\boxed{3}", "\\boxed{9^{9^{9^{9}}}}") is False
        assert verifier.timeouts == 1
        assert verifier.equivalent("\\boxed{3}", "\\boxed{3}") is True, "a fresh child serves calls after a timeout"
    finally:
        verifier.close()
