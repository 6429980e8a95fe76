"""The EvalPlus scorer: expected outputs from the canonical solution (run in the sandbox, cached per data hash), then
each candidate's base and plus inputs in one sandboxed process, with EvalPlus's per-input limits."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import pickle
import secrets
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from harness.core.paths import owb_home
from harness.sandbox.base import ExecResult, Limits, Sandbox
from harness.scoring.base import Scored, ScoreInfo, ScorerBase, ToScore
from harness.scoring.code import extract_code, function_solution
from harness.scoring.evalplus.driver import (
    BIG_OUTPUT,
    DRIVER_HASH,
    GT_TIME_LIMIT_FACTOR,
    MIN_TIME_LIMIT,
    PHASE_SLACK_S,
    PHASES,
    REFERENCE_WALL_S,
    SEALED_NAMES,
    SOURCE,
    STARTUP_S,
    TIMEOUT_PER_TASK,
)
from harness.scoring.evalplus.oracles import mbpp_inputs, oracle_for


def solution(answer: str, doc: dict[str, Any], dataset: str) -> str:
    """The code to test: the answer's program (harness.scorers.code.extract_code); for HumanEval+ with the prompt's
    imports, or the prompt completed by the answer when it is only a body (as for HumanEval)."""
    entry = str(doc["entry_point"])
    if dataset == "mbpp":
        return extract_code(answer, entry)
    return function_solution(answer, str(doc["prompt"]), entry).lstrip("\n")


def _pack(obj: Any) -> str:
    return base64.b64encode(zlib.compress(pickle.dumps(obj, 4))).decode()


@dataclass(frozen=True)
class Problem:
    """One task's inputs, packed for the sandbox, and what its check needs; `key` names its cached outputs."""

    key: str
    task_id: str
    entry: str
    ref_code: str
    inputs: str
    counts: dict[str, int]
    oracle: str
    atol: float

    def job(self) -> dict[str, Any]:
        """What both drivers read besides the inputs."""
        return {"entry": self.entry, "ref_code": self.ref_code, "oracle": self.oracle, "atol": self.atol,
                "not_none": self.oracle == "not_none", "big": BIG_OUTPUT}


@dataclass(frozen=True)
class Expected:
    """The canonical solution's outputs (packed for the candidate program), its time per input, which outputs are
    kept as digests and the seconds their digests took."""

    packed: str
    times: dict[str, list[float]]
    big: dict[str, list[int]]
    digest_s: float


def _problem(doc: dict[str, Any], dataset: str) -> Problem:
    entry, ref_code = str(doc["entry_point"]), str(doc["prompt"]) + str(doc["canonical_solution"])
    raw = {phase: doc[f"{phase}_input"] for phase in PHASES}
    typed = {p: mbpp_inputs(str(doc["task_id"]), v) if dataset == "mbpp" else v for p, v in raw.items()}
    key = hashlib.sha256(json.dumps([DRIVER_HASH, dataset, doc["task_id"], entry, ref_code, raw], sort_keys=True,
                                    default=repr).encode()).hexdigest()[:32]
    inputs = _pack({p: tuple(pickle.dumps(i, 4) for i in v) for p, v in typed.items()})
    return Problem(key=key, task_id=str(doc["task_id"]), entry=entry, ref_code=ref_code, inputs=inputs,
                   counts={p: len(v) for p, v in typed.items()}, oracle=oracle_for(dataset, entry),
                   atol=float(doc.get("atol") or 0))


def _verdicts(result: ExecResult, nonce: str) -> dict[str, str] | None:
    """The phase verdicts the driver wrote; None when stdout holds anything else (its output was tampered with)."""
    found: dict[str, str] = {}
    for line in result.stdout.splitlines():
        parts = line.split(" ")
        if len(parts) != 3 or parts[0] != nonce or parts[1] not in PHASES or parts[1] in found \
                or parts[2] not in ("pass", "fail", "timeout"):
            return None
        found[parts[1]] = parts[2]
    return found


class EvalPlusArgs(BaseModel):
    """The evalplus scorer's arguments: the dataset's conventions, and EvalPlus's --min-time-limit and
    --gt-time-limit-factor."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    dataset: Literal["humaneval", "mbpp"]
    min_time_limit: float = MIN_TIME_LIMIT
    gt_time_limit_factor: float = GT_TIME_LIMIT_FACTOR


class EvalPlusScorer(ScorerBase):
    """HumanEval+ / MBPP+: `base_passed` when every base input gives the canonical solution's output, `plus_passed`
    when the extra inputs do too (EvalPlus's base and base + extra tests)."""

    Args = EvalPlusArgs
    scores = (ScoreInfo("base_passed"), ScoreInfo("plus_passed"))

    def __init__(self, args: EvalPlusArgs) -> None:
        self.args = args
        self.sandbox = Sandbox(Limits(wall_s=REFERENCE_WALL_S, cpu_s=int(REFERENCE_WALL_S)))
        self.cache = owb_home() / "evalplus"
        self._problems: dict[str, Problem] = {}
        self._expected: dict[str, Expected | str] = {}  # by Problem.key: the outputs, or why the reference failed

    def score_batch(self, items: Sequence[ToScore]) -> list[Scored]:
        """Run every answer against its task's inputs in parallel (the expected outputs computed first if missing)."""
        live = [i for i in items if not i.unclosed]
        problems = [self._problem_of(i.doc) for i in live]
        self._ensure_expected(problems)
        codes = [solution(i.answer, i.doc, self.args.dataset) for i in live]
        runnable = [j for j, p in enumerate(problems) if isinstance(self._expected[p.key], Expected)]
        nonces = {j: secrets.token_hex(12) for j in runnable}
        plans = {j: self._candidate_plan(problems[j], codes[j], nonces[j]) for j in runnable}
        order = sorted(runnable, key=lambda j: -plans[j][1])  # longest first: the pool's tail is shorter
        results = dict(zip(order, self.sandbox.run_many([plans[j][0] for j in order], [plans[j][1] for j in order]),
                           strict=True))
        graded = iter([self._grade(codes[j], problems[j], results.get(j), nonces.get(j, "")) for j in range(len(live))])
        return [Scored(extracted=None, scores={"base_passed": 0.0, "plus_passed": 0.0}, extraction_failed=True,
                       extra={"status": "failed", "stderr": "reasoning never closed"}) if i.unclosed else next(graded)
                for i in items]

    def _problem_of(self, doc: dict[str, Any]) -> Problem:
        task_id = str(doc["task_id"])
        if task_id not in self._problems:
            self._problems[task_id] = _problem(doc, self.args.dataset)
        return self._problems[task_id]

    def _ensure_expected(self, problems: Sequence[Problem]) -> None:
        """Load or compute (in the sandbox, in parallel) the expected outputs of every problem not known yet."""
        todo = {p.key: p for p in problems if p.key not in self._expected}
        for key in list(todo):
            path = self.cache / f"{key}.json"
            if path.is_file():
                stored = json.loads(path.read_text())
                self._expected[key] = Expected(stored["packed"], stored["times"], stored["big"], stored["digest_s"])
                del todo[key]
        pending = sorted(todo.values(), key=lambda p: -sum(p.counts.values()))
        nonces = [secrets.token_hex(12) for _ in pending]
        programs = [f"{SOURCE}\n\n_reference_main({_pack(p.job())!r}, {p.inputs!r}, {n!r})\n"
                    for p, n in zip(pending, nonces, strict=True)]
        for p, n, r in zip(pending, nonces, self.sandbox.run_many(programs, [REFERENCE_WALL_S] * len(programs)),
                           strict=True):
            self._expected[p.key] = found = self._parse_reference(p, r, n)
            if isinstance(found, Expected):
                self._store(p, found)

    @staticmethod
    def _parse_reference(problem: Problem, result: ExecResult, nonce: str) -> Expected | str:
        parts = result.stdout.strip().split(" ", 2)
        if result.status != "passed" or len(parts) != 3 or parts[0] != nonce:
            return (f"the canonical solution of {problem.task_id} did not run ({result.status}): "
                    f"{result.stderr_tail[-500:]}")
        meta = json.loads(parts[1])
        times = {p: [float(t) for t in meta["times"][p]] for p in PHASES}
        if any(len(times[p]) != problem.counts[p] for p in PHASES):
            return f"the reference run of {problem.task_id} returned the wrong number of outputs"
        return Expected(parts[2], times, {p: [int(i) for i in meta["big"][p]] for p in PHASES},
                        float(meta["digest_s"]))

    def _store(self, problem: Problem, expected: Expected) -> None:
        self.cache.mkdir(parents=True, exist_ok=True)
        tmp = self.cache / f".{problem.key}.{os.getpid()}.tmp"
        tmp.write_text(json.dumps({"task_id": problem.task_id, "packed": expected.packed, "times": expected.times,
                                   "big": expected.big, "digest_s": expected.digest_s}))
        tmp.replace(self.cache / f"{problem.key}.json")

    def _candidate_plan(self, problem: Problem, code: str, nonce: str) -> tuple[str, float]:
        """The candidate's program and its wall-clock limit: the phases' budgets, start-up, and twice what digested
        outputs cost the reference run (digesting, and re-computing them after a mismatch)."""
        expected = self._expected[problem.key]
        assert isinstance(expected, Expected)
        limits = {p: [max(self.args.min_time_limit, self.args.gt_time_limit_factor * t) for t in expected.times[p]]
                  for p in PHASES}
        budget = {p: min(TIMEOUT_PER_TASK, sum(limits[p])) + PHASE_SLACK_S for p in PHASES}
        recompute = expected.digest_s + sum(expected.times[p][i] for p in PHASES for i in expected.big[p])
        job = _pack({**problem.job(), "code": code, "limits": limits, "budget": budget})
        program = (f"{SOURCE}\n\n_seal([{SEALED_NAMES}])['_candidate_main']({job!r}, {problem.inputs!r}, "
                   f"{expected.packed!r}, {nonce!r})\n")
        return program, sum(budget.values()) + STARTUP_S + 2 * recompute

    def _grade(self, code: str, problem: Problem, result: ExecResult | None, nonce: str) -> Scored:
        """Scores from the driver's verdict lines: base from its line alone, plus only after a clean exit."""
        expected = self._expected[problem.key]
        if result is None:
            return Scored(extracted=code, scores={"base_passed": 0.0, "plus_passed": 0.0},
                          extra={"status": "error", "stderr": str(expected)}, extraction_failed=not code.strip())
        verdicts = _verdicts(result, nonce)
        base = (verdicts or {}).get("base")
        plus = (verdicts or {}).get("plus") if result.status == "passed" else None
        passed = base == "pass" and plus == "pass"
        timed_out = result.status == "timeout" or "timeout" in (base, plus)
        status = "passed" if passed else "error" if result.status == "error" else "timeout" if timed_out else "failed"
        note = result.stderr_tail
        if verdicts is None:
            note = f"the program's stdout was not the driver's verdicts\n{note}"
        elif not passed and not note:
            note = f"the program ended ({result.status}, exit code {result.returncode}) without a verdict"
        return Scored(extracted=code, scores={"base_passed": float(base == "pass"), "plus_passed": float(passed)},
                      extra={"status": status, "stderr": note, "exec_s": round(result.seconds, 4)},
                      extraction_failed=not code.strip())

    def describe(self) -> dict[str, Any]:
        """The sandbox, EvalPlus's time limits and how expected outputs are made."""
        return {"sandbox": self.sandbox.describe(),
                "evalplus": {"dataset": self.args.dataset, "min_time_limit": self.args.min_time_limit,
                             "gt_time_limit_factor": self.args.gt_time_limit_factor,
                             "timeout_per_task": TIMEOUT_PER_TASK, "phase_slack_s": PHASE_SLACK_S,
                             "expected_outputs": "canonical_solution run in the sandbox, cached per data hash",
                             "driver": DRIVER_HASH}}

    def close(self) -> None:
        """Remove the sandbox's scratch space."""
        self.sandbox.close()
