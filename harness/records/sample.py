"""One sample: its key (task/doc_id/sample_idx, and task@thinkN names for thinking budgets), its timings with owb's
one TPOT rule, and the line of samples/<task>.jsonl it is stored as."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from harness.records.base import Record, TimingScope


def sample_key(task: str, doc_id: str, sample_idx: int) -> str:
    """The key of one sample, shared by requests, samples files and replay lines: task/doc_id/sample_idx."""
    return f"{task}/{doc_id}/{sample_idx}"


class Timings(Record):
    """How long one request took, in seconds; None where the engine cannot measure it.

    `scope` says whether TTFT is the request's own ("request") or its batch's prefill ("batch").
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    ttft_s: float | None = None
    tpot_s: float | None = None
    e2e_s: float | None = None
    queue_s: float | None = None
    itl_s: tuple[float, ...] = ()
    scope: TimingScope = "none"

    @classmethod
    def measured(cls, scope: TimingScope, output_tokens: int, ttft_s: float | None, e2e_s: float | None,
                 queue_s: float | None = None, itl_s: tuple[float, ...] = ()) -> Timings:
        """Timings from TTFT and end-to-end time; the one TPOT rule of owb (and of vLLM and SGLang):
        (e2e - ttft) / (output_tokens - 1), the first token excluded, None for a single token."""
        tpot = ((e2e_s - ttft_s) / (output_tokens - 1)
                if output_tokens > 1 and ttft_s is not None and e2e_s is not None else None)
        return cls(ttft_s=ttft_s, tpot_s=tpot, e2e_s=e2e_s, queue_s=queue_s, itl_s=itl_s, scope=scope)


Span = tuple[int, int]


class SampleStats(BaseModel):
    """What summaries, checks and indexes read of a sample: who it is, its grade, tokens and timings, no texts.
    Parsed from a samples line of any layout, the texts skipped."""

    model_config = ConfigDict(extra="ignore")

    key: str
    doc_id: str
    sample_idx: int
    extracted: Any
    scores: dict[str, float]
    finish_reason: Literal["stop", "length"]
    truncated: bool
    prompt_tokens: int
    output_tokens: int
    reasoning_tokens: int
    answer_tokens: int
    ttft_s: float | None
    tpot_s: float | None
    e2e_s: float | None
    queue_s: float | None
    timing_scope: TimingScope
    # Code tasks only (written only when set): how the program ended and its run time.
    status: str | None = None
    exec_s: float | None = None
    extraction_failed: bool | None = None  # the scorer found no answer to grade (None: not said; older runs)


class SampleRecord(SampleStats):
    """A sample in full: its prompt, its raw output once with the reasoning and answer as spans of it (or as text
    where one is not a slice of it), its target and grade. Stored as a line of samples/<task>.jsonl with the prompt
    replaced by its hash (the prompt itself is stored once per task, see `records.store`)."""

    model_config = ConfigDict(extra="forbid")

    prompt: str
    raw_output: str
    reasoning_span: Span | None = (0, 0)
    reasoning_text: str | None = None  # set only where the reasoning is not a slice of the raw output
    answer_span: Span | None = None
    answer_text: str | None = None  # set only where the answer is not a slice of the raw output
    target: Any
    stderr: str | None = None  # code tasks: the tail of the program's stderr

    @property
    def reasoning(self) -> str:
        """The reasoning: its span of the raw output, or its own text."""
        return _cut(self.raw_output, self.reasoning_span, self.reasoning_text)

    @property
    def answer(self) -> str:
        """The answer: its span of the raw output, or its own text."""
        return _cut(self.raw_output, self.answer_span, self.answer_text)

    @classmethod
    def with_texts(cls, reasoning: str, answer: str, **fields: Any) -> SampleRecord:
        """A sample whose reasoning and answer are given as texts: stored as spans where they are slices of the
        raw output (the answer searched from the end, the reasoning from the start), else as texts."""
        raw = str(fields["raw_output"])
        r_at, a_at = raw.find(reasoning), raw.rfind(answer)
        spans = {"reasoning_span": (r_at, r_at + len(reasoning)) if r_at >= 0 else None,
                 "reasoning_text": None if r_at >= 0 else reasoning,
                 "answer_span": (a_at, a_at + len(answer)) if a_at >= 0 else None,
                 "answer_text": None if a_at >= 0 else answer}
        return cls.model_validate({**fields, **spans})

    def to_line(self, prompt_hash: str) -> str:
        """The samples-file line (layout 3): the prompt as its hash; unset optional fields left out."""
        data = self.model_dump(mode="json", exclude={"prompt"})
        data = {"key": data.pop("key"), "doc_id": data.pop("doc_id"), "sample_idx": data.pop("sample_idx"),
                "prompt_hash": prompt_hash, **data}
        for name in OPTIONAL_FIELDS:
            if data.get(name) is None:
                data.pop(name, None)
        return json.dumps(data, ensure_ascii=False)


OPTIONAL_FIELDS = ("reasoning_text", "answer_text", "status", "stderr", "exec_s", "extraction_failed")


def _cut(raw: str, span: Span | None, text: str | None) -> str:
    return raw[span[0] : span[1]] if span is not None else text or ""


class SampleLineV2(Record):
    """A samples-file line as schemas 1 and 2 wrote it: the prompt, the reasoning and the answer each in full."""

    key: str
    doc_id: str
    sample_idx: int
    prompt: str
    raw_output: str
    reasoning: str
    answer: str
    extracted: Any
    target: Any
    scores: dict[str, float]
    finish_reason: Literal["stop", "length"]
    truncated: bool
    prompt_tokens: int
    output_tokens: int
    reasoning_tokens: int
    answer_tokens: int
    ttft_s: float | None
    tpot_s: float | None
    e2e_s: float | None
    queue_s: float | None
    timing_scope: TimingScope
    status: str | None = None
    stderr: str | None = None
    exec_s: float | None = None

    def record(self) -> SampleRecord:
        """The sample in the current form."""
        fields = self.model_dump(exclude={"reasoning", "answer"})
        return SampleRecord.with_texts(self.reasoning, self.answer, **fields)


class SampleLine(Record):
    """A samples-file line as layout 3 writes it: the prompt as its hash, the texts once."""

    key: str
    doc_id: str
    sample_idx: int
    prompt_hash: str
    raw_output: str
    reasoning_span: Span | None = (0, 0)
    reasoning_text: str | None = None
    answer_span: Span | None = None
    answer_text: str | None = None
    extracted: Any
    target: Any
    scores: dict[str, float]
    finish_reason: Literal["stop", "length"]
    truncated: bool
    prompt_tokens: int
    output_tokens: int
    reasoning_tokens: int
    answer_tokens: int
    ttft_s: float | None
    tpot_s: float | None
    e2e_s: float | None
    queue_s: float | None
    timing_scope: TimingScope
    status: str | None = None
    stderr: str | None = None
    exec_s: float | None = None
    extraction_failed: bool | None = None

    def record(self, prompt: str) -> SampleRecord:
        """The sample with its prompt."""
        return SampleRecord(prompt=prompt, **self.model_dump(exclude={"prompt_hash"}))


PROMPT_HASH_KEY = b'"prompt_hash":'


def parse_sample(line: bytes, prompt_of: Callable[[str], str]) -> SampleRecord:
    """A sample from a line of either layout (layout 3 names its prompt by hash: `prompt_of` gives the text)."""
    if PROMPT_HASH_KEY in line:
        stored = SampleLine.model_validate_json(line)
        return stored.record(prompt_of(stored.prompt_hash))
    return SampleLineV2.model_validate_json(line).record()


def prompt_hash(prompt: str) -> str:
    """The hash a samples line names its prompt by (sha256, 16 hex digits)."""
    return hashlib.sha256(prompt.encode("utf-8")).hexdigest()[:16]


SUFFIX = "@think"


def budget_name(task: str, budget: int) -> str:
    """The name a task runs under with a budget: aime24@think512 (each budget is its own task in run.json)."""
    return f"{task}{SUFFIX}{budget}"


def base_task(name: str, budget: int) -> str:
    """The task a budgeted task name runs: aime24 for aime24@think512 at budget 512."""
    return name.removesuffix(budget_name("", budget))


def split_name(name: str) -> tuple[str, int | None]:
    """A task name and its budget: ("aime24", 512) for aime24@think512, (name, None) without one."""
    base, sep, budget = name.rpartition(SUFFIX)
    return (base, int(budget)) if sep and budget.isdigit() else (name, None)
