"""Shared fixtures: one OWB_HOME per session (tiny models made once), the shared real-data directory, a CLI runner."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SHARED_DATA = Path(os.environ.get("OWB_DATA_DIR") or REPO.parent / "shared" / "data")


@pytest.fixture(scope="session", autouse=True)
def owb_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Tiny models are made once per test session under a private OWB_HOME."""
    home = tmp_path_factory.mktemp("owb_home")
    old = os.environ.get("OWB_HOME")
    os.environ["OWB_HOME"] = str(home)
    yield home
    if old is None:
        os.environ.pop("OWB_HOME", None)
    else:
        os.environ["OWB_HOME"] = old


@pytest.fixture
def shared_data() -> Path:
    """The real benchmark data beside the checkout; tests using it skip where it is absent."""
    if not (SHARED_DATA / "gsm8k" / "test.jsonl").is_file():
        pytest.skip(f"real data not found at {SHARED_DATA}")
    return SHARED_DATA


def owb(*args: str, cwd: Path | None = None, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    """Run the real `owb` console script in a subprocess."""
    exe = Path(sys.executable).with_name("owb")
    return subprocess.run([str(exe), *args], capture_output=True, text=True, cwd=cwd, timeout=timeout,
                          env={**os.environ, "COLUMNS": "160"})
