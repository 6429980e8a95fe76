"""Code scoring: extract the program from an answer, run it with the task's tests in the sandbox, pass@k."""

from __future__ import annotations

import ast
import re
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict

from harness.core.registry import load_hook
from harness.sandbox.base import Sandbox
from harness.scoring.base import Scored, ScoreInfo, ScorerBase, ToScore

FENCE = re.compile(r"```[ \t]*(?:python3?|py)?[ \t]*\n(.*?)```", re.DOTALL | re.IGNORECASE)
KEEP = (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Assign, ast.AnnAssign)


def fenced_blocks(text: str) -> list[str]:
    """Contents of the ```python (or bare ```) blocks, in order; an unclosed last fence counts too."""
    blocks = FENCE.findall(text)
    tail = text.rfind("```")
    if len(blocks) * 2 < text.count("```") and tail >= 0:
        opened = text[tail + 3 :]
        blocks.append(opened.split("\n", 1)[1] if "\n" in opened else "")
    return blocks


def extract_code(answer: str, entry_point: str | None) -> str:
    """The program in an answer: the last fenced block defining `entry_point` (else the last block, else the
    answer itself), keeping only imports, definitions and assignments so stray prints and tests are dropped."""
    blocks = fenced_blocks(answer)
    defines = [b for b in blocks if entry_point and re.search(rf"\bdef\s+{re.escape(entry_point)}\s*\(", b)]
    code = (defines or blocks or [answer])[-1]
    try:
        tree = ast.parse(code)
    except SyntaxError:
        return code
    kept = [node for node in tree.body if isinstance(node, KEEP)]
    return "\n\n".join(ast.get_source_segment(code, node) or "" for node in kept) if kept else code


def mbpp_entry_point(doc: dict[str, Any]) -> str | None:
    """The function MBPP's first test calls."""
    tests = doc.get("test_list") or []
    found = re.search(r"assert\s+(?:not\s+)?\(?\s*([A-Za-z_]\w*)\s*\(", tests[0]) if tests else None
    return found.group(1) if found else None


def _imports_of(prompt: str) -> str:
    """The prompt's top-level import statements (the prompt ends inside a function, so a body is added)."""
    try:
        tree = ast.parse(prompt + "\n    pass\n")
    except SyntaxError:
        return ""
    nodes = [n for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))]
    return "\n".join(ast.get_source_segment(prompt, n) or "" for n in nodes)


def function_solution(answer: str, prompt: str, entry: str) -> str:
    """A HumanEval-style solution: the answer's program defining `entry`, with the prompt's imports, or the prompt
    completed by the answer where the answer is only a body."""
    code = extract_code(answer, entry)
    if not re.search(rf"\bdef\s+{re.escape(entry)}\s*\(", code):
        return prompt + answer
    return f"{_imports_of(prompt)}\n{code}"


def humaneval_program(answer: str, doc: dict[str, Any]) -> str:
    """HumanEval: the solution (the prompt completed where the answer is only a body) + `test` + check(entry)."""
    entry = str(doc["entry_point"])
    solution = function_solution(answer, str(doc["prompt"]), entry)
    return f"{solution}\n\n{doc['test']}\n\ncheck({entry})\n"


def mbpp_program(answer: str, doc: dict[str, Any]) -> str:
    """MBPP (full or sanitized): test imports, the solution, the setup code, then the asserts of `test_list`."""
    code = extract_code(answer, mbpp_entry_point(doc))
    imports = "\n".join(doc.get("test_imports") or [])  # sanitized MBPP
    setup = doc.get("test_setup_code") or ""  # full MBPP: may use names the solution defines
    return f"{imports}\n{code}\n\n{setup}\n" + "\n".join(doc["test_list"]) + "\n"


class CodeArgs(BaseModel):
    """The code scorer's arguments: the function that builds a document's test program from an answer."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    build_program: str  # "module:function" taking (answer, doc) and returning the program to run


class CodeScorer(ScorerBase):
    """Runs each answer's program against the task's tests in the sandbox; `passed` is 1 when all pass."""

    Args = CodeArgs
    scores = (ScoreInfo("passed"),)

    def __init__(self, args: CodeArgs) -> None:
        self.build_program = load_hook(args.build_program)
        self.sandbox = Sandbox()

    def score_batch(self, items: Sequence[ToScore]) -> list[Scored]:
        """Run every answer's program in parallel; `passed` is 1 only when all tests pass."""
        programs = [self.build_program(i.answer, i.doc) for i in items]
        results = self.sandbox.run_many([p for p, i in zip(programs, items, strict=True) if not i.unclosed])
        out, it = [], iter(results)
        for program, item in zip(programs, items, strict=True):
            if item.unclosed:
                out.append(Scored(extracted=None, scores={"passed": 0.0}, extraction_failed=True,
                                  extra={"status": "failed", "stderr": "reasoning never closed"}))
                continue
            r = next(it)
            out.append(Scored(extracted=program, scores={"passed": float(r.status == "passed")},
                              extra={"status": r.status, "stderr": r.stderr_tail, "exec_s": round(r.seconds, 4)},
                              extraction_failed=not item.answer.strip()))
        return out

    def describe(self) -> dict[str, Any]:
        """The sandbox's isolation mode and limits."""
        return {"sandbox": self.sandbox.describe()}

    def close(self) -> None:
        """Remove the sandbox's scratch space."""
        self.sandbox.close()
