"""`owb diff` on replayed greedy runs whose differences are known: the settings table, documents flipped both ways,
the paired test (as `owb check`), byte-identical share and first-divergence positions, and the line on noise."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from harness.config.cards import load_card
from harness.report.check import compare_runs
from harness.report.drift import card_tokenizer, common_prefix, diff_runs, first_divergence
from harness.report.drift_text import drift_markdown
from tests.helpers import fixture_rows, run_cli, write_replay

GOLD = [r["answer"].split("####")[-1].strip() for r in fixture_rows("gsm8k")]


def _answer(i: int, right: bool, tail: str = "") -> str:
    return f"First we add the two amounts, then we subtract.{tail} The total is {GOLD[i] if right else -1}.\n" \
           f"#### {GOLD[i] if right else -1}"


def _run(tmp: Path, name: str, outputs: list[str], *extra: str) -> Path:
    lines = [{"task": "gsm8k", "doc_id": str(i), "output": o} for i, o in enumerate(outputs)]
    return run_cli("--model", "tiny-qwen2", "--backend", "replay", "--replay",
                   str(write_replay(tmp / f"{name}.jsonl", lines)), "--tasks", "gsm8k", "--data", "fixture",
                   "--greedy", "--output", str(tmp / name), *extra)


A_RIGHT = [i not in (10, 11) for i in range(12)]


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A: right on 10 of 12. B (bfloat16): the same outputs except doc 1 (one word changed: still right), docs 3 and
    5 (now wrong), doc 10 (now right)."""
    tmp = tmp_path_factory.mktemp("drift")
    a = [_answer(i, A_RIGHT[i]) for i in range(12)]
    b = list(a)
    b[1] = _answer(1, True, " Carefully.")
    b[3], b[5], b[10] = _answer(3, False), _answer(5, False), _answer(10, True)
    return _run(tmp, "a", a), _run(tmp, "b", b, "--dtype", "bfloat16")


def test_diff_reports_settings_flips_test_and_identity(pair: tuple[Path, Path]) -> None:
    a, b = pair
    report = diff_runs(a, b)
    rows = {r.setting: r for r in report.settings}
    assert rows["dtype"].a == "float32" and rows["dtype"].b == "bfloat16" and rows["dtype"].differs
    assert not rows["engine"].differs and not rows["model"].differs
    flips = {f.score: f for f in report.flips}["flexible_match"]
    assert (flips.right_in_a_only, flips.right_in_b_only) == (2, 1)
    assert flips.examples_a_only == ["3", "5"] and flips.examples_b_only == ["10"]
    checks, *_ = compare_runs(a, b, allow_config_change=True)
    assert [(s.metric, s.p_value, s.change) for s in report.scores] == [(c.metric, c.p_value, -c.drop) for c in checks]
    assert report.within_noise and report.summary.startswith("within noise")
    same = report.identity[0]
    assert (same.pairs, same.identical, same.share) == (12, 8, pytest.approx(8 / 12))
    assert same.unit == "tokens" and len(same.first_divergence) == 4


def test_divergence_positions_match_the_samples_tokenized(pair: tuple[Path, Path]) -> None:
    """Each differing pair's position is the first differing token of the two outputs tokenized whole by the card's
    tokenizer; median, p10 and p90 are theirs."""
    a, b = pair
    tokenizer = card_tokenizer(load_card("tiny-qwen2"))
    assert tokenizer is not None
    a_out = [_answer(i, A_RIGHT[i]) for i in range(12)]
    b_out = {1: _answer(1, True, " Carefully."), 3: _answer(3, False), 5: _answer(5, False), 10: _answer(10, True)}
    expected = []
    for i in (1, 3, 5, 10):  # run B's file order
        x, y = tokenizer.encode(a_out[i], add_special_tokens=False), tokenizer.encode(b_out[i], add_special_tokens=False)
        expected.append(next(j for j, (p, q) in enumerate(zip(x, y, strict=False)) if p != q))
    same = diff_runs(a, b).identity[0]
    assert same.first_divergence == expected
    assert (same.p10, same.median, same.p90) == tuple(pytest.approx(v) for v in np.percentile(expected, [10, 50, 90]))


def test_a_significant_change_is_beyond_noise(tmp_path: Path) -> None:
    a = _run(tmp_path, "a", [_answer(i, True) for i in range(12)])
    b = _run(tmp_path, "b", [_answer(i, False) for i in range(12)])
    report = diff_runs(a, b)
    assert not report.within_noise and report.summary.startswith("beyond noise")
    text = drift_markdown(report)
    assert "**Beyond noise:" in text and "| gsm8k | 12 | 0 | 0.0 | tokens |" in text
    assert "| gsm8k | flexible_match | 12 | 0 |" in text


def test_first_divergence_without_a_tokenizer_is_in_characters() -> None:
    assert common_prefix("abcdef", "abcxef") == 3 and common_prefix("abc", "abcdef") == 3
    assert common_prefix("", "x") == 0 and common_prefix("same", "same") == 4
    assert first_divergence("The total is 5.", "The total is 6.", None) == 13
