"""Hostile programs, through `owb run --backend replay` as the invoking user and through the sandbox as an unprivileged
user in every mode the machine supports: each is recorded as failed or timeout and nothing outside the sandbox changes.
Also: refusing to run without isolation, the cgroup v2 memory cap, parallel runs and plain mode's Python-level blocks."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import sysconfig
import tempfile
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.sandbox import base as sandbox_module
from harness.sandbox.base import BASE_UID, Limits, NoSandbox, Sandbox, detect_mode
from harness.sandbox.worker import delegated_cgroup
from harness.scoring.code import humaneval_program
from tests.contract import check_run
from tests.helpers import REPO

NOBODY = 65534
# Each attack sits in the body of the fixture's `add`; it returns the right answer only if the attack worked.
ATTACKS = {
    "fork_bomb": "import os\n    while True:\n        os.fork()",
    "memory_bomb": "blob = bytearray(64 << 30)\n    return a + b",
    "memory_growth": "chunks = []\n    while True:\n        chunks.append(bytearray(256 << 20))",
    "infinite_loop": "while True:\n        pass",
    "long_sleep": "import time\n    time.sleep(3600)\n    return a + b",
    "write_outside": "open({outside!r}, 'w').write('pwned')\n    return a + b",
    "write_repo": "open({repo_file!r}, 'w').write('pwned')\n    return a + b",
    "write_home": "open({home_file!r}, 'w').write('pwned')\n    return a + b",
    "delete_files": "import os\n    os.remove({victim!r})\n    return a + b",
    "delete_repo_file": "import os\n    os.remove({repo_victim!r})\n    return a + b",
    "read_home_secret": "assert {secret!r} in open({home_secret!r}).read()\n    return a + b",
    "network": "import socket\n    socket.create_connection(('127.0.0.1', {port}), timeout=2).sendall(b'pwned')\n    return a + b",
    "kill_parent": "import os, signal\n    os.kill({parent}, signal.SIGKILL)\n    return a + b",
    "kill_parent_group": "import os, signal\n    os.killpg({parent_group}, signal.SIGKILL)\n    return a + b",
    "kill_ppid": "import os, signal\n    ppid = os.getppid()\n    assert ppid > 1\n    os.kill(ppid, signal.SIGKILL)\n    return a + b",
    "signal_same_uid": "import os, signal\n    os.kill({same_uid}, signal.SIGKILL)\n    return a + b",
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
    # Any mount point (outside the private tmpfs ones) where a new file can be created.
    "write_any_mount": (
        "import os\n"
        "    private = {{'/tmp', '/var/tmp', '/dev/shm'}}\n"
        "    found = []\n"
        "    for line in open('/proc/self/mountinfo'):\n"
        "        point = line.split()[4].replace('\\\\040', ' ')\n"
        "        if point in private or point.startswith(('/proc', '/sys')):\n"
        "            continue\n"
        "        try:\n"
        "            open(os.path.join(point, '.owb-sandbox-probe'), 'x').close()\n"
        "            found.append(point)\n"
        "        except OSError:\n"
        "            pass\n"
        "    assert found\n"
        "    return a + b"
    ),
    # Remount / read-write from a fresh user namespace (where the program would hold every capability), then write.
    "userns_remount": (
        "import subprocess\n"
        "    subprocess.run(['unshare', '-Urm', 'sh', '-c', 'mount -o remount,bind,rw / ; echo pwned > ' + {outside!r}])\n"
        "    assert open({outside!r}).read()\n"
        "    return a + b"
    ),
}
# Only as an unprivileged user: were the PID namespace missing, this would kill every process the user may signal.
UNPRIVILEGED_ATTACKS = {"kill_everything": "import os, signal\n    os.kill(-1, signal.SIGKILL)\n    return a + b"}
# Plain mode (explicitly unsafe) isolates no files or processes: what the user may touch, its programs may too.
PLAIN_LEAKS = frozenset({"write_outside", "write_home", "delete_files", "read_home_secret", "read_parent_env",
                         "userns_remount"})


@pytest.fixture
def listener() -> Iterator[tuple[int, list[bytes]]]:
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


@pytest.fixture
def no_isolation(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Mode detection finds no isolating mode (as on a machine without bubblewrap or user namespaces)."""
    monkeypatch.setattr(sandbox_module, "_probe", lambda mode: "simulated: not available")
    detect_mode.cache_clear()
    yield
    detect_mode.cache_clear()


class Scene:
    """Victims and secrets an attack would touch, owned by `uid`, and the values that fill in ATTACKS."""

    def __init__(self, root: Path, uid: int, port: int) -> None:
        self.root, self.uid = root, uid
        self.home, self.work = root / "home", root / "work"
        for path in (root, self.home, self.work):
            path.mkdir(exist_ok=True)
        self.secret = f"owb-secret-{uuid.uuid4().hex}"
        self.victim, self.outside = self.work / "victim.txt", self.work / "outside.txt"
        self.home_secret, self.home_file = self.home / "secret.txt", self.home / "pwned.txt"
        self.repo_victim, self.repo_file = (REPO / f".sandbox-victim-{uuid.uuid4().hex}",
                                            REPO / f".sandbox-pwned-{uuid.uuid4().hex}")
        self.victim.write_text("keep me")
        self.repo_victim.write_text("keep me")
        self.home_secret.write_text(self.secret)
        self.home_secret.chmod(0o600)
        for path in (root, self.home, self.work, self.victim, self.home_secret):
            os.chown(path, uid, uid)
        # A process of the same user that holds the secret in its environment: nothing may signal or read it.
        self.same_uid = subprocess.Popen(_as_user(uid, ["sleep", "600"]), start_new_session=True,
                                         env={"PATH": "/usr/bin:/bin", "OWB_TEST_SECRET": self.secret})
        self.values = {"outside": str(self.outside), "repo_file": str(self.repo_file), "victim": str(self.victim),
                       "repo_victim": str(self.repo_victim), "home_file": str(self.home_file),
                       "home_secret": str(self.home_secret), "port": port, "secret": self.secret,
                       "same_uid": self.same_uid.pid, "parent": os.getpid() if uid == os.geteuid() else self.same_uid.pid,
                       "parent_group": os.getpgid(0) if uid == os.geteuid() else self.same_uid.pid}

    def programs(self, attacks: dict[str, str]) -> dict[str, str]:
        """Each attack as the answer to the HumanEval fixture, built into its test program as `owb run` builds it."""
        return {name: humaneval_program(self.answer(body), _fixture()) for name, body in attacks.items()}

    def answer(self, body: str) -> str:
        """An answer whose `add` carries the attack."""
        return f"```python\ndef add(a: int, b: int) -> int:\n    {body.format(**self.values)}\n```"

    def assert_unchanged(self, received: list[bytes], leaks: frozenset[str] = frozenset()) -> None:
        """Nothing outside the sandbox changed (except what `leaks` allows) and the same-uid process lives on."""
        if "delete_files" not in leaks:
            assert self.victim.read_text() == "keep me"
        if "write_outside" not in leaks and "userns_remount" not in leaks:
            assert not self.outside.exists()
        if "write_home" not in leaks:
            assert not self.home_file.exists()
        assert self.repo_victim.read_text() == "keep me" and not self.repo_file.exists()
        assert received == [], "a sandboxed program reached a loopback server"
        assert self.same_uid.poll() is None, "a sandboxed program killed a process of the same user"

    def close(self) -> None:
        """Stop the same-uid process and remove every file the scene made."""
        self.same_uid.kill()
        self.same_uid.wait()
        self.repo_victim.unlink(missing_ok=True)
        self.repo_file.unlink(missing_ok=True)
        shutil.rmtree(self.root, ignore_errors=True)


def _fixture() -> dict[str, str]:
    """The first HumanEval fixture document (its entry point is `add`)."""
    return json.loads((REPO / "tasks" / "fixtures" / "humaneval.jsonl").read_text().splitlines()[0])


def _as_user(uid: int, command: list[str]) -> list[str]:
    """`command` run as `uid` (through setpriv when that is not who we are)."""
    if uid == os.geteuid():
        return command
    return ["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups", *command]


def _sandbox_processes() -> list[str]:
    out = subprocess.run(["ps", "-eo", "uid=,pid=,args="], capture_output=True, text=True).stdout
    return [line for line in out.splitlines() if BASE_UID <= int(line.split()[0]) < BASE_UID + 1000]


def _user_pids(uid: int) -> set[int]:
    """Live (not zombie) processes of `uid`."""
    return {int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit() and _owner(p) == uid and _alive(p)}


def _alive(proc: Path) -> bool:
    try:
        return (proc / "stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _owner(path: Path) -> int | None:
    try:
        return path.stat().st_uid
    except OSError:
        return None


@pytest.mark.slow
def test_hostile_programs_fail_and_change_nothing(tmp_path: Path, listener: tuple[int, list[bytes]]) -> None:
    port, received = listener
    scene = Scene(tmp_path / "scene", os.geteuid(), port)
    names = sorted(ATTACKS)
    lines = [{"task": "humaneval", "doc_id": _fixture()["task_id"], "sample_idx": i, "output": scene.answer(ATTACKS[name])}
             for i, name in enumerate(names)]
    replay = tmp_path / "hostile.jsonl"
    replay.write_text("\n".join(json.dumps(x) for x in lines))
    out = tmp_path / "runs"
    try:
        result = subprocess.run(
            [str(Path(sys.executable).with_name("owb")), "run", "--model", "tiny-qwen2", "--backend", "replay",
             "--replay", str(replay), "--tasks", "humaneval", "--data", "fixture", "--limit", "1",
             "--samples", str(len(names)), "--output", str(out)],
            capture_output=True, text=True, timeout=600,
            env={**os.environ, "OWB_TEST_SECRET": scene.secret, "HOME": str(scene.home)})
        assert result.returncode == 0, result.stderr
        run_dir = next(out.iterdir())
        record = check_run(run_dir)
        samples = {s["sample_idx"]: s for s in map(json.loads, (run_dir / "samples" / "humaneval.jsonl").read_text().splitlines())}
        statuses = {names[i]: s["status"] for i, s in samples.items()}
        print(f"sandbox mode: {record['tasks']['humaneval']['scorer']['sandbox']['mode']}")
        assert record["tasks"]["humaneval"]["scorer"]["sandbox"]["mode"] == detect_mode()
        assert all(v in ("failed", "timeout") for v in statuses.values()), statuses
        assert statuses["infinite_loop"] == statuses["long_sleep"] == "timeout"
        assert record["tasks"]["humaneval"]["metrics"]["pass@1"]["value"] == 0.0
        scene.assert_unchanged(received)
        assert _sandbox_processes() == [], "sandboxed processes outlived their run"
    finally:
        scene.close()


def _unprivileged_python(uid: int) -> tuple[str, dict[str, str]] | None:
    """An interpreter `uid` can run that imports this checkout (the venv may sit in a home others cannot enter)."""
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": f"{REPO}:{sysconfig.get_paths()['purelib']}"}
    for candidate in (os.path.realpath(sys.executable), os.path.realpath(getattr(sys, "_base_executable", "")),
                      f"/usr/bin/python{version}", f"/usr/local/bin/python{version}"):
        command = _as_user(uid, [candidate, "-c", "import harness.sandbox.base"])
        if os.path.isfile(candidate) and subprocess.run(command, env=env, capture_output=True, cwd="/").returncode == 0:
            return candidate, env
    return None


DRIVER = """
import json, sys
from harness.sandbox.base import Limits, Sandbox, _probe
spec = json.load(sys.stdin)
if spec["mode"] != "plain" and _probe(spec["mode"]) is not None:
    print(json.dumps({"unsupported": _probe(spec["mode"])}))
    sys.exit()
sandbox = Sandbox(Limits(wall_s=3), workers=2, mode=spec["mode"], allow_unsafe=spec["mode"] == "plain")
try:
    results = sandbox.run_many(list(spec["programs"].values()))
    print(json.dumps({"describe": sandbox.describe(), "statuses": dict(zip(spec["programs"], [r.status for r in results]))}))
finally:
    sandbox.close()
"""


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["bubblewrap", "user-namespaces", "plain"])
def test_hostile_programs_as_an_unprivileged_user(mode: str, listener: tuple[int, list[bytes]]) -> None:
    """The battery as an ordinary user (root drops to `nobody` for it), with that user's home, files and processes as
    targets; plain mode runs only when unsafe execution is allowed and is expected to leak `PLAIN_LEAKS`."""
    uid = os.geteuid() if os.geteuid() != 0 else NOBODY
    python = _unprivileged_python(uid)
    if python is None:
        pytest.skip(f"no Python interpreter that uid {uid} can run imports this checkout")
    port, received = listener
    scene = Scene(Path(tempfile.mkdtemp(prefix="owb-unprivileged-")), uid, port)
    before = _user_pids(uid)
    try:
        programs = scene.programs({**ATTACKS, **UNPRIVILEGED_ATTACKS})
        env = {**python[1], "HOME": str(scene.home), "OWB_HOME": str(scene.work / "owb"), "TMPDIR": str(scene.work),
               "OWB_TEST_SECRET": scene.secret}
        result = subprocess.run(_as_user(uid, [python[0], "-c", DRIVER]), input=json.dumps({"mode": mode, "programs": programs}),
                                capture_output=True, text=True, timeout=600, env=env, cwd=str(scene.work))
        assert result.returncode == 0, result.stderr
        report = json.loads(result.stdout)
        if "unsupported" in report:
            pytest.skip(f"{mode} does not work here for uid {uid}: {report['unsupported']}")
        print(f"sandbox mode: {report['describe']['mode']} as uid {uid}: {report['statuses']}")
        assert report["describe"]["mode"] == mode
        leaks = PLAIN_LEAKS if mode == "plain" else frozenset()
        statuses = report["statuses"]
        assert all(v in ("failed", "timeout") for name, v in statuses.items() if name not in leaks), statuses
        assert statuses["infinite_loop"] == statuses["long_sleep"] == "timeout"
        scene.assert_unchanged(received, leaks)
        left = _user_pids(uid) - before - {scene.same_uid.pid}
        assert left == set(), "sandboxed processes outlived their run"
    finally:
        scene.close()


def test_without_isolation_code_runs_only_when_allowed(no_isolation: None) -> None:
    with pytest.raises(NoSandbox) as refused:
        Sandbox()
    message = str(refused.value)
    assert "\n" not in message and "simulated: not available" in message
    assert message.endswith("install bubblewrap, enable unprivileged user namespaces, or pass --unsafe-exec to run "
                            "model-written code without isolation")
    with pytest.raises(NoSandbox):
        Sandbox(mode="plain")
    sandbox = Sandbox(allow_unsafe=True)
    try:
        assert sandbox.mode == "plain" and sandbox.describe()["memory_cap"] in ("none", "cgroup-v2")
    finally:
        sandbox.close()


def test_delegated_cgroup_caps_each_worker(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    base = tmp_path / "user.slice" / "owb"
    base.mkdir(parents=True)
    mountinfo = f"30 1 0:26 / {tmp_path} rw,nosuid - cgroup2 cgroup2 rw\n"
    assert delegated_cgroup("0::/user.slice/owb\n", mountinfo) is None  # memory and pids not delegated yet
    (base / "cgroup.subtree_control").write_text("cpu memory pids\n")
    assert delegated_cgroup("0::/user.slice/owb\n", mountinfo) == base
    monkeypatch.setattr(sandbox_module, "delegated_cgroup", lambda *_: base)
    sandbox = Sandbox(Limits(tree_memory_bytes=1 << 30), workers=2, mode="bubblewrap")
    try:
        assert sandbox.describe()["memory_cap"] == "cgroup-v2" and sandbox.describe()["processes"] == 64
        workers = sorted(p for p in base.iterdir() if p.is_dir())
        assert len(workers) == 2
        assert [(w / "memory.max").read_text() for w in workers] == [str(1 << 30)] * 2
        assert {(w / "pids.max").read_text() for w in workers} == {str(64 + sandbox_module.OVERHEAD + 1)}
    finally:
        sandbox.close()


@pytest.mark.slow
def test_isolation_mode_is_the_strongest_available() -> None:
    mode = detect_mode()
    if os.geteuid() == 0:
        assert mode == "root-namespaces"
    sandbox = Sandbox()
    try:
        assert sandbox.describe()["mode"] == mode
    finally:
        sandbox.close()


@pytest.mark.slow
def test_programs_run_in_parallel_and_report_stderr() -> None:
    sandbox = Sandbox(workers=2)
    try:
        results = sandbox.run_many(["import time\ntime.sleep(1)"] * 4 + ["raise ValueError('boom')"])
    finally:
        sandbox.close()
    assert [r.status for r in results] == ["passed"] * 4 + ["failed"]
    assert "ValueError: boom" in results[-1].stderr_tail


@pytest.mark.slow
def test_plain_mode_fallback_blocks_sockets_and_signals() -> None:
    sandbox = Sandbox(mode="plain", workers=2, allow_unsafe=True)
    try:
        ok, net, sig = sandbox.run_many([
            "print(sum(range(10)))",
            "import socket\nsocket.create_connection(('127.0.0.1', 9))",
            "import os\nos.kill(os.getppid(), 9)",
        ])
    finally:
        sandbox.close()
    assert ok.status == "passed" and ok.stdout.strip() == "45"
    assert net.status == "failed" and "network access is disabled" in net.stderr_tail
    assert sig.status == "failed" and "signals is disabled" in sig.stderr_tail


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["detected", "plain"])
def test_a_busy_loop_stopped_by_the_cpu_limit_is_a_timeout(mode: str) -> None:
    """The CPU-time limit can stop a busy loop before the wall clock does (as PID 1 by the hard limit's SIGKILL, in
    plain mode by SIGXCPU): it ran out of time either way."""
    sandbox = Sandbox(Limits(cpu_s=1, wall_s=8), workers=1, mode=None if mode == "detected" else "plain",
                      allow_unsafe=mode == "plain")
    try:
        looped, slept = sandbox.run("while True:\n    pass"), sandbox.run("import time\ntime.sleep(60)", wall_s=1)
        crashed = sandbox.run("import os, signal\nos.kill(os.getpid(), signal.SIGKILL)")  # PID 1 cannot: ignored
    finally:
        sandbox.close()
    assert (looped.status, slept.status) == ("timeout", "timeout") and looped.seconds < 5, looped
    if mode == "plain":
        assert crashed.status == "failed"  # killed by a signal, but not at the CPU limit
