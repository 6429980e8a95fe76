"""The README's worked example: replayed R1-Distill-Qwen-1.5B outputs on the real MATH-500 (k = 4, the R1 protocol),
written for the purpose (no model ran). The same 2,000 samples twice: `before.jsonl` as a 4,096-token budget leaves
them (the long ones cut off inside their think block, finish_reason length) and `after.jsonl` at the card's 32,768
tokens. About 1% of samples loop until the budget in both.

Usage: python -m tests.report.worked_example OUT_DIR [--data-dir ../shared/data]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

SEED = 23
SHORT_BUDGET = 4096
FULL_BUDGET = 32768
LOOP_SHARE = 0.01
WRONG = "7919"  # a wrong answer no MATH-500 problem has


def _finished(answer: str) -> str:
    return (f"<think>\nLet me work through this carefully, checking each step.\n</think>\n\n"
            f"The final answer is $\\boxed{{{answer}}}$.")


def _cut() -> str:
    return "<think>\nLet me work through this carefully, checking each step. First, consider the cases one by one"


def _loop() -> str:
    return "<think>\nLet me work through this carefully.\n" + "Wait, let me recompute the sum. " * 60


def sample_lines(rows: list[dict], budget: int) -> list[dict]:
    """Replay lines for every problem x 4 samples at a token budget: a sample longer than the budget is cut off."""
    rng = np.random.default_rng(SEED)
    lines = []
    for row in rows:
        solve = rng.beta(1.3, 0.22)  # per-problem chance of a right answer, mean about 0.86
        typical = 1800 * np.exp(1.2 * (1 - solve) + 0.5 * rng.normal())  # harder problems think longer
        for k in range(4):
            length = int(typical * np.exp(0.3 * rng.normal()))
            right, loops = rng.random() < solve, rng.random() < LOOP_SHARE
            if loops or length > budget:
                text, tokens, reason = (_loop() if loops else _cut()), budget, "length"
            else:
                text, tokens, reason = _finished(row["answer"] if right else WRONG), length, "stop"
            lines.append({"task": "math500", "doc_id": row["unique_id"], "sample_idx": k, "output": text,
                          "finish_reason": reason, "output_tokens": tokens})
    return lines


def write(out: Path, data_dir: Path) -> tuple[Path, Path]:
    """before.jsonl (4,096-token budget) and after.jsonl (32,768) under `out`."""
    rows = [json.loads(x) for x in (data_dir / "math500" / "test.jsonl").read_text().splitlines()]
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, budget in (("before", SHORT_BUDGET), ("after", FULL_BUDGET)):
        path = out / f"{name}.jsonl"
        path.write_text("".join(json.dumps(x) + "\n" for x in sample_lines(rows, budget)))
        paths.append(path)
    return paths[0], paths[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("out", type=Path)
    parser.add_argument("--data-dir", type=Path, default=Path(__file__).resolve().parents[3] / "shared" / "data")
    args = parser.parse_args()
    for path in write(args.out, args.data_dir):
        print(path)


if __name__ == "__main__":
    main()
