"""One sandbox worker: a warm zygote started once inside the mode's isolation, driven over a Unix socket.

The launch command per mode (bwrap, unshare as root or in a user namespace, or bare Python), the optional cgroup v2
that caps a worker's memory and processes, and the request/reply exchange with `harness.sandbox.zygote`.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.sandbox import zygote
from harness.sandbox.zygote import REPLY, REQUEST

ZYGOTE_SOURCE = Path(zygote.__file__).read_text()
GRACE_S = 30.0  # how long past a program's wall-clock limit the harness waits for the zygote's reply
NAMESPACES = ["--net", "--pid", "--fork", "--kill-child", "--ipc", "--uts", "--mount", "--propagation", "private",
              "--mount-proc"]


class WorkerLost(Exception):
    """The zygote died or stopped answering; the message is the last line of its log."""


@dataclass(frozen=True)
class Reply:
    """What the zygote reported for one program, and what the program wrote."""

    returncode: int
    flags: int
    stdout: bytes
    stderr_tail: bytes


def python_paths() -> tuple[str, str]:
    """The base interpreter (outside any virtualenv, which `-I -S` would not use) and the prefix holding its stdlib."""
    prefix = os.path.realpath(sys.base_prefix)
    exe = os.path.realpath(sys.executable)
    return (exe if exe.startswith(prefix + os.sep) else os.path.join(prefix, "bin", os.path.basename(exe))), prefix


def view_paths(prefix: str, drops_uid: bool) -> tuple[list[str], str | None]:
    """Directories to cover with an empty tmpfs: the user's home and, when programs drop to another uid, the first
    directory on the way to Python that others may not enter; and Python's prefix when it must be bound back."""
    home = os.path.realpath(os.path.expanduser("~"))
    found = [home] if home != "/" and os.path.isdir(home) and not (home + os.sep).startswith(prefix + os.sep) else []
    if drops_uid:
        found += [str(p) for p in reversed(Path(prefix).parents) if not os.stat(p).st_mode & 0o001][:1]
    hide = sorted({p for p in found if not any(p.startswith(q + os.sep) for q in found)})
    return hide, (prefix if any(prefix.startswith(p + os.sep) for p in hide) else None)


def _bubblewrap_view(hide: list[str], keep: str | None) -> list[str]:
    """bwrap arguments: empty read-only tmpfs over `hide`, with `keep` bound back inside (parents made 0755)."""
    args = [arg for path in hide for arg in ("--tmpfs", path)]
    if keep:
        inside = next(path for path in hide if keep.startswith(path + os.sep))
        parents = [str(p) for p in reversed(Path(keep).parents) if str(p).startswith(inside + os.sep)]
        args += [arg for path in parents for arg in ("--dir", path)] + ["--ro-bind", keep, keep]
    return args + [arg for path in hide for arg in ("--remount-ro", path)]


def launch_command(mode: str, zygote: list[str], hide: list[str], keep: str | None) -> list[str]:
    """The command that starts the zygote inside `mode`'s isolation (bubblewrap also builds the view)."""
    if mode == "plain":
        return zygote
    if mode == "bubblewrap":
        # As root, no user namespace: the zygote keeps real capabilities and programs drop to the worker's uid.
        user = [] if os.geteuid() == 0 else ["--unshare-user", "--uid", "0", "--gid", "0"]
        # No --die-with-parent: it fires when the thread that started bwrap exits. The zygote exits when we hang up.
        return [shutil.which("bwrap") or "bwrap", *user, "--unshare-ipc", "--unshare-pid", "--unshare-net",
                "--unshare-uts", "--unshare-cgroup-try", "--new-session", "--cap-add", "ALL", "--ro-bind", "/", "/",
                "--proc", "/proc", "--dev", "/dev", *_bubblewrap_view(hide, keep), "--remount-ro", "/dev",
                "--chdir", "/", "--", *zygote]
    user = ["--user", "--map-root-user"] if mode == "user-namespaces" else []
    return [shutil.which("unshare") or "unshare", *user, *NAMESPACES, *zygote]


class Worker:
    """A zygote in its own session, started on first use; `execute` runs one program through it."""

    def __init__(self, mode: str, config: dict[str, Any], log: Path, cgroup: Path | None) -> None:
        self.mode, self.config, self.log, self.cgroup = mode, config, log, cgroup
        self._proc: subprocess.Popen[bytes] | None = None
        self._channel: socket.socket | None = None

    def _start(self) -> socket.socket:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        config = {**self.config, "fd": theirs.fileno()}
        zygote = [python_paths()[0], "-I", "-S", "-c", ZYGOTE_SOURCE, json.dumps(config, separators=(",", ":"))]
        command = launch_command(self.mode, zygote, config["hide"], config["keep"])
        if self.cgroup is not None:  # join the worker's cgroup before anything starts, so every descendant is in it
            command = ["/bin/sh", "-c", 'echo $$ > "$0" && exec "$@"', str(self.cgroup / "cgroup.procs"), *command]
        with self.log.open("ab") as log:
            self._proc = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=log,
                                          pass_fds=(theirs.fileno(),), cwd="/", start_new_session=True,
                                          env={"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"})
        theirs.close()
        self._channel = ours
        return ours

    def execute(self, source: bytes, wall_s: float) -> Reply:
        """Run one program: send it and two fresh output files, wait for the zygote's report, read the outputs."""
        channel = self._channel or self._start()
        fds = [os.memfd_create(name) for name in ("owb-program", "owb-stdout", "owb-stderr")]
        try:
            os.write(fds[0], source)
            channel.settimeout(wall_s + GRACE_S)
            try:
                socket.send_fds(channel, [REQUEST.pack(wall_s)], fds)
                reply = b""
                while len(reply) < REPLY.size and (chunk := channel.recv(REPLY.size - len(reply))):
                    reply += chunk
            except OSError as exc:
                raise WorkerLost(self.log_tail() or repr(exc)) from exc
            if len(reply) != REPLY.size:
                raise WorkerLost(self.log_tail() or "the sandbox worker exited")
            returncode, flags = REPLY.unpack(reply)
            out_size, err_size = os.fstat(fds[1]).st_size, os.fstat(fds[2]).st_size
            return Reply(returncode, flags, os.pread(fds[1], out_size, 0),
                         os.pread(fds[2], 2000, max(0, err_size - 2000)))
        finally:
            for fd in fds:
                os.close(fd)

    def log_tail(self) -> str:
        """The last line the zygote and its launcher wrote to the log."""
        try:
            lines = self.log.read_text(errors="replace").strip().splitlines()
        except OSError:
            return ""
        return lines[-1] if lines else ""

    def close(self) -> None:
        """Hang up (the zygote exits) and make sure the whole worker is gone."""
        if self._channel is not None:
            self._channel.close()
            self._channel = None
        if self._proc is not None:
            try:
                self._proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
            try:
                os.killpg(self._proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            self._proc.wait()
            self._proc = None


def delegated_cgroup(proc_cgroup: str, mountinfo: str) -> Path | None:
    """This process's cgroup v2 directory when it is writable and already delegates memory and pids to children."""
    own = next((line[3:] for line in proc_cgroup.splitlines() if line.startswith("0::")), None)
    mounts = [fields[4] for fields in map(str.split, mountinfo.splitlines())
              if "-" in fields and fields[fields.index("-") + 1] == "cgroup2"]
    if own is None or not mounts:
        return None
    path = Path(mounts[0]) / own.lstrip("/")
    try:
        enabled = set((path / "cgroup.subtree_control").read_text().split())
    except OSError:
        return None
    return path if {"memory", "pids"} <= enabled and os.access(path, os.W_OK) else None


def make_cgroup(parent: Path, name: str, memory_bytes: int, processes: int) -> Path:
    """A child cgroup capping its members' combined memory (no swap) and process count."""
    path = parent / name
    path.mkdir()
    (path / "memory.max").write_text(str(memory_bytes))
    if (path / "memory.swap.max").exists():
        (path / "memory.swap.max").write_text("0")
    (path / "pids.max").write_text(str(processes))
    return path
