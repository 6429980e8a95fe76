"""math-verify's `parse` of a long answer, looking only where its extraction rules can find the answer.

math-verify tries its patterns in priority groups (a final-answer phrase, `\\boxed{}`, "answer ...", then any LaTeX,
expression or number) and, within a group, the rightmost match first. Every pattern of the higher groups needs a
literal ("final answer", "answer", "\\boxed"): a pattern whose literal is absent is skipped, the others scan the whole
text. The last group needs none and matches every number, so it scans a suffix of the text (from a line start where
no display-math delimiter is open) and keeps its result only when the winning match lies well inside that suffix;
otherwise the suffix doubles, up to the whole text. The result equals `parse(text)` (tests compare both on the
shared data and on long synthetic outputs) at a cost that does not grow with the text where the answer is short.
"""

from __future__ import annotations

import re
from typing import Any

from math_verify.parser import (
    ExprExtractionConfig,
    LatexExtractionConfig,
    extract_match,
    get_extraction_regexes,
    parse,
)
from math_verify.utils import timeout

REGION_CHARS = 2048  # the first suffix the last group scans
MARGIN_CHARS = 256  # how far inside the suffix its winning match must start
PARSE_TIMEOUT_S = 5  # math-verify's own default for `parse`
LITERALS = (("(?i:final answer", "final answer"), ("(?i:answer)", "answer"), ("\\\\boxed", "\\boxed"))
DISPLAY = (("$$", "$$"), ("\\[", "\\]"))

Group = list[tuple[re.Pattern[str], Any]]


def _groups() -> list[tuple[int, Group]]:
    """math-verify's default patterns (LaTeX and expressions), grouped by priority, lowest number first."""
    by_priority: dict[int, Group] = {}
    for patterns, target in get_extraction_regexes([LatexExtractionConfig(), ExprExtractionConfig()]):
        for pattern, priority in patterns:
            by_priority.setdefault(priority, []).append((pattern, target))
    return sorted(by_priority.items())


GROUPS = _groups()
LAST = GROUPS[-1][0]


def literal_of(pattern: re.Pattern[str]) -> str | None:
    """The literal a pattern cannot match without (casefolded for case-insensitive ones), None for none."""
    return next((literal for marker, literal in LITERALS if marker in pattern.pattern), None)


def _may_match(pattern: re.Pattern[str], text: str, folded: str) -> bool:
    """False only when the pattern's literal is absent (case-insensitive literals looked up in the casefolded text)."""
    literal = literal_of(pattern)
    return literal is None or literal in (text if literal.startswith("\\") else folded)


def parse_answer(text: str) -> list[Any]:
    """`math_verify.parse(text)` with its default settings, scanning only what its extraction needs."""
    if len(text) <= REGION_CHARS:
        return list(parse(text))
    try:
        return list(timeout(timeout_seconds=PARSE_TIMEOUT_S)(_extract)(text))
    except Exception:  # noqa: BLE001 - as `parse`: any failure is "nothing extracted"
        return []


def _extract(text: str) -> list[Any]:
    folded = text.casefold()
    fallbacks: list[str] = []
    for priority, group in GROUPS:
        if priority != LAST:
            present = [(p, t) for p, t in group if _may_match(p, text, folded)]
            found = _first_parsed(text, present, fallbacks) if present else None
        else:
            found = _last_group(text, group, fallbacks)
        if found is not None:
            return [found, fallbacks[0]] if fallbacks else [found]
    return fallbacks[:1]


def _first_parsed(text: str, group: Group, fallbacks: list[str], not_before: int = 0) -> Any:
    """The rightmost match of the group that parses (matches are tried as math-verify tries them); None if none
    does, or if the one that does starts before `not_before`."""
    matches = sorted(((m, target) for pattern, target in group for m in pattern.finditer(text)),
                     key=lambda pair: (pair[0].end(), -pair[0].start()), reverse=True)
    for match, target in matches:
        if match.start() < not_before:
            return None
        value, fallback = extract_match(match, target)
        if fallback:
            fallbacks.append(fallback)
        if value is not None:
            return value
    return None


def _last_group(text: str, group: Group, fallbacks: list[str]) -> Any:
    """The last group over growing suffixes of the text; a suffix's answer counts only well inside it."""
    size = REGION_CHARS
    while True:
        cut = _cut(text, len(text) - size) if size < len(text) else 0
        if cut == 0:
            return _first_parsed(text, group, fallbacks)
        tried: list[str] = []
        found = _first_parsed(text[cut:], group, tried, not_before=MARGIN_CHARS)
        if found is not None:
            fallbacks.extend(tried)
            return found
        size *= 2


def _cut(text: str, at_least: int) -> int:
    """The first line start at or after `at_least` before which no display-math block is open (0: none)."""
    position = text.find("\n", max(at_least, 0))
    while position >= 0:
        start = position + 1
        prefix = text[:start]
        if all(prefix.count(open_) == prefix.count(close) if open_ != close else prefix.count(open_) % 2 == 0
               for open_, close in DISPLAY):
            return start
        position = text.find("\n", start)
    return 0
