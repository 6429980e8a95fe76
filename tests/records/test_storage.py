"""Runs survive the disk and each other: a full disk ends with one clear error and a run that --resume finishes;
two owb processes never write into one run directory."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest

from harness.core.errors import ConfigError, StorageError
from harness.pipeline.runner import run
from harness.records.run import RunOptions
from harness.records.store import RunDir
from tests.contract import check_run
from tests.helpers import FakeBackend, samples


def _mount(target: Path, size: str) -> None:
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(target)], check=True)


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a small tmpfs needs root")
def test_a_full_disk_ends_cleanly_and_resume_finishes(fake_backend: type[FakeBackend], tmp_path: Path) -> None:
    """A 96 KiB tmpfs fills up while samples are appended: one StorageError naming the file and how to resume; after
    the disk grows, --resume finishes with every sample once (a line torn by the full disk is cut off first)."""
    disk = tmp_path / "disk"
    disk.mkdir()
    _mount(disk, "96k")
    try:
        answer = "word " * 400 + "\\boxed{8}"
        opts = RunOptions(model="tiny-qwen2", backend="fake", tasks=("gsm8k", "math500"), samples=4,
                          data_source="fixture", output=str(disk), batch_size=2, backend_args={"answer": answer})
        with pytest.raises(StorageError) as failed:
            run(opts)
        message = str(failed.value)
        assert message.startswith("no space left on the device writing ") and "owb run --resume" in message
        run_dir = next(disk.iterdir())
        written = samples(run_dir, "gsm8k") if (run_dir / "samples" / "gsm8k.jsonl").exists() else []
        subprocess.run(["mount", "-o", "remount,size=8m", str(disk)], check=True)
        run(opts, resume=run_dir)
        record = check_run(run_dir)
        keys = [s["key"] for s in samples(run_dir, "gsm8k")]
        assert keys[: len(written)] == [s["key"] for s in written] and len(keys) == len(set(keys)) == 48
        assert record["tasks"]["math500"]["n_samples"] == 40
    finally:
        subprocess.run(["umount", str(disk)], check=False)


def test_two_processes_never_share_a_run_directory(tmp_path: Path) -> None:
    """A run directory is claimed atomically, and a run being written is locked: a second writer is refused."""
    run_dir = RunDir(tmp_path / "20261123-000000-x-hf-abcdef")
    run_dir.create()
    with pytest.raises(ConfigError, match="run directory already exists"):
        RunDir(run_dir.path).create()
    with run_dir.writing():
        holder = subprocess.run(
            [os.sys.executable, "-c", "from pathlib import Path; from harness.records.store import RunDir\n"
             f"with RunDir(Path({str(run_dir.path)!r})).writing(): pass"], capture_output=True, text=True)
        assert holder.returncode != 0 and f"is being written by another owb process (pid {os.getpid()})" in holder.stderr
    with run_dir.writing():  # released: the next writer gets it
        pass


@pytest.mark.slow
def test_resuming_a_run_that_is_still_running_is_refused(tmp_path: Path) -> None:
    from tests.helpers import owb

    exe = Path(os.sys.executable).with_name("owb")
    proc = subprocess.Popen([str(exe), "run", "--model", "tiny-qwen2", "--tasks", "gsm8k", "--data", "fixture",
                             "--samples", "4", "--batch-size", "1", "--output", str(tmp_path)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 300
        while time.time() < deadline and not list(tmp_path.glob("*/samples/gsm8k.jsonl")):
            time.sleep(0.05)
        run_dir = next(tmp_path.iterdir())
        second = owb("run", "--resume", str(run_dir))
        assert second.returncode == 2 and "is being written by another owb process" in second.stderr
    finally:
        proc.wait(timeout=300)
    assert proc.returncode == 0
    check_run(run_dir)
