"""Scorers by task kind, imported only when a task needs them."""

from __future__ import annotations

from harness.scorers.base import Scorer


def make_scorer(kind: str) -> Scorer:
    """The scorer for a task spec's `scorer` field."""
    if kind == "gsm8k":
        from harness.scorers.maths import GSM8KScorer

        return GSM8KScorer()
    if kind == "math500":
        from harness.scorers.maths import Math500Scorer

        return Math500Scorer()
    if kind == "code":
        from harness.scorers.code import CodeScorer

        return CodeScorer()
    if kind == "summarize":
        from harness.scorers.summarize import SummarizeScorer

        return SummarizeScorer()
    raise ValueError(f"no scorer '{kind}'")
