"""The one TPOT rule, and reading a run never changing it: a run being written, a torn last line only the writer repairs."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.core.errors import DataError
from harness.records.sample import Timings
from harness.records.store import RunDir
from tests.helpers import run_cli, write_replay


def test_one_tpot_rule() -> None:
    assert Timings.measured("request", 5, 0.2, 1.0).tpot_s == pytest.approx(0.2)
    assert Timings.measured("batch", 1, 0.2, 0.2).tpot_s is None
    assert Timings.measured("request", 3, None, 1.0).tpot_s is None


def _live_run(tmp_path: Path) -> Path:
    lines = [{"task": "gsm8k", "doc_id": str(i), "sample_idx": 0, "output": f"#### {i}"} for i in range(6)]
    run_dir = run_cli("--model", "tiny-qwen2", "--backend", "replay", "--replay",
                      str(write_replay(tmp_path / "r.jsonl", lines)), "--tasks", "gsm8k", "--data", "fixture",
                      "--limit", "6", "--output", str(tmp_path / "runs"))
    return run_dir


def test_reading_a_run_being_written_changes_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run_dir = _live_run(tmp_path)
    path = run_dir / "samples" / "gsm8k.jsonl"
    whole = path.read_bytes()
    lines = whole.splitlines(keepends=True)
    path.write_bytes(b"".join(lines[:4]) + lines[4][:40])  # the writer is halfway through sample 5
    live = path.read_bytes()
    from harness.report.rows import load_row

    assert len(list(RunDir(run_dir).samples("gsm8k").records())) == 4
    load_row(run_dir)  # owb compare's reader
    assert path.read_bytes() == live, "a reader cut the line being written"
    assert "skipped an incomplete last line" in capsys.readouterr().err
    path.write_bytes(whole)  # the writer finishes: nothing was lost
    assert len(list(RunDir(run_dir).samples("gsm8k").records())) == 6
    corrupt = lines[:2] + [b"{not json\n"] + lines[3:]
    path.write_bytes(b"".join(corrupt))
    with pytest.raises(DataError, match=r"gsm8k.jsonl line 3: not a valid sample"):
        list(RunDir(run_dir).samples("gsm8k").records())


def test_only_the_writer_repairs_a_torn_line(tmp_path: Path) -> None:
    run_dir = _live_run(tmp_path)
    path = run_dir / "samples" / "gsm8k.jsonl"
    lines = path.read_bytes().splitlines(keepends=True)
    path.write_bytes(b"".join(lines[:3]) + lines[3][:25])
    RunDir(run_dir).samples("gsm8k").repair()
    assert path.read_bytes() == b"".join(lines[:3])
