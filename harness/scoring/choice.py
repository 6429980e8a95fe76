"""Multiple-choice scoring as OpenAI's simple-evals grades GPQA: the first `Answer: X` in the answer (its
ANSWER_PATTERN_MULTICHOICE) is the model's letter, correct when it is the shuffled correct option's letter."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel

from harness.records.sample import SampleStats
from harness.scoring.base import Scored, ScoreInfo, ScorerBase, ToScore

# simple-evals (common.py): case-insensitive "Answer", a colon, an optional $ around the letter; re.search takes the
# first match. A lower-case letter is extracted as written and so does not equal the upper-case target.
ANSWER_PATTERN = re.compile(r"(?i)Answer[ \t]*:[ \t]*\$?([A-D])\$?")


def answer_letter(text: str) -> str | None:
    """The letter of the first `Answer: X` in the text, as simple-evals extracts it (None: no such line)."""
    found = ANSWER_PATTERN.search(text)
    return found.group(1) if found else None


class ChoiceScorer(ScorerBase):
    """`accuracy` is 1 when the extracted letter is the target letter; votes are letters."""

    scores = (ScoreInfo("accuracy"),)

    def __init__(self, args: BaseModel | None = None) -> None:
        self.args = args

    def score_batch(self, items: Sequence[ToScore]) -> list[Scored]:
        """Grades for each answer against its document's correct letter."""
        out = []
        for item in items:
            letter = None if item.unclosed else answer_letter(item.answer)
            out.append(Scored(extracted=letter, scores={"accuracy": float(letter == str(item.target))},
                              extraction_failed=letter is None))
        return out

    def vote(self, sample: SampleStats) -> str | None:
        """The extracted letter."""
        return str(sample.extracted) if sample.extracted else None

    def describe(self) -> dict[str, Any]:
        """The extraction rule."""
        return {"extraction": f"simple-evals ANSWER_PATTERN_MULTICHOICE {ANSWER_PATTERN.pattern}, first match"}
