"""Grading raw outputs: the reasoning split, the scorer's grades, and the sample records they become (shared by
`owb run` and `owb rescore`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from harness.config.cards import ModelCard
from harness.engines.base import Backend, Generation
from harness.records.sample import SampleRecord
from harness.scoring.base import Scorer, ToScore
from harness.scoring.reasoning import split_output
from harness.tasks.data import Document


@dataclass(frozen=True)
class _Graded:
    """What splitting and scoring decide about one raw output."""

    reasoning: str
    answer: str
    extracted: Any
    target: Any
    scores: dict[str, float]
    unclosed: bool
    extra: dict[str, Any]

DocIndex = dict[str, tuple[Document, int, str]]
"""sample key -> (document, sample index, rendered prompt)"""


def _grade(texts: Sequence[tuple[str, str, str]], docs: DocIndex, card: ModelCard, scorer: Scorer) -> list[_Graded]:
    """Split and score (key, prompt, raw output) triples."""
    splits = [split_output(text, card, prompt) for _, prompt, text in texts]
    items = [ToScore(sp.answer, docs[key][0].target, docs[key][0].fields, sp.unclosed)
             for (key, _, _), sp in zip(texts, splits, strict=True)]
    return [
        _Graded(sp.reasoning, sp.answer, scored.extracted, docs[key][0].target, scored.scores, sp.unclosed,
                scored.extra)
        for (key, _, _), sp, scored in zip(texts, splits, scorer.score_batch(items), strict=True)
    ]


def _to_records(batch: list[Generation], docs: DocIndex, card: ModelCard, scorer: Scorer,
                backend: Backend) -> list[SampleRecord]:
    records = []
    graded_batch = _grade([(g.key, docs[g.key][2], g.text) for g in batch], docs, card, scorer)
    for gen, graded in zip(batch, graded_batch, strict=True):
        doc, k, prompt = docs[gen.key]
        reasoning_tokens = (gen.reasoning_tokens if gen.reasoning_tokens is not None
                            else backend.count_tokens(graded.reasoning) if graded.reasoning else 0)
        t = gen.timings
        records.append(SampleRecord(
            key=gen.key, doc_id=doc.doc_id, sample_idx=k, prompt=prompt, raw_output=gen.text,
            reasoning=graded.reasoning, answer=graded.answer, extracted=graded.extracted, target=graded.target,
            scores=graded.scores, finish_reason=gen.finish_reason,
            truncated=graded.unclosed or gen.finish_reason == "length",
            prompt_tokens=gen.prompt_tokens, output_tokens=gen.output_tokens, reasoning_tokens=reasoning_tokens,
            answer_tokens=max(gen.output_tokens - reasoning_tokens, 0) if gen.output_tokens else 0,
            ttft_s=t.ttft_s, tpot_s=t.tpot_s, e2e_s=t.e2e_s, queue_s=t.queue_s, timing_scope=t.scope,
            **graded.extra,
        ))
    return records
