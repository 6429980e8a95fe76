"""Run untrusted Python programs, each in its own locked-down process, in parallel across cores.

Each worker starts one warm interpreter (a zygote, `harness.sandbox.zygote`) inside the strongest isolation the
machine allows (`detect_mode`) and forks a fresh child per program: new PID, mount and IPC namespaces, a read-only
view of the filesystem with private tmpfs /tmp, /var/tmp, /dev/shm and working directory, no network, no
capabilities, a scrubbed environment, resource limits and a wall-clock limit that kills its whole process tree. As
root (`root-namespaces`) the program also runs as an unprivileged per-worker uid; as an ordinary user, bubblewrap
(`bubblewrap`) or unprivileged user namespaces (`user-namespaces`) give the same view, with the user's home hidden.
Without any of them, code runs only if the caller allows it (`plain`: sockets and signals blocked in Python, nothing
more). A program tree's memory is capped by a delegated cgroup v2 where one is writable, else by its per-process
address space times its process count.
"""

from __future__ import annotations

import os
import queue
import secrets
import shutil
import tempfile
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from harness.core.errors import UserError
from harness.sandbox.worker import Worker, WorkerLost, delegated_cgroup, make_cgroup, python_paths, view_paths
from harness.sandbox.zygote import SETUP_FAILED, TIMED_OUT

Status = Literal["passed", "failed", "timeout", "error"]
Mode = Literal["root-namespaces", "bubblewrap", "user-namespaces", "plain"]
BASE_UID = 61000
# In a user namespace the process count also holds the sandbox's own: bwrap's init (or unshare) and the zygote.
OVERHEAD = 2
PRELOAD = ["bisect", "collections", "copy", "functools", "hashlib", "heapq", "itertools", "math", "random", "re",
           "string", "typing"]
PROBE = "import colorsys, os\nassert os.getpid() == 1\nprint('ok')\n"
ENV = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "PYTHONHASHSEED": "0", "PYTHONDONTWRITEBYTECODE": "1"}
UNSAFE_HINT = ("install bubblewrap, enable unprivileged user namespaces, or pass --unsafe-exec to run model-written "
               "code without isolation")

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


class NoSandbox(UserError):
    """No isolating sandbox works on this machine and running model-written code without one was not allowed."""


@dataclass(frozen=True)
class Limits:
    """Per-program limits; `tree_memory_bytes` caps the program and all its processes together."""

    wall_s: float = 10.0
    cpu_s: int = 10
    memory_bytes: int = 4 << 30
    file_bytes: int = 16 << 20
    open_files: int = 64
    processes: int = 64
    tmpfs_mb: int = 64
    tree_memory_bytes: int = 16 << 30


@dataclass(frozen=True)
class ExecResult:
    """How one program ended: passed (exit 0 after its last statement), failed, timeout, or error (the sandbox
    itself failed); what it printed on stdout (the end marker removed) and the tail of its stderr."""

    status: Status
    returncode: int | None
    stderr_tail: str
    seconds: float
    stdout: str = ""


def _candidates() -> list[Mode]:
    """Isolating modes, strongest first. Root drops programs to a uid of their own (the process limit binds only
    there); an ordinary user gets a user namespace, where the limit counts that namespace's processes."""
    return ["root-namespaces", "bubblewrap"] if os.geteuid() == 0 else ["bubblewrap", "user-namespaces"]


@lru_cache(maxsize=None)
def _probe(mode: Mode) -> str | None:
    """None when `mode` works on this machine (a probe program runs isolated), else why not, in one line."""
    tool = "bwrap" if mode == "bubblewrap" else "unshare"
    if shutil.which(tool) is None:
        return f"{tool} is not installed"
    sandbox = Sandbox(mode=mode, workers=1)
    try:
        result = sandbox.run(PROBE, wall_s=30)
    finally:
        sandbox.close()
    if result.status == "passed" and result.stdout.strip() == "ok":
        return None
    return (result.stderr_tail.strip().splitlines() or [result.status])[-1]


@lru_cache(maxsize=1)
def detect_mode() -> Mode:
    """The strongest isolation that works here, probed once; "plain" (no isolation) when none does."""
    return next((mode for mode in _candidates() if _probe(mode) is None), "plain")


def _user_process_count() -> int:
    uid = os.getuid()
    return sum(1 for p in Path("/proc").iterdir() if p.name.isdigit() and _owner(p) == uid)


def _owner(path: Path) -> int | None:
    try:
        return path.stat().st_uid
    except OSError:
        return None


UNSAFE_EXEC: ContextVar[bool] = ContextVar("owb_unsafe_exec", default=False)


@contextmanager
def unsafe_exec(allowed: bool) -> Iterator[None]:
    """While the block runs, sandboxes built without `allow_unsafe` may run code unisolated (--unsafe-exec)."""
    token = UNSAFE_EXEC.set(allowed)
    try:
        yield
    finally:
        UNSAFE_EXEC.reset(token)


class Sandbox:
    """Runs programs with `Limits`, `workers` at a time; `mode` tells how strong the isolation is. Without an isolating
    mode it raises `NoSandbox` unless `allow_unsafe` (default: whether `unsafe_exec` is in force)."""

    def __init__(self, limits: Limits | None = None, workers: int | None = None, mode: Mode | None = None,
                 allow_unsafe: bool | None = None) -> None:
        self.limits = limits or Limits()
        self.mode = mode or detect_mode()
        if allow_unsafe is None:
            allow_unsafe = UNSAFE_EXEC.get()
        if self.mode == "plain" and not allow_unsafe:
            reasons = "; ".join(f"{m}: {_probe(m)}" for m in _candidates())
            why = (f"no sandbox isolates model-written code here ({reasons})" if mode is None
                   else "plain mode runs model-written code without isolation")
            raise NoSandbox(f"{why}: {UNSAFE_HINT}")
        # Printed after the program's last statement: exit code 0 without it (os._exit(0) mid-test) is a failure.
        self._sentinel = f"owb-finished-{secrets.token_hex(16)}"
        self.workers = workers or os.cpu_count() or 1
        self._root = Path(tempfile.mkdtemp(prefix="owb-sandbox-"))
        self._cgroup_parent = delegated_cgroup(Path("/proc/self/cgroup").read_text(),
                                               Path("/proc/self/mountinfo").read_text())
        self._drops_uid = os.geteuid() == 0 and self.mode in ("root-namespaces", "bubblewrap")
        lim = self.limits
        # Without a cgroup, the per-process address space times the process count bounds the program tree's memory.
        self.processes = lim.processes if self._cgroup_parent or self.mode == "plain" else max(
            1, min(lim.processes, lim.tree_memory_bytes // lim.memory_bytes))
        # The worker's cgroup also holds the launcher (bwrap runs two processes) and the zygote.
        self._cgroups = [make_cgroup(self._cgroup_parent, f"{self._root.name}-{slot}", lim.tree_memory_bytes,
                                     self.processes + OVERHEAD + 1) for slot in range(self.workers)
                         ] if self._cgroup_parent else []
        self._workers = [Worker(self.mode, self._config(slot), self._root / f"worker-{slot}.log",
                                self._cgroups[slot] if self._cgroups else None) for slot in range(self.workers)]
        self._slots: queue.Queue[int] = queue.Queue()
        for slot in range(self.workers):
            self._slots.put(slot)

    def _config(self, slot: int) -> dict[str, Any]:
        """What worker `slot`'s zygote needs: mode, uid, view, limits, environment."""
        lim = self.limits
        uid = BASE_UID + slot if self._drops_uid else None
        nproc = (_user_process_count() + lim.processes * (self.workers + 1) if self.mode == "plain"
                 else self.processes if uid is not None else self.processes + OVERHEAD)
        hide, keep = view_paths(python_paths()[1], uid is not None) if self.mode != "plain" else ([], None)
        return {"mode": self.mode, "uid": uid, "hide": hide, "keep": keep, "tmpfs_mb": lim.tmpfs_mb,
                "scratch": str(self._root),
                "rlimits": {"RLIMIT_AS": lim.memory_bytes, "RLIMIT_CPU": lim.cpu_s, "RLIMIT_FSIZE": lim.file_bytes,
                            "RLIMIT_NOFILE": lim.open_files, "RLIMIT_NPROC": nproc, "RLIMIT_CORE": 0},
                "cap_last": int(Path("/proc/sys/kernel/cap_last_cap").read_text()), "env": ENV, "preload": PRELOAD}

    def describe(self) -> dict[str, object]:
        """The isolation mode and limits, for run.json; `memory_cap` says what bounds a program tree's memory."""
        memory_cap = "cgroup-v2" if self._cgroup_parent else "none" if self.mode == "plain" else "rlimit"
        tree = self.limits.tree_memory_bytes if self._cgroup_parent else (
            None if self.mode == "plain" else self.limits.memory_bytes * self.processes)
        return {"mode": self.mode, "workers": self.workers, **self.limits.__dict__, "processes": self.processes,
                "memory_cap": memory_cap, "tree_memory_bytes": tree,
                "program_uid": f"{BASE_UID}+worker" if self._drops_uid else "caller"}

    def run_many(self, programs: Sequence[str], wall_s: Sequence[float] | None = None) -> list[ExecResult]:
        """Results of all programs, run in parallel, in input order; `wall_s` overrides each one's time limit."""
        limits = list(wall_s) if wall_s is not None else [self.limits.wall_s] * len(programs)
        with ThreadPoolExecutor(max_workers=self.workers) as pool:
            return list(pool.map(self.run, programs, limits))

    def run(self, program: str, wall_s: float | None = None) -> ExecResult:
        """Run one program and report how it ended; `wall_s` overrides the wall-clock limit."""
        slot = self._slots.get()
        try:
            return self._run(self._workers[slot], program, wall_s or self.limits.wall_s)
        finally:
            self._slots.put(slot)

    def _run(self, worker: Worker, program: str, wall_s: float) -> ExecResult:
        prelude = PLAIN_PRELUDE if self.mode == "plain" else ""
        source = f"{prelude}{program}\nprint({self._sentinel!r}, flush=True)\n".encode()
        start = time.perf_counter()
        try:
            reply = worker.execute(source, wall_s)
        except WorkerLost as lost:
            worker.close()  # the next program starts a fresh zygote
            return ExecResult("error", None, str(lost), time.perf_counter() - start, "")
        seconds = time.perf_counter() - start
        tail = reply.stderr_tail.decode("utf-8", "replace")
        if reply.flags & TIMED_OUT:
            return ExecResult("timeout", None, tail, seconds, "")
        if reply.flags & SETUP_FAILED:
            return ExecResult("error", reply.returncode, tail or worker.log_tail(), seconds, "")
        stdout = reply.stdout.decode("utf-8", "replace").rstrip()
        finished = stdout.endswith(self._sentinel)
        stdout = stdout.removesuffix(self._sentinel) if finished else stdout
        status: Status = "passed" if reply.returncode == 0 and finished else "failed"
        return ExecResult(status, reply.returncode, tail, seconds, stdout)

    def close(self) -> None:
        """Stop the workers and remove the sandbox's scratch directory and cgroups."""
        for worker in self._workers:
            worker.close()
        for cgroup in self._cgroups:
            try:
                cgroup.rmdir()
            except OSError:  # still holds a process that is being torn down
                pass
        shutil.rmtree(self._root, ignore_errors=True)
