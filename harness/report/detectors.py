"""The per-sample detectors of `owb diagnose`: one small function per kind of finding, each saying whether one sample
shows it (None: the run cannot tell)."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from harness.config.base import Mode
from harness.config.cards import ModelCard
from harness.records.sample import SampleRecord
from harness.scoring.reasoning import split_output

LOOP_TOKEN = re.compile(r"\w+|[^\w\s]")  # words and single punctuation marks
LOOP_TAIL_CHARS = 20_000  # only the end of an output is searched: a loop that never ended runs to the budget
LOOP_MAX_PERIOD = 64  # longest repeated unit, in tokens
LOOP_MIN_REPEATS = 4  # the unit repeated at least this often ...
LOOP_MIN_TOKENS = 32  # ... over at least this many tokens


@dataclass(frozen=True)
class SampleContext:
    """What a detector knows besides the sample: the model's card (its think tags) and the run's thinking mode."""

    card: ModelCard
    thinking: Mode


Detector = Callable[[SampleRecord, SampleContext], bool | None]


def truncation(sample: SampleRecord, ctx: SampleContext) -> bool:
    """The output hit the token budget (finish_reason length)."""
    return sample.finish_reason == "length"


def no_answer(sample: SampleRecord, ctx: SampleContext) -> bool | None:
    """The scorer found no answer to grade (None: the run's scorer did not say, an older run)."""
    return sample.extraction_failed


def empty_output(sample: SampleRecord, ctx: SampleContext) -> bool:
    """The model wrote nothing but whitespace."""
    return not sample.raw_output.strip()


def unclosed_thinking(sample: SampleRecord, ctx: SampleContext) -> bool:
    """A think block was opened (by the model or the prompt) and never closed: no answer follows it."""
    return split_output(sample.raw_output, ctx.card, sample.prompt).unclosed


def unopened_thinking(sample: SampleRecord, ctx: SampleContext) -> bool:
    """Thinking was on but the model did not think: no think block at all (neither the model nor the prompt opened
    one), or an empty one (`<think>\n\n</think>`, the bypass the R1 distills are known for)."""
    if ctx.thinking != "on" or ctx.card.reasoning.think_end is None or not sample.raw_output.strip():
        return False
    split = split_output(sample.raw_output, ctx.card, sample.prompt)
    return not split.unclosed and not split.reasoning.strip()


def loop_period(text: str) -> int | None:
    """The length in tokens of a unit the text's end repeats (LOOP_MIN_REPEATS times over LOOP_MIN_TOKENS tokens at
    least), the shortest such; None when the text does not end in a loop."""
    tokens = LOOP_TOKEN.findall(text[-LOOP_TAIL_CHARS:])
    for period in range(1, LOOP_MAX_PERIOD + 1):
        i = len(tokens) - 1
        while i >= period and tokens[i] == tokens[i - period]:
            i -= 1
        repeated = len(tokens) - 1 - i + period  # tokens covered by the repeating unit, its first copy included
        if i + 1 >= period and repeated >= max(LOOP_MIN_REPEATS * period, LOOP_MIN_TOKENS):
            return period
    return None


def repetition(sample: SampleRecord, ctx: SampleContext) -> bool:
    """The output ends in an n-gram loop (the same unit of 1-64 tokens repeated to the end)."""
    return loop_period(sample.raw_output) is not None


SAMPLE_DETECTORS: dict[str, Detector] = {
    "truncation": truncation,
    "no_answer": no_answer,
    "unclosed_thinking": unclosed_thinking,
    "unopened_thinking": unopened_thinking,
    "repetition": repetition,
    "empty_output": empty_output,
}
