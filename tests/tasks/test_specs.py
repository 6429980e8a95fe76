"""Task specs are checked against their scorer when they are loaded."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.core.errors import ConfigError
from harness.tasks.base import load_task_file
from tests.helpers import REPO


@pytest.mark.parametrize(
    ("patch", "message"),
    [
        ("scorer: {name: math}", "ok"),
        ("scorer: {name: maths}", "unknown scorer 'maths'"),
        ("scorer: {name: math, args: {answer: boxed}}", "scorer math: invalid argument answer"),
        ("metrics: [math_verify, math_verfy]", "reduces score 'math_verfy', which scorer math does not write"),
        ("primary_metric: accuracy", "primary_metric accuracy is not one of the metrics"),
        ("metrics: [{name: pass@k, score: math_verify, reduce: pass_at_k}]", "pass_at_k needs `k: [...]`"),
    ],
)
def test_task_specs_are_checked_against_their_scorer(tmp_path: Path, patch: str, message: str) -> None:
    base = (REPO / "tasks" / "math500.yaml").read_text().splitlines()
    key = patch.split(":")[0]
    lines = [line for line in base if not line.startswith(key + ":")]
    if key == "metrics":  # drop the block that followed `metrics:`
        start = next(i for i, line in enumerate(base) if line.startswith("metrics:"))
        lines = base[:start] + [x for x in base[start + 1:] if not x.startswith("  - ")]
    path = tmp_path / "task.yaml"
    path.write_text("\n".join([*lines, patch]) + "\n")
    if message == "ok":
        assert load_task_file(path).scorer.name == "math"
        return
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("(", r"\(")):
        load_task_file(path)
