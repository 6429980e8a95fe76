"""The CI regression job (scripts/regression.sh) sees maths and code: its stored completions rescored by a copy of
owb with an extractor broken on purpose fail the paired check; refreshing baselines needs a clean tree."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import REPO, SHARED_DATA

pytestmark = pytest.mark.slow  # subprocesses over the real data: `make test` runs these


def _copy(tmp_path: Path) -> Path:
    """The project's tree without its virtualenv, runs or git history."""
    copy = tmp_path / "owb"
    shutil.copytree(REPO, copy, ignore=shutil.ignore_patterns(".venv", "runs", ".git", "__pycache__", "*.egg-info"))
    return copy


def _job(copy: Path, jobs: str, *args: str) -> subprocess.CompletedProcess[str]:
    """scripts/regression.sh of the copy, with the copy's harness (not the installed one) as owb."""
    env = {**os.environ, "JOBS": jobs, "OWB": f"{sys.executable} -m harness", "PYTHONPATH": str(copy),
           "OWB_DATA_DIR": str(SHARED_DATA)}
    return subprocess.run(["bash", str(copy / "scripts" / "regression.sh"), *args], capture_output=True, text=True,
                          env=env, cwd=copy, timeout=900)


@pytest.fixture
def copy(tmp_path: Path, shared_data: Path) -> Path:
    return _copy(tmp_path)


def test_the_stored_completions_pass_against_their_baselines(copy: Path) -> None:
    result = _job(copy, "gsm8k math500 humaneval")
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("**Result: PASS**") == 3


def test_a_broken_gsm8k_extractor_fails_the_job(copy: Path) -> None:
    """flexible-extract taking the first number instead of the last (a plausible slip) drops flexible_match."""
    maths = copy / "harness" / "scoring" / "maths.py"
    source = maths.read_text()
    last = "next(g for g in found[-1] if g)"
    assert last in source
    maths.write_text(source.replace(last, "next(g for g in FLEXIBLE.findall(text)[0] if g)"))
    result = _job(copy, "gsm8k")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "| gsm8k | flexible_match | 200 |" in result.stdout and "**REGRESSION**" in result.stdout
    assert "McNemar exact" in result.stdout and "**Result: FAIL**" in result.stdout


def test_a_broken_code_extractor_fails_the_job(copy: Path) -> None:
    """Taking the first fenced block instead of the last (the sketch, not the answer) drops HumanEval pass@1."""
    code = copy / "harness" / "scoring" / "code.py"
    source = code.read_text()
    assert "code = (defines or blocks or [answer])[-1]" in source
    code.write_text(source.replace("code = (defines or blocks or [answer])[-1]", "code = (blocks or [answer])[0]"))
    result = _job(copy, "humaneval")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "| humaneval | pass@1 | 164 |" in result.stdout and "**REGRESSION**" in result.stdout


def test_refreshing_baselines_needs_a_clean_tree(copy: Path) -> None:
    git = ["git", "-C", str(copy), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-qm", "snapshot"], check=True)
    (copy / "README.md").write_text((copy / "README.md").read_text() + "\nan uncommitted edit\n")
    result = _job(copy, "gsm8k", "--refresh")
    assert result.returncode == 2 and "the tree has uncommitted changes" in result.stderr
    subprocess.run([*git, "checkout", "README.md"], check=True)
    result = _job(copy, "gsm8k", "--refresh")
    assert result.returncode == 0 and "baseline refreshed" in result.stdout, result.stderr
    commit = subprocess.run([*git, "rev-parse", "HEAD"], capture_output=True, text=True, check=True).stdout.strip()
    import json

    record = json.loads((copy / "results" / "baselines" / "replayed-gsm8k" / "run.json").read_text())
    assert (record["environment"]["git_commit"], record["environment"]["git_dirty"]) == (commit, False)
