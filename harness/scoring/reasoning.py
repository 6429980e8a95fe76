"""Split a generation into reasoning and answer per the model card's tags."""

from __future__ import annotations

from dataclasses import dataclass

from harness.config.cards import ModelCard


@dataclass(frozen=True)
class Split:
    """A generation cut into its reasoning and its answer; `unclosed` when the think block never ended."""

    reasoning: str
    answer: str
    unclosed: bool


def split_output(text: str, card: ModelCard, prompt: str) -> Split:
    """Reasoning is the text before the last think-end tag; the answer is after it (inside answer tags if any).

    A think block that was opened and never closed means the output was cut off: the answer is empty and
    `unclosed` is set, so it scores 0. The block is open when the model wrote the think-start tag, or when the
    rendered prompt ends with it (templates such as DeepSeek-R1-Distill's later one open it for the model; the
    first-published one does not, so the same card may see either). The answer keeps its indentation (a code
    completion may be a bare function body); only blank lines around it are dropped.
    """
    tags = card.reasoning
    reasoning, answer, unclosed = "", text, False
    if tags.think_end is not None:
        end = text.rfind(tags.think_end)
        if end >= 0:
            reasoning, answer = text[:end], text[end + len(tags.think_end) :]
        elif _think_opened(text, card, prompt):
            reasoning, answer, unclosed = text, "", True
        if tags.think_start and reasoning.lstrip().startswith(tags.think_start):
            reasoning = reasoning.lstrip()[len(tags.think_start) :]
    if tags.answer_start is not None and not unclosed:
        answer = _inside_answer_tags(answer, tags.answer_start, tags.answer_end)
    return Split(reasoning=reasoning.strip(), answer=strip_blank_lines(answer), unclosed=unclosed)


def strip_blank_lines(text: str) -> str:
    """The text without leading blank lines and trailing whitespace; the first line keeps its indentation."""
    lines = text.rstrip().split("\n")
    while lines and not lines[0].strip():
        lines.pop(0)
    return "\n".join(lines)


def _think_opened(text: str, card: ModelCard, prompt: str) -> bool:
    start = card.reasoning.think_start
    return start is not None and (prompt.rstrip().endswith(start) or start in text)


def _inside_answer_tags(text: str, start: str, end: str | None) -> str:
    """The content of the last answer block; text without an answer block is returned as it is."""
    begin = text.rfind(start)
    if begin < 0:
        return text
    body = text[begin + len(start) :]
    if end is not None and (stop := body.find(end)) >= 0:
        body = body[:stop]
    return body
