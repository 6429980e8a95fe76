"""math-verify on the region its extraction needs gives what math-verify gives on the whole text: on every gold
answer and solution of the shared data, and on long synthetic outputs (real solutions strung together, ending in the
answer written as models write it); and a long answer costs about what a short one does."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest

math_verify = pytest.importorskip("math_verify")
answer_region = pytest.importorskip("harness.scoring.answer_region")

FIELDS = {"gsm8k": ("answer",), "math500": ("solution", "answer"), "minerva_math": ("solution",),
          "olympiadbench": ("solution", "final_answer"), "aime24": ("solution", "answer"),
          "aime25": ("solution", "answer"), "amc23": ("answer",)}
ENDINGS = ["\n#### {a}", "\nThe answer is $\\boxed{{{a}}}$.", "\nSo the final answer is {a}.", "\nTherefore $x = {a}$",
           "\n\\[ {a} \\]", "\nAnswer: {a}", "{a}", "\n$$\n{a}\n$$", " the answer is **{a}**", "\nWe get {a}%."]
ANSWERS = ["18", "\\frac{3}{4}", "-2.5", "1,234", "x^2+1", "42", "\\sqrt{2}", "(1, 2)"]


def _gold_texts(data: Path) -> list[str]:
    texts = []
    for task, fields in FIELDS.items():
        for line in (data / task / "test.jsonl").read_text().splitlines():
            row = json.loads(line)
            for field in fields:
                value = row.get(field)
                if value is not None:
                    texts.append(" ".join(map(str, value)) if isinstance(value, list) else str(value))
    return texts


def _synthetic(pool: list[str], count: int, seed: int = 7) -> list[str]:
    rng = random.Random(seed)
    out = []
    for _ in range(count):
        body = "\n\n".join(rng.sample(pool, rng.randint(5, 60)))[: rng.choice([3000, 8000, 20000, 30000])]
        out.append(body + rng.choice(ENDINGS).format(a=rng.choice(ANSWERS)))
    return out


def _same(a: list[Any], b: list[Any]) -> bool:
    """Equal extractions: the same types and values (sympy's structural equality)."""
    return len(a) == len(b) and all(type(x) is type(y) and x == y for x, y in zip(a, b, strict=True))


def test_every_pattern_above_the_last_group_needs_a_literal() -> None:
    """The rule skips a higher-priority pattern only when its literal is absent: every such pattern has one."""
    for priority, group in answer_region.GROUPS:
        if priority != answer_region.LAST:
            assert all(answer_region.literal_of(pattern) for pattern, _ in group), priority


@pytest.mark.slow
def test_the_region_rule_agrees_with_whole_text_parsing(shared_data: Path) -> None:
    gold = _gold_texts(shared_data)
    synthetic = _synthetic([t for t in gold if len(t) > 50], 400)
    assert len(gold) > 4000 and sum(map(len, synthetic)) / len(synthetic) > 8000
    differ = [t[-120:] for t in gold + synthetic
              if not _same(math_verify.parse(t), answer_region.parse_answer(t))]
    assert differ == []


def test_a_long_answer_is_scanned_only_near_its_end(monkeypatch: pytest.MonkeyPatch) -> None:
    """A 20 KB output ending in `#### 18` (no box, no "answer": math-verify falls through to matching every number):
    the last group scans a suffix of about REGION_CHARS, not the text, and the result is the whole text's."""
    rng = random.Random(3)
    body = "\n".join(f"She has {rng.randint(2, 99)} apples and buys {rng.randint(2, 99)} more, so {rng.randint(2, 999)}."
                     for _ in range(400))[:20000] + "\n#### 18"
    scanned: list[int] = []
    original = answer_region._first_parsed

    def recording(text: str, *args: Any, **kwargs: Any) -> Any:
        scanned.append(len(text))
        return original(text, *args, **kwargs)

    monkeypatch.setattr(answer_region, "_first_parsed", recording)
    assert _same(answer_region.parse_answer(body), math_verify.parse(body))
    assert scanned and max(scanned) <= 2 * answer_region.REGION_CHARS, scanned
