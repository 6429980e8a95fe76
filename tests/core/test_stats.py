"""Statistics: Wilson and bootstrap CIs, the unbiased pass@k estimator, percentiles."""

from __future__ import annotations

import math

import pytest

from harness.core.stats import pass_at_k, summarize, wilson
from harness.records.base import Percentiles


def test_summarize_binary_uses_wilson_in_percent() -> None:
    result = summarize([1, 0, 1, 1])
    assert result["value"] == 75.0
    lo, hi = wilson(0.75, 4)
    assert result["ci95"] == [pytest.approx(lo * 100), pytest.approx(hi * 100)]
    assert result["stderr"] == pytest.approx(100 * 0.5 / 2)  # sample std (ddof=1) 0.5 over sqrt(4)


def test_summarize_all_zero_still_has_an_upper_bound() -> None:
    result = summarize([0.0] * 10)
    assert result["value"] == 0.0 and result["ci95"][0] == 0.0 and 25 < result["ci95"][1] < 30


def test_summarize_fractions_bootstrap_contains_the_mean() -> None:
    result = summarize([0.25, 0.5, 0.75, 1.0, 0.5])
    assert result["ci95"][0] < result["value"] == 60.0 < result["ci95"][1]
    assert summarize([0.25, 0.5, 0.75, 1.0, 0.5]) == result  # seeded: reruns agree


@pytest.mark.parametrize(("n", "c", "k", "expected"), [(10, 0, 1, 0.0), (10, 10, 5, 1.0), (10, 3, 1, 0.3),
                                                       (5, 2, 2, 1 - math.comb(3, 2) / math.comb(5, 2))])
def test_pass_at_k_is_the_unbiased_estimator(n: int, c: int, k: int, expected: float) -> None:
    assert pass_at_k(n, c, k) == pytest.approx(expected)


def test_percentiles_ignore_missing_and_none_when_empty() -> None:
    assert Percentiles.of([None, None]) is None
    stats = Percentiles.of([1.0, 2.0, 3.0, None])
    assert stats is not None and stats.mean == 2.0 and stats.p50 == 2.0
