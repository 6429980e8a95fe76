"""Write the example runs committed under results/examples/: replayed outputs (written for the purpose, no model
run) on the fixture tasks, for cards whose published claims differ in benchmark, thinking mode and protocol.
`owb compare results/examples/*` then shows each claim only beside the run it was measured like.

Usage: python scripts/example_runs.py [--out results/examples]
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
from pathlib import Path

from harness.pipeline.runner import run
from harness.records.run import RunOptions

FIXTURES = Path(__file__).resolve().parent.parent / "tasks" / "fixtures"
RIGHT = {"math500": [1, 1, 1, 0, 1, 1, 0, 1, 1, 1], "gsm8k": [1, 0, 1, 1, 1, 1, 0, 1, 1, 1, 1, 0]}
# (name, card, tasks, thinking, protocol, samples)
EXAMPLES = [
    ("qwen3-8b-thinking", "qwen3-8b", ("math500",), "on", None, 1),
    ("qwen3-8b-no-thinking", "qwen3-8b", ("math500", "gsm8k"), "off", None, 1),
    ("hunyuan-7b-math500", "hunyuan-7b-instruct", ("math500",), "on", None, 1),
    ("r1-distill-7b-greedy-like", "deepseek-r1-distill-qwen-7b", ("math500",), None, None, 1),
    ("r1-distill-7b-protocol-r1", "deepseek-r1-distill-qwen-7b", ("math500",), None, "r1", None),
]


def output(task: str, row: dict, right: bool, thinking: bool) -> str:
    """A plausible answer: the right one or a wrong one, after a short think block where the model thinks."""
    think = "Let me work through it step by step.\n</think>\n\n" if thinking else ""
    if task == "gsm8k":
        gold = row["answer"].split("####")[-1].strip()
        return f"{think}The total is {gold if right else 0}.\n#### {gold if right else 0}"
    return f"{think}So the answer is $\\boxed{{{row['answer'] if right else '0'}}}$."


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=Path("results/examples"))
    args = parser.parse_args()
    rows = {t: [json.loads(x) for x in (FIXTURES / f"{t}.jsonl").read_text().splitlines()] for t in RIGHT}
    with tempfile.TemporaryDirectory() as tmp:
        for name, card, tasks, thinking, protocol, samples in EXAMPLES:
            k = 4 if protocol else samples or 1
            replay = Path(tmp) / f"{name}.jsonl"
            lines = [{"task": t, "doc_id": str(r.get("unique_id", i)), "sample_idx": j,
                      "output": output(t, r, bool(RIGHT[t][i]) and (k == 1 or j < k - i % 2), thinking != "off")}
                     for t in tasks for i, r in enumerate(rows[t]) for j in range(k)]
            replay.write_text("\n".join(json.dumps(x) for x in lines) + "\n")
            opts = RunOptions(model=card, backend="replay", tasks=tasks, thinking=thinking, protocol=protocol,
                              samples=samples if not protocol else None, data_source="fixture", output=tmp,
                              backend_args={"replay": f"{name}.jsonl (written by scripts/example_runs.py)"})
            run_dir = run(opts.model_copy(update={"backend_args": {"replay": str(replay)}}))
            target = args.out / name
            shutil.rmtree(target, ignore_errors=True)
            shutil.copytree(run_dir.path, target)
            print(f"{target}: {card} {tasks} thinking {thinking or 'default'} protocol {protocol}")


if __name__ == "__main__":
    main()
