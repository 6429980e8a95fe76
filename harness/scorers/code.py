"""Code scoring: extract the program from an answer, run it with the task's tests in the sandbox, pass@k."""

from __future__ import annotations

import ast
import re
from collections.abc import Sequence
from typing import Any

from harness.scorers.base import Scored, ToScore
from harness.scorers.sandbox import Sandbox
from harness.stats import pass_at_k

FENCE = re.compile(r"```[ \t]*(?:python3?|py)?[ \t]*\n(.*?)```", re.DOTALL | re.IGNORECASE)
KEEP = (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Assign, ast.AnnAssign)
K_VALUES = (1, 10, 100)


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


def entry_point_of(doc: dict[str, Any]) -> str | None:
    """HumanEval's entry_point, or the function MBPP's first test calls."""
    if doc.get("entry_point"):
        return str(doc["entry_point"])
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


def build_program(answer: str, doc: dict[str, Any]) -> str:
    """The full test program: the solution (completing the prompt where the answer is only a body) + tests."""
    entry = entry_point_of(doc)
    code = extract_code(answer, entry)
    if "test" in doc and "entry_point" in doc:  # HumanEval
        prompt = str(doc["prompt"])
        has_def = entry is not None and re.search(rf"\bdef\s+{re.escape(entry)}\s*\(", code)
        solution = f"{_imports_of(prompt)}\n{code}" if has_def else prompt + answer
        return f"{solution}\n\n{doc['test']}\n\ncheck({entry})\n"
    imports = "\n".join(doc.get("test_imports") or [])  # sanitized MBPP
    setup = doc.get("test_setup_code") or ""  # full MBPP: may use names the solution defines
    return f"{imports}\n{code}\n\n{setup}\n" + "\n".join(doc["test_list"]) + "\n"


class CodeScorer:
    """Runs each answer's program against the task's tests; per document, pass@k for k <= samples."""

    metrics = [f"pass@{k}" for k in K_VALUES]
    unscaled: set[str] = set()

    def __init__(self) -> None:
        self.sandbox = Sandbox()

    def score_batch(self, items: Sequence[ToScore]) -> list[Scored]:
        """Run every answer's program in parallel; `passed` is 1 only when all tests pass."""
        programs = [build_program(i.answer, i.doc) for i in items]
        results = self.sandbox.run_many([p for p, i in zip(programs, items, strict=True) if not i.unclosed])
        out, it = [], iter(results)
        for program, item in zip(programs, items, strict=True):
            if item.unclosed:
                out.append(Scored(extracted=None, scores={"passed": 0.0},
                                  extra={"status": "failed", "stderr": "reasoning never closed"}))
                continue
            r = next(it)
            out.append(Scored(extracted=program, scores={"passed": float(r.status == "passed")},
                              extra={"status": r.status, "stderr": r.stderr_tail, "exec_s": round(r.seconds, 4)}))
        return out

    def per_doc(self, samples: Sequence[dict[str, Any]], k_max: int) -> dict[str, float]:
        """Unbiased pass@k from the document's n samples, for every k in (1, 10, 100) with k <= n."""
        n = len(samples)
        c = sum(int(s["scores"]["passed"]) for s in samples)
        return {f"pass@{k}": pass_at_k(n, c, k) for k in K_VALUES if k <= n}

    def describe(self) -> dict[str, Any]:
        """The sandbox's isolation mode and limits."""
        return {"sandbox": self.sandbox.describe()}

    def close(self) -> None:
        """Remove the sandbox's scratch space."""
        self.sandbox.close()
