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
from harness.scoring.reasoning import Split, split_output
from harness.tasks.data import Document


@dataclass(frozen=True)
class Slot:
    """Where one sample belongs: its document, its index among the document's K samples, and its rendered prompt."""

    doc: Document
    sample_idx: int
    prompt: str


@dataclass(frozen=True)
class Graded:
    """What splitting and scoring decide about one raw output."""

    split: Split
    extracted: Any
    target: Any
    scores: dict[str, float]
    extra: dict[str, Any]
    extraction_failed: bool | None

    def fields(self) -> dict[str, Any]:
        """The sample record's fields this grade decides."""
        return {"reasoning_span": self.split.reasoning_span, "reasoning_text": None,
                "answer_span": self.split.answer_span, "answer_text": None, "extracted": self.extracted,
                "target": self.target, "scores": self.scores, "extraction_failed": self.extraction_failed, **self.extra}


def grade(outputs: Sequence[tuple[Slot, str]], card: ModelCard, scorer: Scorer) -> list[Graded]:
    """Split and score raw outputs, each with the slot it was generated for."""
    splits = [split_output(text, card, slot.prompt) for slot, text in outputs]
    items = [ToScore(split.answer, slot.doc.target, slot.doc.fields, split.unclosed)
             for (slot, _), split in zip(outputs, splits, strict=True)]
    return [Graded(split, scored.extracted, slot.doc.target, scored.scores, scored.extra, scored.extraction_failed)
            for (slot, _), split, scored in zip(outputs, splits, scorer.score_batch(items), strict=True)]


def to_records(batch: list[Generation], slots: dict[str, Slot], card: ModelCard, scorer: Scorer,
               backend: Backend) -> list[SampleRecord]:
    """The sample records of finished generations: graded, with token counts and timings."""
    records = []
    graded_batch = grade([(slots[g.key], g.text) for g in batch], card, scorer)
    for gen, graded in zip(batch, graded_batch, strict=True):
        slot = slots[gen.key]
        reasoning = graded.split.reasoning
        reasoning_tokens = (gen.reasoning_tokens if gen.reasoning_tokens is not None
                            else backend.count_tokens(reasoning) if reasoning else 0)
        t = gen.timings
        records.append(SampleRecord.model_validate({
            "key": gen.key, "doc_id": slot.doc.doc_id, "sample_idx": slot.sample_idx, "prompt": slot.prompt,
            "raw_output": gen.text, "finish_reason": gen.finish_reason,
            "truncated": graded.split.unclosed or gen.finish_reason == "length",
            "prompt_tokens": gen.prompt_tokens, "output_tokens": gen.output_tokens,
            "reasoning_tokens": reasoning_tokens,
            "answer_tokens": max(gen.output_tokens - reasoning_tokens, 0) if gen.output_tokens else 0,
            "ttft_s": t.ttft_s, "tpot_s": t.tpot_s, "e2e_s": t.e2e_s, "queue_s": t.queue_s, "timing_scope": t.scope,
            **graded.fields()}))
    return records
