"""Session fixtures: one OWB_HOME per session (tiny models made once) and the shared real-data directory; each
test's changes to the environment (the in-process CLI quietens libraries through it) are undone after it."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path
from unittest import mock

import pytest

from harness.engines.registry import BACKENDS, register_backend
from tests.helpers import SHARED_DATA, FakeBackend

try:  # rouge-score imports absl, whose log handler keeps the sys.stderr of the moment it was imported (pytest's
    # capture file at collection) and closes that stream when logging is reconfigured (vLLM's engine start does)
    # while sys.stderr is another object (the in-process CLI's): pytest's capture would be closed under it.
    from absl import logging as absl_logging

    absl_logging.get_absl_handler().python_handler.stream = sys.__stderr__
except ImportError:
    pass


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


@pytest.fixture(autouse=True)
def own_environment() -> Iterator[None]:
    """os.environ as it was before the test, so a setting cannot leak into later tests or their subprocesses."""
    with mock.patch.dict(os.environ):
        yield


@pytest.fixture
def shared_data() -> Path:
    """The real benchmark data beside the checkout; tests using it skip where it is absent."""
    if not (SHARED_DATA / "gsm8k" / "test.jsonl").is_file():
        pytest.skip(f"real data not found at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture
def fake_backend() -> Iterator[type[FakeBackend]]:
    """The in-process test backend, registered as `fake` for the test only."""
    register_backend("fake", FakeBackend)
    FakeBackend.opened.clear()
    yield FakeBackend
    BACKENDS.unregister("fake")
