"""Split a generation into reasoning and answer per the model card's tags, as spans of the generated text (so the
text is stored once and both parts are slices of it)."""

from __future__ import annotations

from dataclasses import dataclass

from harness.config.cards import ModelCard

Span = tuple[int, int]


@dataclass(frozen=True)
class Split:
    """A generation cut into its reasoning and its answer (spans of `text`); `unclosed` when the think block never
    ended."""

    text: str
    reasoning_span: Span
    answer_span: Span
    unclosed: bool

    @property
    def reasoning(self) -> str:
        """The reasoning's text."""
        return self.text[self.reasoning_span[0] : self.reasoning_span[1]]

    @property
    def answer(self) -> str:
        """The answer's text."""
        return self.text[self.answer_span[0] : self.answer_span[1]]


def split_output(text: str, card: ModelCard, prompt: str) -> Split:
    """Reasoning is the text before the last think-end tag; the answer is after it (inside answer tags if any).

    A think block that was opened and never closed means the output was cut off: the answer is empty and
    `unclosed` is set, so it scores 0. The block is open when the model wrote the think-start tag, or when the
    rendered prompt ends with it (templates such as DeepSeek-R1-Distill's later one open it for the model; the
    first-published one does not, so the same card may see either). The answer keeps its indentation (a code
    completion may be a bare function body); only blank lines around it are dropped.
    """
    tags = card.reasoning
    reasoning, answer, unclosed = (0, 0), (0, len(text)), False
    if tags.think_end is not None:
        end = text.rfind(tags.think_end)
        if end >= 0:
            reasoning, answer = (0, end), (end + len(tags.think_end), len(text))
        elif _think_opened(text, card, prompt):
            reasoning, answer, unclosed = (0, len(text)), (len(text), len(text)), True
        if tags.think_start:
            reasoning = _after_start_tag(text, reasoning, tags.think_start)
    if tags.answer_start is not None and not unclosed:
        answer = _inside_answer_tags(text, answer, tags.answer_start, tags.answer_end)
    return Split(text, _stripped(text, reasoning), _without_blank_lines(text, answer), unclosed)


def strip_blank_lines(text: str) -> str:
    """The text without leading blank lines and trailing whitespace; the first line keeps its indentation."""
    start, end = _without_blank_lines(text, (0, len(text)))
    return text[start:end]


def _think_opened(text: str, card: ModelCard, prompt: str) -> bool:
    start = card.reasoning.think_start
    return start is not None and (prompt.rstrip().endswith(start) or start in text)


def _after_start_tag(text: str, span: Span, tag: str) -> Span:
    """The span without a think-start tag it begins with (after leading whitespace)."""
    start, end = span
    part = text[start:end]
    lead = start + len(part) - len(part.lstrip())
    return (lead + len(tag), end) if text[lead:end].startswith(tag) else span


def _inside_answer_tags(text: str, span: Span, start_tag: str, end_tag: str | None) -> Span:
    """The content of the last answer block in the span; a span without an answer block is kept as it is."""
    start, end = span
    begin = text.rfind(start_tag, start, end)
    if begin < 0 or begin + len(start_tag) > end:
        return span
    body = begin + len(start_tag)
    stop = text.find(end_tag, body, end) if end_tag is not None else -1
    return (body, stop) if stop >= 0 else (body, end)


def _stripped(text: str, span: Span) -> Span:
    """The span without whitespace at either end (str.strip)."""
    start, end = span
    part = text[start:end]
    left = len(part) - len(part.lstrip())
    if left == len(part):
        return (start, start)
    return (start + left, start + len(part.rstrip()))


def _without_blank_lines(text: str, span: Span) -> Span:
    """The span without trailing whitespace and without its leading blank lines (the first kept line keeps its
    indentation)."""
    start, end = span
    end = start + len(text[start:end].rstrip())
    while start < end:
        newline = text.find("\n", start, end)
        if newline < 0 or text[start:newline].strip():
            break
        start = newline + 1
    if start < end and not text[start:end].strip():
        start = end
    return (start, end)
