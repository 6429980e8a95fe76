"""Run untrusted Python programs, each in its own locked-down process, in parallel across cores.

Every program gets: a scrubbed environment; resource limits (address space, CPU time, file size, open
files, processes); a wall-clock timeout that kills its whole process tree; and, where the kernel allows
(`mode`), fresh PID, network and mount namespaces in which the host's /tmp, /var/tmp and /dev/shm are
replaced by small private tmpfs mounts (the working directory and home live there), no network
interface is up and the parent's processes are invisible. Run as root, the program also drops to an
unprivileged per-worker uid with no capabilities, so it cannot write the host's files or fork without
bound. Without namespaces (`plain` mode) sockets are blocked in Python before the program runs.
"""

from __future__ import annotations

import os
import queue
import resource
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Literal

Status = Literal["passed", "failed", "timeout", "error"]
Mode = Literal["root-namespaces", "user-namespaces", "plain"]
SETUP_FAILED = 97
BASE_UID = 61000

PLAIN_PRELUDE = """\
import os as _os, socket as _socket
def _no_network(*_a, **_k):
    raise OSError("network access is disabled in the owb sandbox")
def _no_signals(*_a, **_k):
    raise PermissionError("sending signals is disabled in the owb sandbox")
_socket.socket = _socket.create_connection = _no_network
_os.kill = _os.killpg = _no_signals
del _os, _socket, _no_network, _no_signals
"""


@dataclass(frozen=True)
class Limits:
    """Per-program limits."""

    wall_s: float = 10.0
    cpu_s: int = 10
    memory_bytes: int = 4 << 30
    file_bytes: int = 16 << 20
    open_files: int = 64
    processes: int = 64
    tmpfs_mb: int = 64


@dataclass(frozen=True)
class ExecResult:
    """How one program ended: passed (exit 0 after its last statement), failed, timeout, or error (the sandbox
    itself failed); what it printed on stdout (the end marker removed) and the tail of its stderr."""

    status: Status
    returncode: int | None
    stderr_tail: str
    seconds: float
    stdout: str = ""


def _namespace_cmd(mode: Mode, uid: int, limits: Limits) -> list[str]:
    """unshare + a setup shell that mounts private tmpfs dirs, then execs Python (as `uid` when root)."""
    prefix = sys.base_prefix
    exe = Path(os.path.realpath(sys.executable))
    rel = exe.relative_to(prefix) if exe.is_relative_to(prefix) else Path("bin") / exe.name
    drop = (f"setpriv --reuid={uid} --regid={uid} --clear-groups --inh-caps=-all --bounding-set=-all --no-new-privs -- "
            if mode == "root-namespaces" else "")
    owner = f"chown {uid}:{uid} /tmp/work && " if mode == "root-namespaces" else ""
    script = (
        f"mount -t tmpfs -o size={limits.tmpfs_mb}m,mode=1777 tmpfs /tmp && "
        "for d in /var/tmp /dev/shm; do [ -d $d ] && mount -t tmpfs -o size=1m,mode=1777 tmpfs $d; done; "
        f"mkdir /tmp/.python /tmp/work && mount --bind {prefix} /tmp/.python && "
        "mount -o remount,bind,ro /tmp/.python && "
        f"{owner}cd /tmp/work || exit {SETUP_FAILED}; "
        f"exec {drop}/tmp/.python/{rel} -I -S -"
    )
    user = ["--user", "--map-root-user"] if mode == "user-namespaces" else []
    return ["unshare", *user, "--net", "--pid", "--fork", "--kill-child", "--mount", "--propagation", "private",
            "--mount-proc", "/bin/sh", "-c", script]


@lru_cache(maxsize=1)
def detect_mode() -> Mode:
    """The strongest isolation this machine allows, probed once by running a trivial program."""
    if shutil.which("unshare") is None:
        return "plain"
    candidates: list[Mode] = ["root-namespaces"] if os.geteuid() == 0 and shutil.which("setpriv") else []
    candidates.append("user-namespaces")
    for mode in candidates:
        try:
            probe = subprocess.run(_namespace_cmd(mode, BASE_UID, Limits()), input=b"print('ok')",
                                   capture_output=True, timeout=30)
        except (OSError, subprocess.SubprocessError):
            continue
        if probe.returncode == 0 and probe.stdout.strip() == b"ok":
            return mode
    return "plain"


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    """SIGKILL the program's process group; with namespaces this takes its whole PID namespace down."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _user_process_count() -> int:
    uid = os.getuid()
    return sum(1 for p in Path("/proc").iterdir() if p.name.isdigit() and _owner(p) == uid)


def _owner(path: Path) -> int | None:
    try:
        return path.stat().st_uid
    except OSError:
        return None


class Sandbox:
    """Runs programs with `Limits`, `workers` at a time; `mode` tells how strong the isolation is."""

    def __init__(self, limits: Limits | None = None, workers: int | None = None, mode: Mode | None = None) -> None:
        self.limits = limits or Limits()
        # Printed after the program's last statement: exit code 0 without it (os._exit(0) mid-test) is a failure.
        self._sentinel = f"owb-finished-{secrets.token_hex(16)}"
        self.workers = workers or os.cpu_count() or 1
        self.mode = mode or detect_mode()
        self._slots: queue.Queue[int] = queue.Queue()
        for slot in range(self.workers):
            self._slots.put(slot)
        self._root = Path(tempfile.mkdtemp(prefix="owb-sandbox-"))
        # Non-root processes share one RLIMIT_NPROC budget with the user's other processes.
        self._nproc = self.limits.processes if self.mode == "root-namespaces" else (
            _user_process_count() + self.limits.processes * (self.workers + 1))

    def describe(self) -> dict[str, object]:
        """The isolation mode and limits, for run.json."""
        return {"mode": self.mode, "workers": self.workers, **self.limits.__dict__}

    def run_many(self, programs: Sequence[str], wall_s: Sequence[float] | None = None) -> list[ExecResult]:
        """Results of all programs, run in parallel, in input order; `wall_s` overrides each one's time limit."""
        limits = list(wall_s) if wall_s is not None else [self.limits.wall_s] * len(programs)
        with ThreadPoolExecutor(max_workers=self.workers) as pool:
            return list(pool.map(self.run, programs, limits))

    def run(self, program: str, wall_s: float | None = None) -> ExecResult:
        """Run one program (fed on stdin) and report how it ended; `wall_s` overrides the wall-clock limit."""
        slot = self._slots.get()
        job = Path(tempfile.mkdtemp(dir=self._root))
        try:
            return self._run(program, slot, job, wall_s or self.limits.wall_s)
        finally:
            shutil.rmtree(job, ignore_errors=True)
            self._slots.put(slot)

    def _command(self, slot: int) -> list[str]:
        if self.mode == "plain":
            return [sys.executable, "-I", "-S", "-"]
        return _namespace_cmd(self.mode, BASE_UID + slot, self.limits)

    def _set_limits(self) -> None:
        lim = self.limits
        for name, value in ((resource.RLIMIT_AS, lim.memory_bytes), (resource.RLIMIT_CPU, lim.cpu_s),
                            (resource.RLIMIT_FSIZE, lim.file_bytes), (resource.RLIMIT_NOFILE, lim.open_files),
                            (resource.RLIMIT_NPROC, self._nproc), (resource.RLIMIT_CORE, 0)):
            resource.setrlimit(name, (value, value))

    def _run(self, program: str, slot: int, job: Path, wall_s: float) -> ExecResult:
        source = job / "program.py"
        finish = f"\nprint({self._sentinel!r}, flush=True)\n"
        source.write_text((PLAIN_PRELUDE if self.mode == "plain" else "") + program + finish)
        env = {"PATH": "/usr/bin:/bin", "HOME": "/tmp/work" if self.mode != "plain" else str(job),
               "TMPDIR": "/tmp", "LANG": "C.UTF-8", "PYTHONHASHSEED": "0", "PYTHONDONTWRITEBYTECODE": "1"}
        start = time.perf_counter()
        with source.open("rb") as stdin, (job / "stdout").open("wb") as out, (job / "stderr").open("wb") as err:
            proc = subprocess.Popen(self._command(slot), stdin=stdin, stdout=out, stderr=err, env=env,
                                    cwd=job, start_new_session=True, preexec_fn=self._set_limits)
            expired = threading.Event()

            def expire() -> None:
                expired.set()
                _kill_group(proc)

            timer = threading.Timer(wall_s, expire)
            timer.start()
            try:
                # Block (no polling) until it exits, without reaping: the zombie keeps the group id reserved
                # while leftover processes of the group are killed, then it is reaped.
                os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOWAIT)
            finally:
                timer.cancel()
                _kill_group(proc)
                code = proc.wait()
            timed_out = expired.is_set()
        seconds = time.perf_counter() - start
        tail = (job / "stderr").read_bytes()[-2000:].decode("utf-8", "replace")
        if timed_out:
            return ExecResult("timeout", None, tail, seconds, "")
        stdout = (job / "stdout").read_bytes().decode("utf-8", "replace").rstrip()
        finished = stdout.endswith(self._sentinel)
        stdout = stdout.removesuffix(self._sentinel) if finished else stdout
        status: Status = "error" if code == SETUP_FAILED else "passed" if code == 0 and finished else "failed"
        return ExecResult(status, code, tail, seconds, stdout)

    def close(self) -> None:
        """Remove the sandbox's scratch directory."""
        shutil.rmtree(self._root, ignore_errors=True)
