"""One sample: its key (task/doc_id/sample_idx, and task@thinkN names for thinking budgets), its timings with owb's
one TPOT rule, and the line of samples/<task>.jsonl it is stored as."""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import ConfigDict

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


class SampleRecord(Record):
    """One line of samples/<task>.jsonl: a (document, sample) with its prompt, output, split, grade and timing."""

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
    # Code tasks only (written only when set): how the program ended, the tail of its stderr, its run time.
    status: str | None = None
    stderr: str | None = None
    exec_s: float | None = None

    def to_line(self) -> str:
        """The JSON line (code-only fields left out where unset)."""
        unset = {name for name in ("status", "stderr", "exec_s") if getattr(self, name) is None}
        return json.dumps(self.model_dump(mode="json", exclude=unset), ensure_ascii=False)


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
