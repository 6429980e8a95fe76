"""Write the stored completions the CI regression job rescores (results/baselines/completions/): answers written for
the purpose, in the forms models really give them, right and wrong, so that a scorer, extractor or prompt change
that moves a GSM8K, MATH-500 or HumanEval score shows as a paired drop. Deterministic (seeded).

Usage: python scripts/make_completions.py --data-dir ../shared/data [--out results/baselines/completions]
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path

GSM8K_DOCS, MATH500_DOCS = 200, 100
FRAC, DFRAC = "\\frac", "\\dfrac"


def gsm8k(rows: list[dict], rng: random.Random) -> list[str]:
    """Chain-of-thought answers ending in each of the forms lm-eval's strict and flexible filters treat differently."""
    out = []
    for row in rows[:GSM8K_DOCS]:
        gold = row["answer"].split("####")[-1].strip()
        wrong = str(int(gold.replace(",", "")) + rng.randint(1, 9)) if gold.replace(",", "").isdigit() else "0"
        steps = row["answer"].split("####")[0].strip()
        form = rng.random()
        if form < 0.35:
            out.append(f"{steps}\n#### {gold}")  # strict and flexible
        elif form < 0.5:
            out.append(f"{steps}\nSo the answer is ${gold}.")  # flexible only
        elif form < 0.6:
            out.append(f"{steps}\nThe final answer is $\\boxed{{{gold}}}$.")  # math-verify; flexible takes the box
        elif form < 0.67:
            out.append(f"#### {gold}\nCheck: {gold} - 1 = {wrong}")  # strict only (flexible takes the last number)
        elif form < 0.85:
            out.append(f"{steps}\n#### {wrong}")  # wrong
        else:
            out.append(f"{steps}\nI am not sure.")  # no answer
    return out


def math500(rows: list[dict], rng: random.Random) -> list[str]:
    """Boxed answers as given, in equivalent forms math-verify must credit, wrong, or without a box."""
    out = []
    for row in rows[:MATH500_DOCS]:
        answer, form = row["answer"], rng.random()
        if form < 0.5:
            out.append(f"Working through it, we get $\\boxed{{{answer}}}$.")
        elif form < 0.6 and answer.startswith(FRAC):
            out.append(f"Hence the answer is $\\boxed{{{answer.replace(FRAC, DFRAC, 1)}}}$.")
        elif form < 0.65:
            out.append(f"First guess \\boxed{{0}}, but correcting the sign gives \\boxed{{{answer}}}.")  # last box
        elif form < 0.85:
            out.append("After simplifying, the answer is $\\boxed{-1}$." if answer != "-1" else "$\\boxed{2}$")
        else:
            out.append(f"The answer is {answer}.")  # no box: scores 0
    return out


def humaneval(rows: list[dict], rng: random.Random) -> list[str]:
    """Chat answers: the right function (in the last of several fenced blocks, or as a bare body), or a wrong one."""
    out = []
    for row in rows:
        right = row["prompt"] + row["canonical_solution"]
        form = rng.random()
        if form < 0.4:
            out.append(f"Here is the function:\n```python\n{right}```")
        elif form < 0.55:
            out.append(f"A first sketch:\n```python\ndef {row['entry_point']}(*args):\n    pass\n```\n"
                       f"The complete version:\n```python\n{right}```")  # the last block is the answer
        elif form < 0.65:
            out.append(row["canonical_solution"])  # a bare body, indented, completing the prompt
        else:
            out.append(f"```python\n{row['prompt']}    return None\n```")  # wrong
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--out", type=Path, default=Path("results/baselines/completions"))
    args = parser.parse_args()
    read = lambda path: [json.loads(x) for x in (args.data_dir / path).read_text().splitlines() if x]  # noqa: E731
    gsm, mth, he = read("gsm8k/test.jsonl"), read("math500/test.jsonl"), read("humaneval/HumanEval.jsonl")
    sets = {
        "gsm8k": [(str(i), o) for i, o in enumerate(gsm8k(gsm, random.Random(1)))],
        "math500": [(r["unique_id"], o) for r, o in zip(mth, math500(mth, random.Random(2)), strict=False)],
        "humaneval": [(r["task_id"], o) for r, o in zip(he, humaneval(he, random.Random(3)), strict=True)],
    }
    args.out.mkdir(parents=True, exist_ok=True)
    for task, outputs in sets.items():
        lines = [json.dumps({"task": task, "doc_id": d, "sample_idx": 0, "output": o}) for d, o in outputs]
        (args.out / f"{task}.jsonl").write_text("\n".join(lines) + "\n")
        print(f"{args.out / task}.jsonl: {len(lines)} completions")


if __name__ == "__main__":
    main()
