"""`owb view` as a command: the banner with the SSH forward, a start that adds little to owb's own for 50 runs, no
engine imported, one `error:` line for a missing extra or a port in use, and `--export`."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.helpers import REPO, run_main
from tests.view.fixture_runs import Fixtures

OWB = str(Path(sys.executable).with_name("owb"))


def _first_line(args: list[str]) -> tuple[float, str, subprocess.Popen[str]]:
    started = time.perf_counter()
    proc = subprocess.Popen([OWB, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ})
    assert proc.stdout is not None
    line = proc.stdout.readline()
    return time.perf_counter() - started, line, proc


@pytest.mark.slow
def test_owb_view_starts_quickly_over_50_runs(small_runs: Fixtures, tmp_path: Path) -> None:
    """The time to the banner, less the time `owb --help` takes on this machine now (owb's own start), is under
    half a second for 50 runs; the leaderboard of 50 runs is then served in under a second."""
    for i in range(50):
        shutil.copytree(small_runs.a, tmp_path / "runs" / f"run-{i:02d}")
    help_started = time.perf_counter()
    subprocess.run([OWB, "--help"], capture_output=True, check=True)
    owb_start = time.perf_counter() - help_started
    took, banner, proc = _first_line(["view", str(tmp_path / "runs"), "--port", "0"])
    try:
        assert banner.startswith(f"owb view: 50 runs under {tmp_path / 'runs'}/ at http://127.0.0.1:")
        url = banner.split(" at ")[1].split()[0]
        assert f"(over SSH: ssh -L {url.rsplit(':', 1)[1]}:127.0.0.1:{url.rsplit(':', 1)[1]} HOST)" in banner
        asked = time.perf_counter()
        page = urllib.request.urlopen(url + "/").read().decode()
        served = time.perf_counter() - asked
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    assert page.count('<tr class="run" ') == 50
    print(f"owb view over 50 runs: banner after {took:.2f} s (owb --help {owb_start:.2f} s), leaderboard {served:.2f} s")
    assert took - owb_start < 0.5 and served < 1.0


@pytest.mark.slow
def test_the_viewer_imports_no_engine(small_runs: Fixtures) -> None:
    """Every page served imports none of torch, transformers, vLLM or lm-eval."""
    code = f"""
import sys
from pathlib import Path
from starlette.testclient import TestClient
from harness.view.app import create_app
client = TestClient(create_app([Path({str(small_runs.runs)!r})], ["testserver"]))
for url in ("/", "/plots", "/run/replay-a", "/run/replay-a/humaneval?doc=Fixture/1", "/diff/replay-a/replay-b/gsm8k"):
    assert client.get(url).status_code == 200, url
print([m for m in ("torch", "transformers", "vllm", "lm_eval") if m in sys.modules])
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True)
    assert out.stdout.strip() == "[]"


def test_a_missing_extra_is_one_error_line(tmp_path: Path) -> None:
    code = ("import sys; sys.modules['starlette'] = None; from harness.cli import main; "
            f"sys.argv = ['owb', 'view', {str(tmp_path)!r}]; main()")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    assert (out.returncode, out.stderr) == (
        2, "error: owb view needs starlette (the view extra): pip install 'owb[view]'\n")


def test_a_port_in_use_or_a_missing_folder_is_one_error_line(small_runs: Fixtures, tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        ended = run_main("view", str(small_runs.runs), "--port", str(port))
    assert ended.returncode == 2
    assert ended.stderr.startswith(f"error: cannot listen on 127.0.0.1:{port} (Address already in use)")
    missing = run_main("view", str(tmp_path / "nowhere"))
    assert (missing.returncode, missing.stderr) == (2, f"error: not a directory: {tmp_path / 'nowhere'}\n")


def test_export_writes_a_static_copy(small_runs: Fixtures, tmp_path: Path) -> None:
    ended = run_main("view", str(small_runs.runs), "--export", str(tmp_path / "share"))
    assert ended.returncode == 0, ended.stderr
    assert ended.stdout.startswith("wrote ") and f"to {tmp_path / 'share'}/index.html" in ended.stdout
    assert (tmp_path / "share" / "runs" / "big-12k" / "gsm8k.disagree.html").is_file()
