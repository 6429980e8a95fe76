"""Which samples a sample-browser view shows: the filters (failed, truncated, extraction failed, thinking not
closed, code timeout/error, K samples that disagree), text search, sorting and the page, read from the URL."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from harness.records.run import TaskResult
from harness.records.sample import parse_sample
from harness.records.samples import StoredPrompt, TaskSamples
from harness.view.index import IndexEntry, TaskIndex, shorten

PAGE = 100  # rows per page: never more in the browser
FilterName = Literal["all", "failed", "truncated", "extraction_failed", "open_think", "code_error", "disagree"]
FILTERS: dict[FilterName, str] = {
    "all": "all", "failed": "failed", "truncated": "truncated", "extraction_failed": "extraction failed",
    "open_think": "thinking not closed", "code_error": "code timeout/error", "disagree": "K samples disagree"}
SortName = Literal["file", "doc", "tokens", "e2e"]
SORTS: dict[SortName, str] = {"file": "as written", "doc": "document", "tokens": "output tokens (most first)",
                              "e2e": "e2e time (slowest first)"}


class SampleQuery(BaseModel):
    """The sample browser's state, all in the URL: filter, search, sort, page, a failing threshold, the sample
    open in the detail pane."""

    model_config = ConfigDict(extra="ignore")

    filter: FilterName = "all"
    q: str = Field(default="", max_length=200)
    sort: SortName = "file"
    page: int = Field(default=1, ge=1)
    below: float | None = None  # a sample fails when its score is below this (default 1: anything short of full marks)
    doc: str | None = None
    k: int | None = None

    def link(self, **changes: object) -> dict[str, str]:
        """The query parameters of this view with some changed (None drops one), for a link."""
        data = {**self.model_dump(), **changes}
        defaults = SampleQuery().model_dump()
        return {key: str(value) for key, value in data.items() if value is not None and value != defaults.get(key)}


@dataclass(frozen=True)
class Grading:
    """How a sample is judged failed: the per-sample score behind the task's primary metric, below a threshold."""

    score: str | None
    threshold: float

    def failed(self, entry: IndexEntry) -> bool:
        """Whether the sample scored below the threshold (a sample without the score is not counted failed)."""
        value = entry.scores.get(self.score) if self.score else None
        return value is not None and value < self.threshold


def grading(result: TaskResult | None, index: TaskIndex, below: float | None) -> Grading:
    """The primary metric's per-sample score (else the first metric's with one, else the first score samples
    carry) and the threshold (default 1)."""
    metrics = result.metrics if result is not None else {}
    primary = metrics.get(result.primary_metric or "") if result is not None else None
    score = primary.score if primary is not None and primary.score else next(
        (m.score for m in metrics.values() if m.score), None)
    if score is None and index.entries:
        score = next(iter(index.entries[0].scores), None)
    return Grading(score, 1.0 if below is None else below)


def disagreeing(index: TaskIndex, judge: Grading) -> set[str]:
    """Documents whose K > 1 samples disagree: different extracted answers, or different scores."""
    answers: dict[str, set[str]] = {}
    scores: dict[str, set[float | None]] = {}
    counts: dict[str, int] = {}
    for e in index.entries:
        answers.setdefault(e.doc_id, set()).add(e.answer_key)
        scores.setdefault(e.doc_id, set()).add(e.scores.get(judge.score) if judge.score else None)
        counts[e.doc_id] = counts.get(e.doc_id, 0) + 1
    return {d for d, n in counts.items() if n > 1 and (len(answers[d]) > 1 or len(scores[d]) > 1)}


def predicate(name: FilterName, judge: Grading, disagree: set[str]) -> Callable[[IndexEntry], bool]:
    """The test a sample passes to be shown under a filter."""
    tests: dict[FilterName, Callable[[IndexEntry], bool]] = {
        "all": lambda e: True,
        "failed": judge.failed,
        "truncated": lambda e: e.truncated,
        "extraction_failed": lambda e: e.extraction_failed is True,
        "open_think": lambda e: e.open_think,
        "code_error": lambda e: e.status is not None and e.status != "passed",
        "disagree": lambda e: e.doc_id in disagree,
    }
    return tests[name]


def counts(index: TaskIndex, judge: Grading, disagree: set[str]) -> dict[FilterName, int | None]:
    """How many samples each filter shows; None for "extraction failed" when no sample says (runs written before
    scorers declared it)."""
    found: dict[FilterName, int | None] = {}
    for name in FILTERS:
        test = predicate(name, judge, disagree)
        found[name] = sum(1 for e in index.entries if test(e))
    if all(e.extraction_failed is None for e in index.entries):
        found["extraction_failed"] = None
    return found


def search(samples: TaskSamples, index: TaskIndex, text: str) -> set[int]:
    """Positions of the samples whose prompt, output (reasoning and answer), extracted answer or target holds the
    text (case-insensitive): one streamed pass, reading in full only the lines whose bytes hold it."""
    wanted = text.lower()
    needle = json.dumps(wanted, ensure_ascii=False)[1:-1].encode("utf-8")
    stored = (StoredPrompt.model_validate_json(line) for _, line in samples.prompts.lines())
    hashes = {p.prompt_hash for p in stored if wanted in p.prompt.lower()}
    found = set()
    for i, (location, line) in enumerate(samples.located()):
        if i >= len(index.entries) or index.entries[i].location != location:
            break
        if index.entries[i].prompt_hash in hashes:
            found.add(i)
        elif needle in line.lower():
            record = parse_sample(line, samples.prompt)
            texts = (record.prompt, record.raw_output, shorten(record.extracted, 10**9), shorten(record.target, 10**9))
            if any(wanted in t.lower() for t in texts):
                found.add(i)
    return found


def ordered(index: TaskIndex, positions: list[int], sort: SortName) -> list[int]:
    """The positions in the chosen order."""
    entries = index.entries
    if sort == "doc":
        return sorted(positions, key=lambda i: (entries[i].doc_id, entries[i].sample_idx))
    if sort == "tokens":
        return sorted(positions, key=lambda i: -entries[i].output_tokens)
    if sort == "e2e":
        return sorted(positions, key=lambda i: -(entries[i].e2e_s or 0.0))
    return positions
