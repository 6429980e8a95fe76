"""Summarization scoring with rouge-score: ROUGE-1/2/L/Lsum F1, Porter stemmer, max over references.

ROUGE-Lsum needs one sentence per line: both summaries are segmented with pysbd (rule-based, English)
and joined with newlines before scoring, since rouge-score's own splitter needs NLTK data downloads.
"""

from __future__ import annotations

import importlib.metadata
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

from pydantic import BaseModel

from harness.core.errors import ConfigError
from harness.scoring.base import Scored, ScoreInfo, ScorerBase, ToScore

ROUGE_TYPES = ("rouge1", "rouge2", "rougeL", "rougeLsum")


@lru_cache(maxsize=1)
def _segmenter() -> Any:
    import pysbd

    return pysbd.Segmenter(language="en", clean=False)


def sentence_lines(text: str) -> str:
    """The text with one sentence per line (pysbd segmentation of each existing line)."""
    segmenter = _segmenter()
    sentences = [s.strip() for line in text.splitlines() if line.strip() for s in segmenter.segment(line)]
    return "\n".join(s for s in sentences if s)


def make_rouge() -> Any:
    """rouge-score's scorer with the Porter stemmer; a missing package is an error, never a score of 0."""
    try:
        from rouge_score import rouge_scorer
    except ImportError:
        raise ConfigError("summarization needs the rouge-score package: pip install rouge-score==0.1.2") from None
    return rouge_scorer.RougeScorer(list(ROUGE_TYPES), use_stemmer=True, split_summaries=False)


def references(target: Any) -> list[str]:
    """A document's reference summaries as a list (one or several)."""
    refs = [str(t) for t in target] if isinstance(target, list) else [str(target)]
    return [r for r in refs if r.strip()] or [""]


class SummarizeScorer(ScorerBase):
    """ROUGE F1 per document (the best reference per ROUGE type), output length in words and emptiness."""

    scores = (*(ScoreInfo(name, binary=False) for name in ROUGE_TYPES), ScoreInfo("empty_rate", higher_is_better=False),
              ScoreInfo("output_words", higher_is_better=None, scale="raw", binary=False))

    def __init__(self, args: BaseModel | None = None) -> None:
        self.rouge = make_rouge()

    def score_batch(self, items: Sequence[ToScore]) -> list[Scored]:
        """ROUGE of each answer against its references."""
        return [self._score(item) for item in items]

    def _score(self, item: ToScore) -> Scored:
        answer = "" if item.unclosed else item.answer.strip()
        words = len(answer.split())
        refs = [sentence_lines(r) for r in references(item.target)]
        if not answer:
            scores = dict.fromkeys(ROUGE_TYPES, 0.0)
        else:
            best = self.rouge.score_multi(refs, sentence_lines(answer))
            scores = {name: float(best[name].fmeasure) for name in ROUGE_TYPES}
        extra = {"empty_rate": float(not answer), "output_words": float(words)}
        return Scored(extracted=answer, scores={**scores, **extra}, extraction_failed=not answer)

    def describe(self) -> dict[str, Any]:
        """rouge-score settings: stemmer, sentence splitting for Lsum, multi-reference rule."""
        return {
            "rouge_score": importlib.metadata.version("rouge-score"),
            "stemmer": "porter",
            "lsum_sentences": f"pysbd {importlib.metadata.version('pysbd')}, joined with newlines",
            "references": "max F1 over references, per ROUGE type",
        }
