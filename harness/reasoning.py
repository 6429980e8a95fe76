"""Split a generation into reasoning and answer per the model card's tags."""

from __future__ import annotations

from dataclasses import dataclass

from harness.config import ModelCard, Mode


@dataclass(frozen=True)
class Split:
    """A generation cut into its reasoning and its answer; `unclosed` when the think block never ended."""

    reasoning: str
    answer: str
    unclosed: bool


def split_output(text: str, card: ModelCard, mode: Mode) -> Split:
    """Reasoning is the text before the last think-end tag; the answer is after it (inside answer tags if any).

    A think block that was opened (by the model or by the template) and never closed means the
    output was cut off: the answer is empty and `unclosed` is set, so it scores 0.
    """
    tags = card.reasoning
    reasoning, answer, unclosed = "", text, False
    if tags.think_end is not None:
        end = text.rfind(tags.think_end)
        if end >= 0:
            reasoning, answer = text[:end], text[end + len(tags.think_end) :]
        elif _think_opened(text, card, mode):
            reasoning, answer, unclosed = text, "", True
        if tags.think_start and reasoning.lstrip().startswith(tags.think_start):
            reasoning = reasoning.lstrip()[len(tags.think_start) :]
    if tags.answer_start is not None and not unclosed:
        answer = _inside_answer_tags(answer, tags.answer_start, tags.answer_end)
    return Split(reasoning=reasoning.strip(), answer=answer.strip(), unclosed=unclosed)


def _think_opened(text: str, card: ModelCard, mode: Mode) -> bool:
    opens_in_prompt = card.thinking.template_opens_think and card.splits_reasoning(mode)
    start = card.reasoning.think_start
    return opens_in_prompt or (start is not None and start in text)


def _inside_answer_tags(text: str, start: str, end: str | None) -> str:
    """The content of the last answer block; text without an answer block is returned as it is."""
    begin = text.rfind(start)
    if begin < 0:
        return text
    body = text[begin + len(start) :]
    if end is not None and (stop := body.find(end)) >= 0:
        body = body[:stop]
    return body
