"""A run killed midway is finished by --resume with every sample recorded and scored exactly once."""

from __future__ import annotations

import pytest

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.helpers import owb
from tests.contract import check_run

pytestmark = pytest.mark.slow  # real engines or subprocesses: `make test` runs these, `make test-fast` does not


def _keys(run_dir: Path, task: str) -> list[str]:
    path = run_dir / "samples" / f"{task}.jsonl"
    return [json.loads(x)["key"] for x in path.read_text().splitlines()] if path.exists() else []


def test_kill_midway_then_resume_completes_each_sample_once(tmp_path: Path) -> None:
    out = tmp_path / "runs"
    args = ["run", "--model", "tiny-qwen2", "--tasks", "gsm8k,math500", "--data", "fixture", "--samples", "3",
            "--batch-size", "1", "--output", str(out)]
    exe = Path(sys.executable).with_name("owb")
    proc = subprocess.Popen([str(exe), *args], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    deadline = time.time() + 300
    run_dir = None
    while time.time() < deadline:
        dirs = list(out.glob("*/samples/gsm8k.jsonl")) if out.exists() else []
        if dirs and len(_keys(dirs[0].parent.parent, "gsm8k")) >= 5:
            run_dir = dirs[0].parent.parent
            break
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert run_dir is not None, "the run never wrote samples"
    before = _keys(run_dir, "gsm8k")
    assert 5 <= len(before) < 36, "the kill should land midway through gsm8k"
    assert json.loads((run_dir / "run.json").read_text())["status"] == "running"

    result = owb("run", "--resume", str(run_dir))
    assert result.returncode == 0, result.stderr
    record = check_run(run_dir)
    after = _keys(run_dir, "gsm8k")
    assert after[: len(before)] == before, "finished samples were redone or rewritten"
    assert len(after) == len(set(after)) == 12 * 3
    assert len(_keys(run_dir, "math500")) == 10 * 3
    assert record["tasks"]["gsm8k"]["n"] == 12


def test_a_torn_last_line_is_dropped_and_regenerated(tmp_path: Path) -> None:
    out = tmp_path / "runs"
    assert owb("run", "--model", "tiny-qwen2", "--tasks", "gsm8k", "--data", "fixture", "--limit", "4",
               "--output", str(out)).returncode == 0
    run_dir = next(out.iterdir())
    samples = run_dir / "samples" / "gsm8k.jsonl"
    lines = samples.read_text().splitlines(keepends=True)
    samples.write_text("".join(lines[:2]) + lines[2][: len(lines[2]) // 2])
    record = json.loads((run_dir / "run.json").read_text())
    record["status"] = "running"
    (run_dir / "run.json").write_text(json.dumps(record))
    result = owb("run", "--resume", str(run_dir))
    assert result.returncode == 0, result.stderr
    check_run(run_dir)
    assert sorted(_keys(run_dir, "gsm8k")) == sorted(f"gsm8k/{i}/0" for i in range(4))
