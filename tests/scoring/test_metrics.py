"""The task YAML chooses how a document's samples reduce (mean, pass@k, majority by equivalence)."""

from __future__ import annotations

import pytest

from harness.config.taskspec import MetricSpec, load_task_spec
from harness.records.sample import SampleStats
from harness.scoring.maths import MathScorer
from harness.scoring.metrics import document_values, majority
from harness.scoring.registry import make_scorer


def test_the_task_yaml_chooses_how_samples_reduce() -> None:
    """mean (pass@1), unbiased pass@k and majority come from the YAML's metric specs, for any scorer."""
    def sample(i: int, score: float, boxed: str) -> SampleStats:
        return SampleStats(key=f"t/0/{i}", doc_id="0", sample_idx=i, extracted=boxed, scores={"math_verify": score},
                           finish_reason="stop", truncated=False, prompt_tokens=0, output_tokens=0,
                           reasoning_tokens=0, answer_tokens=0, ttft_s=None, tpot_s=None, e2e_s=None,
                           queue_s=None, timing_scope="none")

    scorer = make_scorer(load_task_spec("math500").scorer)
    try:
        # \frac12, \dfrac{1}{2} and 0.5 are one answer by math-verify: it outvotes two 3s.
        docs = [sample(0, 0, "3"), sample(1, 1, "\\frac12"), sample(2, 0, "3"), sample(3, 1, "\\dfrac{1}{2}"),
                sample(4, 1, "0.5")]
        specs = [MetricSpec.model_validate(x) for x in (
            "math_verify", {"name": "maj@k", "score": "math_verify", "reduce": "majority"},
            {"name": "pass@k", "score": "math_verify", "reduce": "pass_at_k", "k": [1, 2, 10]})]
        values = document_values(specs, docs, 5, scorer)
        assert values == {"math_verify": 0.6, "maj@5": 1.0, "pass@1": pytest.approx(0.6),
                          "pass@2": pytest.approx(1 - (2 / 5) * (1 / 4))}
        assert isinstance(scorer, MathScorer)
        assert majority(["3", "3", "\\frac12", "0.5"], scorer) == 0, "a tie goes to the answer seen first"
    finally:
        scorer.close()
