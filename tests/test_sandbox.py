"""Hostile programs through `owb run --backend replay` on a code task: the run finishes, each is recorded as
failed or timeout, and nothing outside the sandbox changes."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import threading
import uuid
from pathlib import Path

import pytest

from harness.scorers.sandbox import BASE_UID, Sandbox, detect_mode
from tests.helpers import REPO
from tests.contract import check_run

pytestmark = pytest.mark.slow  # real engines or subprocesses: `make test` runs these, `make test-fast` does not

# Each attack sits in the body of the fixture's `add`; it returns the right answer only if the attack worked.
ATTACKS = {
    "fork_bomb": "import os\n    while True:\n        os.fork()",
    "memory_bomb": "blob = bytearray(64 << 30)\n    return a + b",
    "memory_growth": "chunks = []\n    while True:\n        chunks.append(bytearray(256 << 20))",
    "infinite_loop": "while True:\n        pass",
    "long_sleep": "import time\n    time.sleep(3600)\n    return a + b",
    "write_outside": "open({outside!r}, 'w').write('pwned')\n    return a + b",
    "write_repo": "open({repo_file!r}, 'w').write('pwned')\n    return a + b",
    "delete_files": "import os\n    os.remove({victim!r})\n    return a + b",
    "delete_repo_file": "import os\n    os.remove({repo_victim!r})\n    return a + b",
    "network": "import socket\n    socket.create_connection(('127.0.0.1', {port}), timeout=2).sendall(b'pwned')\n    return a + b",
    "kill_parent": "import os, signal\n    os.kill({parent}, signal.SIGKILL)\n    return a + b",
    "kill_parent_group": "import os, signal\n    os.killpg({parent_group}, signal.SIGKILL)\n    return a + b",
    "kill_ppid": "import os, signal\n    ppid = os.getppid()\n    assert ppid > 1\n    os.kill(ppid, signal.SIGKILL)\n    return a + b",
    "os_exit_zero": "import os\n    os._exit(0)",
    "stdout_flood": "while True:\n        print('x' * 65536)",
    "read_parent_env": (
        "import os, glob\n"
        "    seen = ' '.join(os.environ.values())\n"
        "    for path in glob.glob('/proc/*/environ'):\n"
        "        try:\n"
        "            seen += open(path, 'rb').read().decode('latin-1')\n"
        "        except OSError:\n"
        "            pass\n"
        "    assert {secret!r} in seen\n"
        "    return a + b"
    ),
}


@pytest.fixture
def listener() -> tuple[int, list[bytes]]:
    """A TCP server on loopback that records anything it receives."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    server.settimeout(0.2)
    received: list[bytes] = []
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except OSError:
                continue
            received.append(conn.recv(100) or b"(connected)")
            conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield server.getsockname()[1], received
    stop.set()
    thread.join()
    server.close()


def _sandbox_processes() -> list[str]:
    out = subprocess.run(["ps", "-eo", "uid=,pid=,args="], capture_output=True, text=True).stdout
    return [line for line in out.splitlines() if BASE_UID <= int(line.split()[0]) < BASE_UID + 1000]


def test_hostile_programs_fail_and_change_nothing(tmp_path: Path, listener: tuple[int, list[bytes]]) -> None:
    port, received = listener
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    repo_victim = REPO / f".sandbox-victim-{uuid.uuid4().hex}"
    repo_victim.write_text("keep me")
    outside, repo_file = tmp_path / "outside.txt", REPO / f".sandbox-pwned-{uuid.uuid4().hex}"
    secret = f"owb-secret-{uuid.uuid4().hex}"
    values = {"outside": str(outside), "repo_file": str(repo_file), "victim": str(victim),
              "repo_victim": str(repo_victim), "port": port, "parent": os.getpid(), "parent_group": os.getpgid(0),
              "secret": secret}
    fixture = json.loads((REPO / "tasks" / "fixtures" / "humaneval.jsonl").read_text().splitlines()[0])
    names = sorted(ATTACKS)
    lines = [{"task": "humaneval", "doc_id": fixture["task_id"], "sample_idx": i,
              "output": f"```python\ndef add(a: int, b: int) -> int:\n    {ATTACKS[name].format(**values)}\n```"}
             for i, name in enumerate(names)]
    replay = tmp_path / "hostile.jsonl"
    replay.write_text("\n".join(json.dumps(x) for x in lines))
    out = tmp_path / "runs"
    try:
        result = subprocess.run(
            [str(Path(os.sys.executable).with_name("owb")), "run", "--model", "tiny-qwen2", "--backend", "replay",
             "--replay", str(replay), "--tasks", "humaneval", "--data", "fixture", "--limit", "1",
             "--samples", str(len(names)), "--output", str(out)],
            capture_output=True, text=True, timeout=600, env={**os.environ, "OWB_TEST_SECRET": secret})
        assert result.returncode == 0, result.stderr
        run_dir = next(out.iterdir())
        record = check_run(run_dir)
        samples = {s["sample_idx"]: s for s in map(json.loads, (run_dir / "samples" / "humaneval.jsonl").read_text().splitlines())}
        statuses = {names[i]: s["status"] for i, s in samples.items()}
        assert all(v in ("failed", "timeout") for v in statuses.values()), statuses
        assert statuses["infinite_loop"] == statuses["long_sleep"] == "timeout"
        assert record["tasks"]["humaneval"]["metrics"]["pass@1"]["value"] == 0.0
        assert victim.read_text() == "keep me" and repo_victim.read_text() == "keep me"
        assert not outside.exists() and not repo_file.exists()
        assert received == [], "a sandboxed program reached a loopback server"
        assert _sandbox_processes() == [], "sandboxed processes outlived their run"
    finally:
        repo_victim.unlink(missing_ok=True)
        repo_file.unlink(missing_ok=True)


def test_isolation_mode_is_the_strongest_available() -> None:
    mode = detect_mode()
    if os.geteuid() == 0:
        assert mode == "root-namespaces"
    assert Sandbox().describe()["mode"] == mode


def test_programs_run_in_parallel_and_report_stderr() -> None:
    sandbox = Sandbox(workers=2)
    try:
        results = sandbox.run_many(["import time\ntime.sleep(1)"] * 4 + ["raise ValueError('boom')"])
    finally:
        sandbox.close()
    assert [r.status for r in results] == ["passed"] * 4 + ["failed"]
    assert "ValueError: boom" in results[-1].stderr_tail


def test_plain_mode_fallback_blocks_sockets_and_signals() -> None:
    sandbox = Sandbox(mode="plain", workers=2)
    try:
        ok, net, sig = sandbox.run_many([
            "print(sum(range(10)))",
            "import socket\nsocket.create_connection(('127.0.0.1', 9))",
            "import os\nos.kill(os.getppid(), 9)",
        ])
    finally:
        sandbox.close()
    assert ok.status == "passed"
    assert net.status == "failed" and "network access is disabled" in net.stderr_tail
    assert sig.status == "failed" and "signals is disabled" in sig.stderr_tail
