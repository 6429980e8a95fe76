"""The README's worked example, rebuilt: a replayed run below its claim, the diagnosis that finds the short budget,
the run at the card's budget consistent with the claim; the figures the README prints are the ones owb gives."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.report.diagnose import diagnose_run
from harness.report.drift import diff_runs
from harness.report.rows import load_row
from tests.helpers import REPO, run_cli
from tests.report.worked_example import write

pytestmark = pytest.mark.slow  # two runs of 2,000 real MATH-500 samples each


def _run(replay: Path, data: Path, out: Path, *extra: str) -> Path:
    return run_cli("--model", "deepseek-r1-distill-qwen-1.5b", "--backend", "replay", "--replay", str(replay),
                   "--tasks", "math500", "--protocol", "r1", "--data-dir", str(data), "--output", str(out), *extra)


def test_the_readme_example_is_owbs_output(shared_data: Path, tmp_path: Path) -> None:
    before_file, after_file = write(tmp_path, shared_data)
    before = _run(before_file, shared_data, tmp_path / "runs", "--max-new-tokens", "4096")
    after = _run(after_file, shared_data, tmp_path / "runs")
    readme = (REPO / "README.md").read_text()
    verdicts = [load_row(path).published[("math500", "math_verify")][0].verdict for path in (before, after)]
    assert verdicts[0] is not None and verdicts[0].verdict == "below"
    assert verdicts[1] is not None and verdicts[1].verdict == "consistent"
    for verdict in verdicts:
        assert verdict.describe() in readme
    found = {f.kind: f for f in diagnose_run(before).tasks[0].findings}
    truncation = found["truncation"]
    assert truncation.count == 340 and truncation.effect is not None
    assert f"| math500 | truncation | 340 | 17.0 | {truncation.effect:+.1f} |" in readme
    assert "max_new_tokens 4096 (run) vs 32768 (card, thinking on)" in found["settings_differ"].differences
    assert {f.kind for f in diagnose_run(after).tasks[0].findings} == {"truncation", "no_answer", "unclosed_thinking",
                                                                       "repetition"}
    (change,) = diff_runs(before, after).scores
    assert change.change_ci95 is not None
    assert f"{change.change:+.2f} points [{change.change_ci95[0]:+.2f}, {change.change_ci95[1]:+.2f}]" in readme
