"""The LiveCodeBench scorer: the code block LiveCodeBench takes from a chat answer, graded against the problem's public
and private tests by the driver (LiveCodeBench's rules and timeouts) in the sandbox; `passed` when every test passes."""

from __future__ import annotations

import base64
import json
import secrets
import zlib
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from harness.sandbox.base import ExecResult, Limits, Sandbox
from harness.scoring.base import Scored, ScoreInfo, ScorerBase, ToScore
from harness.scoring.livecodebench.decode import problem_tests
from harness.scoring.livecodebench.driver import DRIVER_HASH, SOURCE, TIMEOUT_S, process_wall_s

VERDICTS = {0: "wrong answer", -2: "wrong answer", -3: "time limit exceeded", -4: "runtime error"}


def extract_code(answer: str) -> str:
    """LiveCodeBench's extraction for chat models: the lines between the last two lines that hold ``` (none: '')."""
    lines = answer.split("\n")
    fences = [i for i, line in enumerate(lines) if "```" in line]
    return "\n".join(lines[fences[-2] + 1 : fences[-1]]) if len(fences) >= 2 else ""


def _pack(obj: Any) -> str:
    return base64.b64encode(zlib.compress(json.dumps(obj).encode(), 1)).decode()


def verdict(result: ExecResult, nonce: str) -> list[Any] | None:
    """The per-test results the driver printed; None without exactly one verdict line or a clean end."""
    lines = [line for line in result.stdout.splitlines() if line.startswith(f"{nonce} ")]
    if result.status != "passed" or len(lines) != 1:
        return None
    found = json.loads(lines[0].split(" ", 1)[1])
    return found if isinstance(found, list) else None


class LiveCodeBenchArgs(BaseModel):
    """The livecodebench scorer's arguments: LiveCodeBench's --evaluation_timeout (seconds per test)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    timeout_s: int = Field(default=TIMEOUT_S, gt=0)


class LiveCodeBenchScorer(ScorerBase):
    """`passed` when the answer's code passes every public and private test of its problem."""

    Args = LiveCodeBenchArgs
    scores = (ScoreInfo("passed"),)

    def __init__(self, args: LiveCodeBenchArgs) -> None:
        self.args = args
        self.sandbox = Sandbox(Limits(wall_s=process_wall_s(1, args.timeout_s), cpu_s=24 * 3600))
        self._tests: dict[str, tuple[str, int, str | None]] = {}  # question_id -> packed tests, count, fn_name

    def _tests_of(self, doc: dict[str, Any]) -> tuple[str, int, str | None]:
        key = str(doc["question_id"])
        if key not in self._tests:
            tests = problem_tests(doc)
            self._tests[key] = (_pack({"inputs": tests.inputs, "outputs": tests.outputs}), len(tests.inputs),
                                tests.fn_name)
        return self._tests[key]

    def score_batch(self, items: Sequence[ToScore]) -> list[Scored]:
        """Run every answer's code against its problem's tests in parallel; an answer without code fails unrun."""
        codes = ["" if i.unclosed else extract_code(i.answer) for i in items]
        runnable = [j for j, code in enumerate(codes) if code.strip()]
        nonces = {j: secrets.token_hex(12) for j in runnable}
        plans = {j: self.program(items[j].doc, codes[j], nonces[j]) for j in runnable}
        order = sorted(runnable, key=lambda j: -plans[j][1])  # longest first: the pool's tail is shorter
        ran = dict(zip(order, self.sandbox.run_many([plans[j][0] for j in order], [plans[j][1] for j in order]),
                       strict=True))
        return [self._grade(codes[j], ran.get(j), nonces.get(j, ""), items[j].unclosed) for j in range(len(items))]

    def program(self, doc: dict[str, Any], code: str, nonce: str) -> tuple[str, float]:
        """The sandboxed program that grades `code` on the document's tests, and its wall-clock limit."""
        tests, count, fn_name = self._tests_of(doc)
        job = _pack({"code": code, "fn_name": fn_name, "timeout": self.args.timeout_s})
        return f"{SOURCE}\n\n_lcb_main({job!r}, {tests!r}, {nonce!r})\n", process_wall_s(count, self.args.timeout_s)

    @staticmethod
    def _grade(code: str, result: ExecResult | None, nonce: str, unclosed: bool) -> Scored:
        if result is None:
            why = "reasoning never closed" if unclosed else "no ``` code block in the answer"
            return Scored(extracted=code or None, scores={"passed": 0.0}, extra={"status": "failed", "stderr": why},
                          extraction_failed=not code)
        results = verdict(result, nonce)
        passed = bool(results) and all(r is True for r in results or [])
        failed = next((r for r in results or [] if r is not True), None)
        timed_out = result.status == "timeout" or failed == -3
        status = "passed" if passed else "error" if result.status == "error" else "timeout" if timed_out else "failed"
        note = (f"test {len(results)} of the run: {VERDICTS.get(int(failed or 0), failed)}\n" if results and not passed
                else "" if passed else f"no verdict (the program ended {result.status})\n")
        return Scored(extracted=code, scores={"passed": float(passed)}, extraction_failed=False,
                      extra={"status": status, "stderr": note + result.stderr_tail, "exec_s": round(result.seconds, 4)})

    def describe(self) -> dict[str, Any]:
        """The sandbox and LiveCodeBench's limits."""
        return {"sandbox": self.sandbox.describe(),
                "livecodebench": {"timeout_s": self.args.timeout_s, "process_limit": "(timeout + 1) s per test + 5 s",
                                  "extraction": "between the last two ``` lines", "driver": DRIVER_HASH}}

    def close(self) -> None:
        """Remove the sandbox's scratch space."""
        self.sandbox.close()
