"""The GPU evidence in one command: bandwidth, plain `generate` vs owb's hf fast paths, raw vLLM vs owb's vLLM backend,
a timed `owb run`, lm-eval's backends and a token-identity smoke, on GSM8K chat prompts; JSON + markdown with anchors.

Usage: scripts/gpu_suite.sh [--out DIR] [--steps a,b] [--budget-s S]   (CUDA + vLLM; the device calls: gpu_suite.sh)
       scripts/gpu_suite.sh --cpu-smoke --out DIR                      (the same steps on tiny shapes, on a CPU)
Each step runs in a child process under what is left of --budget-s; one that fails or runs out of time is recorded
with its reason and the rest go on. <out>/suite.json and suite.md are rewritten after every step, merged into if there.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

from benchmarks.gpu_suite.orchestrate import run_child, run_suite
from benchmarks.gpu_suite.profile import GPU, REPO, SMOKE, gpu_name, slug


def main() -> None:
    """Run the suite (or, with --child, some of its steps)."""
    parser = argparse.ArgumentParser(prog="benchmarks.gpu_suite", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cpu-smoke", action="store_true", help="tiny shapes on the CPU, a few minutes")
    parser.add_argument("--out", type=Path, default=None, help="default results/bench/<gpu-name>")
    parser.add_argument("--steps", default=None, help="comma-separated steps (default: all, in order)")
    parser.add_argument("--budget-s", type=float, default=None, help="seconds for all steps (GPU 420, smoke 540)")
    parser.add_argument("--work", type=Path, default=None, help="scratch directory (default: a temporary one)")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        run_child(args.child.split(","), args.work)
    started = time.perf_counter()
    profile = SMOKE if args.cpu_smoke else GPU
    device_name = "cpu" if args.cpu_smoke else gpu_name()
    out: Path = args.out or REPO / "results" / "bench" / slug(device_name)
    out.mkdir(parents=True, exist_ok=True)
    work = args.work or Path(tempfile.mkdtemp(prefix="owb-gpu-suite-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        run_suite(args, profile, device_name, out, work, started)
    finally:
        if not args.work:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
