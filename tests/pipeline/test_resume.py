"""A run killed midway (kill -9) or interrupted (Ctrl-C) is finished by --resume with every sample recorded and
scored exactly once, and a sampled request's tokens never depend on its batch or on the resume."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness.report.rows import load_row
from tests.contract import check_run
from tests.helpers import REPO, owb, samples

pytestmark = pytest.mark.slow  # real engines or subprocesses: `make test` runs these, `make test-fast` does not

SAMPLED_CARD = (REPO / "model_cards" / "tiny-qwen2.yaml").read_text().replace(
    "temperature: 0.0", "temperature: 1.0\n    top_p: 0.95\n    top_k: 40")


def _keys(run_dir: Path, task: str) -> list[str]:
    return [s["key"] for s in samples(run_dir, task)]


def _start(args: list[str]) -> subprocess.Popen[bytes]:
    """`owb ARGS` in its own process group, taking Ctrl-C as from a terminal: SIGINT not ignored, even where the tests
    were started with it ignored (a shell's background job is), which the child would inherit."""
    exe = Path(sys.executable).with_name("owb")
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        return subprocess.Popen([str(exe), *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                start_new_session=True)
    finally:
        signal.signal(signal.SIGINT, previous)


def _wait_for_samples(out: Path, task: str, at_least: int, proc: subprocess.Popen[bytes]) -> Path:
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None:
        found = list(out.glob(f"*/samples/{task}.jsonl")) if out.exists() else []
        if found and len(_keys(found[0].parent.parent, task)) >= at_least:
            return found[0].parent.parent
        time.sleep(0.02)
    raise AssertionError("the run never wrote enough samples")


def test_sampled_outputs_do_not_depend_on_batch_or_resume(tmp_path: Path) -> None:
    """A sampled run (temperature 1) at batch 5, killed with SIGKILL midway and resumed, writes for every request the
    same tokens as an uninterrupted run at batch 1: each request samples from its own seeded generator."""
    card = tmp_path / "sampled.yaml"
    card.write_text(SAMPLED_CARD)
    common = ["run", "--model", str(card), "--tasks", "gsm8k,math500", "--data", "fixture", "--samples", "3"]
    out = tmp_path / "killed"
    proc = _start([*common, "--batch-size", "5", "--output", str(out)])
    run_dir = _wait_for_samples(out, "gsm8k", 10, proc)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    before = _keys(run_dir, "gsm8k")
    assert 10 <= len(before) < 36, "the kill should land midway through gsm8k"
    assert json.loads((run_dir / "run.json").read_text())["status"] == "running"
    result = owb("run", "--resume", str(run_dir))
    assert result.returncode == 0, result.stderr
    record = check_run(run_dir)
    after = _keys(run_dir, "gsm8k")
    assert after[: len(before)] == before, "finished samples were redone or rewritten"
    assert len(after) == len(set(after)) == 12 * 3 and len(_keys(run_dir, "math500")) == 10 * 3
    assert record["tasks"]["gsm8k"]["n"] == 12
    alone = owb(*common, "--batch-size", "1", "--output", str(tmp_path / "alone"))
    assert alone.returncode == 0, alone.stderr
    alone_dir = next((tmp_path / "alone").iterdir())
    for task in ("gsm8k", "math500"):
        resumed = {s["key"]: s["raw_output"] for s in samples(run_dir, task)}
        single = {s["key"]: s["raw_output"] for s in samples(alone_dir, task)}
        assert resumed == single, task
        assert len(set(single.values())) > len(single) // 2, "sampling at temperature 1 gives varied outputs"


def test_ctrl_c_saves_what_finished_and_says_how_to_resume(tmp_path: Path) -> None:
    out = tmp_path / "runs"
    proc = _start(["run", "--model", "tiny-qwen2", "--tasks", "gsm8k,math500", "--data", "fixture", "--samples", "3",
                   "--batch-size", "1", "--output", str(out)])
    run_dir = _wait_for_samples(out, "gsm8k", 5, proc)
    os.killpg(proc.pid, signal.SIGINT)
    _, stderr = proc.communicate(timeout=120)
    lines = [x for x in stderr.decode().splitlines() if x.strip() and "generating" not in x]
    assert proc.returncode == 130, stderr.decode()
    assert lines[-1] == (f"interrupted: finished samples are saved; finish with `owb run --resume {run_dir}`")
    assert "Traceback" not in stderr.decode()
    saved = _keys(run_dir, "gsm8k")
    assert len(saved) >= 5
    result = owb("run", "--resume", str(run_dir))
    assert result.returncode == 0, result.stderr
    check_run(run_dir)
    assert len(saved) < 36, "interrupted before gsm8k was done"
    assert _keys(run_dir, "gsm8k")[: len(saved)] == saved and len(_keys(run_dir, "gsm8k")) == 36


def test_a_torn_last_line_is_dropped_and_regenerated(tmp_path: Path) -> None:
    out = tmp_path / "runs"
    assert owb("run", "--model", "tiny-qwen2", "--tasks", "gsm8k", "--data", "fixture", "--limit", "4",
               "--output", str(out)).returncode == 0
    run_dir = next(out.iterdir())
    path = run_dir / "samples" / "gsm8k.jsonl"
    lines = path.read_text().splitlines(keepends=True)
    path.write_text("".join(lines[:2]) + lines[2][: len(lines[2]) // 2])
    record = json.loads((run_dir / "run.json").read_text())
    record["status"] = "running"
    (run_dir / "run.json").write_text(json.dumps(record))
    result = owb("run", "--resume", str(run_dir))
    assert result.returncode == 0, result.stderr
    check_run(run_dir)
    assert sorted(_keys(run_dir, "gsm8k")) == sorted(f"gsm8k/{i}/0" for i in range(4))


def test_compare_reads_a_run_while_it_is_written(tmp_path: Path) -> None:
    """`owb compare` called again and again on a live run: it never cuts the samples file, and the run ends with every
    sample."""
    out = tmp_path / "runs"
    proc = _start(["run", "--model", "tiny-qwen2", "--tasks", "gsm8k", "--data", "fixture", "--samples", "4",
                   "--batch-size", "1", "--output", str(out)])
    run_dir = _wait_for_samples(out, "gsm8k", 2, proc)
    sizes, reads = [], 0
    while proc.poll() is None:
        try:
            load_row(run_dir)
        except Exception as exc:  # noqa: BLE001 - a run.json without metrics yet is fine; a cut file is not
            assert "not a valid sample" not in str(exc), exc
        reads += 1
        sizes.append((run_dir / "samples" / "gsm8k.jsonl").stat().st_size)
        time.sleep(0.05)  # a user re-running compare, not a spin that starves the run's engine threads of the 2 cores
    assert reads >= 10, "the run was read while it was written"
    assert proc.returncode == 0
    assert sizes == sorted(sizes), "the samples file shrank while it was read"
    assert len(_keys(run_dir, "gsm8k")) == 48
