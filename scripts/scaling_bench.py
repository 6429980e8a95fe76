"""How owb's cost grows with the size of a run: wall time and peak RSS of `owb run` (replayed outputs), `owb rescore`,
`owb compare`, `owb check` and `owb view`'s index of a run (built cold), and the size of the run directory, for
replayed GSM8K runs of N samples with outputs of about C characters (figures, not a timed test).

    python scripts/scaling_bench.py --samples 1000,4000,16000,64000 --chars 300,20000 --data-dir ../shared/data

Each run is GSM8K's 1,319 documents x K samples (K = N / 1,319, at least 1); each output is real GSM8K solution text
(of other problems) up to C characters, ending in a final answer that is right for about 70% of samples.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from harness.measure.environment import environment

VIEW_INDEX = ("import sys\nfrom pathlib import Path\nfrom harness.records.store import RunDir\n"
              "from harness.view.index import Indexes\n"
              "run = RunDir(Path(sys.argv[1]))\nrecord = run.read_run()\n"
              "for task in record.tasks:\n"
              "    Indexes().of(run.samples(task), record.model.card.reasoning.think_end)\n")
MEASURE = ("import resource, subprocess, sys, time\n"
           "start = time.perf_counter()\n"
           "code = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE).returncode\n"
           "wall = time.perf_counter() - start\n"
           "print(code, wall, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n")


def measure(command: list[str]) -> tuple[float, float]:
    """(wall seconds, peak RSS in MB) of a command run in a fresh process; a failed command stops the script."""
    out = subprocess.run([sys.executable, "-c", MEASURE, *command], capture_output=True, text=True, check=True)
    code, wall, rss_kb = out.stdout.split()
    if code != "0":
        raise SystemExit(f"failed ({code}): {' '.join(command)}")
    return float(wall), int(rss_kb) / 1024


def replay_file(path: Path, data_dir: Path, samples: int, chars: int, seed: int = 0) -> tuple[int, int, int]:
    """Write a replay file of GSM8K outputs; returns (documents, K, characters of output text)."""
    rows = [json.loads(line) for line in (data_dir / "gsm8k" / "test.jsonl").read_text().splitlines()]
    docs = min(len(rows), samples)
    k = max(1, round(samples / docs))
    rng = random.Random(seed)
    total = 0
    with path.open("w") as handle:
        for doc in range(docs):
            gold = rows[doc]["answer"].split("####")[-1].strip()
            for i in range(k):
                body = ""
                while len(body) < chars - 40:
                    body += rows[rng.randrange(len(rows))]["answer"].replace("####", "so") + "\n"
                answer = gold if rng.random() < 0.7 else str(rng.randrange(1000))
                output = body[: max(chars - 40, 0)] + f"\nThe answer is {answer}.\n#### {answer}"
                total += len(output)
                handle.write(json.dumps({"task": "gsm8k", "doc_id": str(doc), "sample_idx": i, "output": output})
                             + "\n")
    return docs, k, total


def size_mb(path: Path) -> float:
    """Bytes of every file under a directory, in MB."""
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / 1e6


def one_size(owb: str, work: Path, data_dir: Path, samples: int, chars: int, compress: str) -> dict[str, float]:
    """Every figure for one run size (owb's home, and so the viewer's index cache, fresh in `work`)."""
    os.environ["OWB_HOME"] = str(work / "home")
    replay = work / "replay.jsonl"
    docs, k, text = replay_file(replay, data_dir, samples, chars)
    out = work / "runs"
    base = [owb, "run", "--model", "tiny-qwen2", "--backend", "replay", "--replay", str(replay), "--tasks", "gsm8k",
            "--data-dir", str(data_dir), "--limit", str(docs), "--samples", str(k), "--compress", compress,
            "--output", str(out)]
    figures = {"samples": docs * k, "chars": chars, "text_mb": text / 1e6}
    figures["run_s"], figures["run_mb"] = measure(base)
    run_a = max(out.iterdir())
    figures["dir_mb"] = size_mb(run_a)
    figures["rescore_s"], figures["rescore_mb"] = measure([owb, "rescore", str(run_a)])
    measure(base)
    run_b = max(out.iterdir())
    figures["compare_s"], figures["compare_mb"] = measure([owb, "compare", "--format", "md", str(run_a), str(run_b)])
    figures["check_s"], figures["check_mb"] = measure([owb, "check", "--baseline", str(run_a), "--candidate",
                                                       str(run_b)])
    figures["view_index_s"], figures["view_index_mb"] = measure([sys.executable, "-c", VIEW_INDEX, str(run_a)])
    shutil.rmtree(out)
    return figures


COLUMNS = ("samples", "chars", "text_mb", "dir_mb", "run_s", "run_mb", "rescore_s", "rescore_mb", "compare_s",
           "compare_mb", "check_s", "check_mb", "view_index_s", "view_index_mb")


def main() -> None:
    """Measure every (samples, chars) pair and print a markdown table."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", default="1000,4000,16000", help="comma-separated sample counts")
    parser.add_argument("--chars", default="300,20000", help="comma-separated output lengths in characters")
    parser.add_argument("--data-dir", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data")
    parser.add_argument("--compress", default="none", choices=("none", "gzip", "zstd"))
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    owb = str(Path(sys.executable).with_name("owb"))
    rows = []
    print("| " + " | ".join(COLUMNS) + " |\n|" + "---:|" * len(COLUMNS), flush=True)
    for chars in (int(c) for c in args.chars.split(",")):
        for samples in (int(n) for n in args.samples.split(",")):
            with tempfile.TemporaryDirectory(prefix="owb-scaling-") as work:
                figures = one_size(owb, Path(work), args.data_dir, samples, chars, args.compress)
            rows.append(figures)
            print("| " + " | ".join(f"{figures[c]:.1f}" if isinstance(figures[c], float) else str(figures[c])
                                    for c in COLUMNS) + " |", flush=True)
    if args.json:
        figures = {"compress": args.compress, "environment": environment().model_dump(mode="json"), "rows": rows}
        args.json.write_text(json.dumps(figures, indent=1) + "\n")


if __name__ == "__main__":
    main()
