"""The load shape of `vllm bench serve`: gamma arrivals (shape = burstiness, scale = 1/(rate x burstiness), rescaled
to N/rate), and goodput against service-level objectives."""

from __future__ import annotations

import numpy as np
import pytest

from harness.engines.load import Latency, LoadShape, Slo, arrival_delays, good_requests


def _intervals(count: int, rate: float, burstiness: float, seed: int = 0) -> np.ndarray:
    delays = np.asarray(arrival_delays(count, rate, burstiness, np.random.default_rng(seed)))
    return np.diff(np.concatenate([[0.0], delays]))


@pytest.mark.parametrize("burstiness", [0.25, 1.0, 4.0])
def test_gamma_intervals_have_the_rate_and_the_burstiness_cv(burstiness: float) -> None:
    """Over 200,000 draws the mean interval is 1/rate and the coefficient of variation 1/sqrt(burstiness) (a gamma of
    shape k has CV 1/sqrt(k)): Poisson at 1, burstier below, more even above."""
    gaps = _intervals(200_000, rate=8.0, burstiness=burstiness)
    assert gaps.mean() == pytest.approx(1 / 8, rel=1e-9)  # rescaled: the last arrival is at exactly N/rate
    assert gaps.std() / gaps.mean() == pytest.approx(1 / np.sqrt(burstiness), rel=0.02)


def test_gamma_draws_are_vllms() -> None:
    """Before rescaling, the intervals are numpy's gamma(shape=B, scale=1/(R*B)) draws, in order."""
    rng, same = np.random.default_rng(7), np.random.default_rng(7)
    delays = arrival_delays(5, 2.0, 0.5, rng)
    draws = np.cumsum(same.gamma(shape=0.5, scale=1 / (2.0 * 0.5), size=5))
    assert np.allclose(delays, draws * (5 / 2.0) / draws[-1])
    assert delays[-1] == pytest.approx(2.5)


def test_unbounded_rate_and_infinite_burstiness() -> None:
    rng = np.random.default_rng(0)
    assert arrival_delays(4, None, 1.0, rng) == [0.0] * 4  # vLLM's --request-rate inf: everything at t = 0
    assert arrival_delays(4, float("inf"), 1.0, rng) == [0.0] * 4
    assert arrival_delays(4, 2.0, float("inf"), rng) == pytest.approx([0.5, 1.0, 1.5, 2.0])  # evenly spaced
    assert arrival_delays(0, 2.0, 1.0, rng) == []


def test_load_shape_checks_and_describes() -> None:
    assert LoadShape(max_concurrency=4).describe() == "rate inf, 4 in flight"
    assert LoadShape(request_rate=2.5, burstiness=0.5).describe() == "rate 2.5/s, burstiness 0.5, no limit"
    with pytest.raises(ValueError):
        LoadShape(max_concurrency=0)


def test_objectives_parse_like_vllms_flag() -> None:
    assert Slo.parse("ttft:500 tpot:50") == Slo(ttft=500, tpot=50)
    assert Slo.parse(["e2el:2000"]) == Slo(e2el=2000) and Slo.parse(None) is None
    assert Slo.parse("ttft:500,e2el:1e3").as_text() == "ttft:500 e2el:1000"
    for bad in ("ttf:5", "ttft=5", "ttft:fast"):
        with pytest.raises(ValueError):
            Slo.parse(bad)


def test_goodput_counts_requests_meeting_every_objective() -> None:
    """TPOT = (e2el - ttft) / (n - 1), counted as 0 for a single token (as vLLM); a request must meet every SLO."""
    slo = Slo(ttft=100, tpot=10)
    done = [Latency(0.050, 0.131, 10),   # ttft 50 ms, tpot 9 ms: met
            Latency(0.150, 0.200, 10),   # ttft 150 ms: missed
            Latency(0.050, 0.500, 10),   # tpot 50 ms: missed
            Latency(0.090, 5.000, 1)]    # one token: tpot 0, met
    assert [round(x.tpot_s, 4) for x in done] == [0.009, 0.0056, 0.05, 0.0]
    assert good_requests(slo, done) == 2
    assert good_requests(Slo(e2el=300), done) == 2
