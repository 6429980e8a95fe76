"""Maths scoring: GSM8K strict / flexible extraction (lm-evaluation-harness semantics) and math-verify.

math-verify runs in a child process with a per-call timeout, so a pathological answer cannot hang a run.
"""

from __future__ import annotations

import importlib.metadata
import multiprocessing
import re
from collections.abc import Sequence
from multiprocessing.connection import Connection
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from harness.records.sample import SampleStats
from harness.scoring.base import Scored, ScoreInfo, ScorerBase, ToScore

# lm-evaluation-harness gsm8k.yaml: strict-match and flexible-extract filters, exact_match's regexes_to_ignore.
STRICT = re.compile(r"#### (\-?[0-9\.\,]+)")
FLEXIBLE = re.compile(r"(-?[$0-9.,]{2,})|(-?[0-9]+)")
IGNORE = (re.compile(","), re.compile(r"\$"), re.compile(r"(?s).*#### "), re.compile(r"\.$"))


def normalize_number(text: str) -> str:
    """lm-eval's exact_match preprocessing: drop commas, dollar signs, everything up to '#### ', a final dot."""
    for pattern in IGNORE:
        text = pattern.sub("", text)
    return text.strip().lower()


NUMBER_CHARS = frozenset("-$0123456789.,")  # every character a FLEXIBLE match can hold
TAIL_CHARS = 512  # where flexible-extract starts looking, from the end


def strict_extract(text: str) -> str | None:
    """The number after the first '#### ' (strict-match), or None."""
    found = STRICT.search(text)
    return found.group(1).strip() if found else None


def flexible_extract(text: str) -> str | None:
    """The last number-like token in the text (flexible-extract), or None.

    Only the end of the text is scanned: a match holds number characters only, so one that starts after a
    non-number character is found alike from there or from the start; the tail grows until it holds a match."""
    size = TAIL_CHARS
    while True:
        cut = _boundary(text, len(text) - size)
        found = FLEXIBLE.findall(text, cut)
        if found or cut == 0:
            break
        size *= 2
    if not found:
        return None
    return next(g for g in found[-1] if g).strip()


def _boundary(text: str, at_most: int) -> int:
    """The last position at or before `at_most` that follows a non-number character (0: the start)."""
    position = max(at_most, 0)
    while position > 0 and text[position - 1] in NUMBER_CHARS:
        position -= 1
    return position


def gsm8k_target(answer_field: str) -> str:
    """The gold number of a GSM8K answer ('... #### 72')."""
    return normalize_number(answer_field.split("####")[-1])


def last_boxed(text: str) -> str | None:
    r"""Content of the last \boxed{...} (or \fbox{...}), braces matched; `\boxed 5` is accepted too."""
    start = max(text.rfind("\\boxed"), text.rfind("\\fbox"))
    if start < 0:
        return None
    rest = text[start:]
    brace = rest.find("{")
    if rest.startswith("\\boxed ") and (brace < 0 or rest[: brace].strip() != "\\boxed"):
        return rest[len("\\boxed ") :].split("$")[0].strip() or None
    if brace < 0:
        return None
    depth = 0
    for i in range(brace, len(rest)):
        depth += {"{": 1, "}": -1}.get(rest[i], 0)
        if depth == 0:
            return rest[brace + 1 : i]
    return None


def _child_main(conn: Connection) -> None:
    """The child's entry: the warmed-up loop the forkserver imported (the parent never imports math-verify)."""
    from harness.scoring.verify_child import verify_loop

    verify_loop(conn)


def _child_context() -> Any:
    """A forkserver that has imported and warmed up math-verify once: each verifier child is a fork of that clean
    process (no threads, unlike an engine's), so it starts at once instead of re-importing sympy and antlr."""
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(["harness.scoring.verify_child"])
    return ctx


class MathVerifier:
    """math-verify's parse + verify in a child process; a call over `timeout_s` kills the child and returns False."""

    def __init__(self, timeout_s: float = 10.0) -> None:
        self.timeout_s = timeout_s
        self._ctx = _child_context()
        self._proc: Any = None
        self._conn: Connection | None = None
        self.timeouts = 0

    def _start(self) -> Connection:
        parent, child = self._ctx.Pipe()
        self._proc = self._ctx.Process(target=_child_main, args=(child,), daemon=True)
        self._proc.start()
        self._conn = parent
        return parent

    def equivalent(self, gold: str, pred: str) -> bool:
        """True when math-verify finds the two LaTeX/plain answers equal."""
        conn = self._conn or self._start()
        conn.send((gold, pred))
        if conn.poll(self.timeout_s):
            result: bool = conn.recv()
            return result
        self.timeouts += 1
        self.close()
        return False

    def close(self) -> None:
        """Stop the child process."""
        if self._proc is not None:
            self._proc.kill()
            self._proc.join()
        self._proc, self._conn = None, None


class _MathScorer(ScorerBase):
    """math-verify in a child process, and votes compared by math-verify's equivalence."""

    def __init__(self, args: BaseModel | None = None, timeout_s: float = 10.0) -> None:
        self.verifier = MathVerifier(timeout_s)

    def same_answer(self, a: str, b: str) -> bool:
        """Identical, or equivalent by math-verify (so 1/2, \\dfrac{1}{2} and 0.5 are one answer)."""
        return a == b or self.verifier.equivalent(f"\\boxed{{{a}}}", f"\\boxed{{{b}}}")

    def describe(self) -> dict[str, Any]:
        """math-verify version and its per-answer timeout."""
        return {"math_verify": importlib.metadata.version("math-verify"), "timeout_s": self.verifier.timeout_s}

    def close(self) -> None:
        """Stop the math-verify child."""
        self.verifier.close()


class GSM8KScorer(_MathScorer):
    """strict_match and flexible_match as lm-evaluation-harness defines them, plus math_verify of the whole answer."""

    scores = (ScoreInfo("strict_match"), ScoreInfo("flexible_match"), ScoreInfo("math_verify"))

    def score_batch(self, items: Sequence[ToScore]) -> list[Scored]:
        """Grades for each answer against the gold number."""
        return [self._score(item) for item in items]

    def _score(self, item: ToScore) -> Scored:
        gold = gsm8k_target(str(item.target))
        if item.unclosed:
            return Scored(extracted=None, scores={s.name: 0.0 for s in self.scores}, extraction_failed=True)
        strict, flexible = strict_extract(item.answer), flexible_extract(item.answer)
        scores = {
            "strict_match": float(strict is not None and normalize_number(strict) == gold),
            "flexible_match": float(flexible is not None and normalize_number(flexible) == gold),
            "math_verify": float(bool(item.answer.strip()) and self.verifier.equivalent(gold, item.answer)),
        }
        return Scored(extracted={"strict": strict, "flexible": flexible}, scores=scores,
                      extraction_failed=strict is None and flexible is None)

    def vote(self, sample: SampleStats) -> str | None:
        """The normalised flexible-extract number."""
        flexible = (sample.extracted or {}).get("flexible")
        return normalize_number(flexible) if flexible else None

    def same_answer(self, a: str, b: str) -> bool:
        """Normalised numbers compare as strings, as lm-evaluation-harness's exact match does."""
        return a == b


class MathArgs(BaseModel):
    """How the math scorer reads a document's target."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # answer: the target field is the answer (a string, a number such as AIME's "025" or AMC's 27.0, or a list of
    # acceptable answers such as OlympiadBench's final_answer); last_boxed: the target field is a worked solution
    # whose last \boxed{} is the answer (Minerva).
    target: Literal["answer", "last_boxed"] = "answer"


class MathScorer(_MathScorer):
    r"""math-verify equivalence of the last \boxed{} in the answer with the reference answer."""

    Args = MathArgs
    scores = (ScoreInfo("math_verify"),)

    def __init__(self, args: BaseModel | None = None, timeout_s: float = 10.0) -> None:
        super().__init__(args, timeout_s)
        self.target = args.target if isinstance(args, MathArgs) else "answer"

    def references(self, target: Any) -> list[str]:
        """The acceptable answers of a document (dollar signs around LaTeX dropped)."""
        if self.target == "last_boxed":
            return [last_boxed(str(target)) or str(target)]
        values = target if isinstance(target, list) else [target]
        return [str(v).strip().strip("$").strip() for v in values]

    def score_batch(self, items: Sequence[ToScore]) -> list[Scored]:
        """Grades for each answer against the reference."""
        return [self._score(item) for item in items]

    def _score(self, item: ToScore) -> Scored:
        boxed = None if item.unclosed else last_boxed(item.answer)
        if boxed is None:
            return Scored(extracted=None, scores={"math_verify": 0.0}, extraction_failed=True)
        ok = any(self.verifier.equivalent(f"\\boxed{{{ref}}}", f"\\boxed{{{boxed}}}")
                 for ref in self.references(item.target))
        return Scored(extracted=boxed, scores={"math_verify": float(ok)}, extraction_failed=False)

    def vote(self, sample: SampleStats) -> str | None:
        """The boxed answer without spaces."""
        return "".join(str(sample.extracted).split()) if sample.extracted else None
