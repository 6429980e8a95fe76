"""The warm interpreter inside a sandbox: per request it forks the program as PID 1 of a new PID namespace, locked down.

Runs as `python -I -S -c <this source> <config json>` (stdlib only) with the harness's socket on fd `config["fd"]`. A
request is the wall-clock limit plus three memfds (program, stdout, stderr); the reply is (returncode, flags).
"""

from __future__ import annotations

import atexit
import builtins
import ctypes
import json
import os
import resource
import select
import shutil
import signal
import socket
import struct
import sys
import types
from typing import Any, NoReturn

REQUEST = struct.Struct("!d")  # the wall-clock limit in seconds
REPLY = struct.Struct("!iB")  # returncode (negative: killed by that signal) and flags
TIMED_OUT, SETUP_FAILED = 1, 2
CLONE_NEWNS, CLONE_NEWIPC, CLONE_NEWPID = 0x00020000, 0x08000000, 0x20000000
MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_BIND, MS_REC = 2, 4, 8, 4096, 16384
PR_SET_PDEATHSIG, PR_CAPBSET_DROP, PR_SET_SECUREBITS, PR_SET_NO_NEW_PRIVS, PR_CAP_AMBIENT = 1, 24, 28, 38, 47
PR_CAP_AMBIENT_CLEAR_ALL = 4
# Securebits NOROOT and NO_CAP_AMBIENT_RAISE set, NO_SETUID_FIXUP and KEEP_CAPS clear, all four locked: uid 0's execve
# grants no capabilities and changing uid drops them.
LOCKED_SECUREBITS = 0b11101011
SYS_MOUNT_SETATTR, AT_FDCWD, AT_RECURSIVE, MOUNT_ATTR_RDONLY = 442, -100, 0x8000, 1
CAPABILITY_VERSION_3 = 0x20080522
LIBC = ctypes.CDLL(None, use_errno=True)


def _check(result: int, what: str) -> None:
    if result != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"{what}: {os.strerror(errno)}")


def _mount(source: str, target: str, fstype: str | None, flags: int, data: str | None = None) -> None:
    _check(LIBC.mount(source.encode(), target.encode(), fstype and fstype.encode(), ctypes.c_ulong(flags),
                      data and data.encode()), f"mount {target}")


def _prctl(option: int, value: int = 0) -> None:
    _check(LIBC.prctl(option, ctypes.c_ulong(value), ctypes.c_ulong(0), ctypes.c_ulong(0), ctypes.c_ulong(0)),
           f"prctl {option}")


def _build_view(hide: list[str], keep: str | None) -> None:
    """Unshare modes: cover `hide` with empty tmpfs, bind `keep` (Python) back inside, make every mount read-only."""
    kept = os.open(keep, os.O_PATH) if keep else -1
    for path in hide:
        _mount("tmpfs", path, "tmpfs", MS_NOSUID | MS_NODEV, "size=1m,mode=0755")
    if keep:
        os.makedirs(keep, exist_ok=True)
        _mount(f"/proc/self/fd/{kept}", keep, None, MS_BIND | MS_REC)
        os.close(kept)
    attr = (ctypes.c_uint64 * 4)(MOUNT_ATTR_RDONLY, 0, 0, 0)
    _check(LIBC.syscall(ctypes.c_long(SYS_MOUNT_SETATTR), ctypes.c_long(AT_FDCWD), b"/", ctypes.c_uint(AT_RECURSIVE),
                        ctypes.byref(attr), ctypes.c_size_t(ctypes.sizeof(attr))), "mount_setattr / read-only")


def _private_dirs(config: dict[str, Any]) -> str:
    """In the program's process: new mount and IPC namespaces, fresh tmpfs /tmp, /var/tmp, /dev/shm, and /proc."""
    _check(LIBC.unshare(CLONE_NEWNS | CLONE_NEWIPC), "unshare")
    _mount("tmpfs", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, f"size={config['tmpfs_mb']}m,mode=1777")
    for path in ("/var/tmp", "/dev/shm"):
        if os.path.isdir(path) and not os.path.islink(path):
            _mount("tmpfs", path, "tmpfs", MS_NOSUID | MS_NODEV, "size=1m,mode=1777")
    _mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
    os.mkdir("/tmp/work", 0o700)
    if config["uid"] is not None:
        os.chown("/tmp/work", config["uid"], config["uid"])
    return "/tmp/work"


def _drop_privileges(config: dict[str, Any]) -> None:
    """No capabilities (bounding set, ambient, permitted, effective), no new privileges; as root, the worker's uid."""
    if config["mode"] != "plain":
        for cap in range(config["cap_last"] + 1):
            _prctl(PR_CAPBSET_DROP, cap)
        _prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL)
        _prctl(PR_SET_SECUREBITS, LOCKED_SECUREBITS)
        if config["uid"] is not None:
            os.setgroups([])
            os.setresgid(config["uid"], config["uid"], config["uid"])
            os.setresuid(config["uid"], config["uid"], config["uid"])
        header, data = (ctypes.c_uint32 * 2)(CAPABILITY_VERSION_3, 0), (ctypes.c_uint32 * 6)()
        _check(LIBC.capset(ctypes.byref(header), ctypes.byref(data)), "capset")
    _prctl(PR_SET_NO_NEW_PRIVS, 1)
    _prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def _exit_status(code: object) -> int:
    """The process status for `SystemExit(code)`, as the interpreter computes it."""
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    print(code, file=sys.stderr)
    return 1


def _execute(source: bytes) -> int:
    """Run the program as `python -` would in a fresh `__main__`, then shut down as the interpreter does."""
    main = types.ModuleType("__main__")
    loader = sys.modules["__main__"].__loader__  # the zygote's own, as for `python -`: BuiltinImporter
    main.__dict__.update(__builtins__=builtins, __file__="<stdin>", __cached__=None, __loader__=loader)
    sys.modules["__main__"] = main
    sys.argv[:] = ["-"]
    try:
        exec(compile(source, "<stdin>", "exec", dont_inherit=True), main.__dict__)
        status = 0
    except SystemExit as stop:
        status = _exit_status(stop.code)
    except BaseException as exc:  # noqa: B036 - reported like an uncaught exception, without this frame
        exc.__traceback__ = exc.__traceback__ and exc.__traceback__.tb_next
        sys.excepthook(type(exc), exc, exc.__traceback__)
        status = 1
    threading = sys.modules.get("threading")
    if threading is not None:
        threading._shutdown()  # type: ignore[attr-defined]  # wait for non-daemon threads
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:
            status = 120
    return status


def _program(config: dict[str, Any], source: bytes, out: int, err: int, workdir: str, ready: int) -> NoReturn:
    """The program's process (PID 1 of its namespace): private dirs, chdir, scrub, limit, drop, then run it."""
    try:
        os.setsid()
        if config["mode"] != "plain":
            workdir = _private_dirs(config)
        os.chdir(workdir)
        os.environ.clear()
        os.environ.update(config["env"], HOME=workdir, TMPDIR="/tmp" if config["mode"] != "plain" else workdir)
        null = os.open(os.devnull, os.O_RDONLY)
        for fd, target in ((null, 0), (out, 1), (err, 2)):
            os.dup2(fd, target)
        os.closerange(3, ready)
        os.closerange(ready + 1, os.sysconf("SC_OPEN_MAX"))
        for name, value in config["rlimits"].items():
            resource.setrlimit(getattr(resource, name), (value, value))
        _drop_privileges(config)
        os.write(ready, b"1")
        os.close(ready)
    except BaseException as exc:  # noqa: B036 - never return into the zygote's loop
        print(f"owb sandbox setup failed: {exc!r}", file=sys.stderr, flush=True)
        os._exit(1)
    os._exit(_execute(source))


def _wait(pid: int, wall_s: float, group: bool) -> bool:
    """Wait for the program up to `wall_s`; past it, SIGKILL it (its PID namespace, or in plain mode its group)."""
    pidfd = os.pidfd_open(pid)
    try:
        if select.select([pidfd], [], [], wall_s)[0]:
            return False
        (os.killpg if group else os.kill)(pid, signal.SIGKILL)
        return True
    finally:
        os.close(pidfd)


def _serve(config: dict[str, Any], pidns: int, wall_s: float, source_fd: int, out: int, err: int) -> bytes:
    """One request: fork the program as PID 1 of a new PID namespace (we stay outside, out of its reach), wait for
    it or kill it at the wall-clock limit, reap it (its namespace dies with it) and report."""
    source = os.pread(source_fd, os.fstat(source_fd).st_size, 0)
    os.close(source_fd)
    plain = config["mode"] == "plain"
    workdir = os.path.join(config["scratch"], str(os.getpid()))
    if plain:
        os.mkdir(workdir, 0o700)
    ready_r, ready_w = os.pipe()
    if not plain:
        _check(LIBC.unshare(CLONE_NEWPID), "unshare")  # our next child is PID 1 of a new namespace
    try:
        pid = os.fork()
        if pid == 0:
            os.close(ready_r)
            _program(config, source, out, err, workdir, ready_w)
    finally:
        if not plain:  # back to our own namespace for our children, so that the next unshare works
            _check(LIBC.setns(pidns, CLONE_NEWPID), "setns")
    for fd in (ready_w, out, err):
        os.close(fd)
    timed_out = _wait(pid, wall_s, plain)
    _, status, usage = os.wait4(pid, 0)
    # Killed at the CPU-time limit (as PID 1 it ignores SIGXCPU, so the hard limit's SIGKILL ends it): a busy loop
    # reaches that limit about when the wall clock runs out, and either way it ran out of time.
    cpu_limit = config["rlimits"].get("RLIMIT_CPU")
    if os.WIFSIGNALED(status) and cpu_limit and usage.ru_utime + usage.ru_stime >= cpu_limit - 0.05:
        timed_out = True
    if plain:
        try:
            os.killpg(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        shutil.rmtree(workdir, ignore_errors=True)
    flags = (TIMED_OUT if timed_out else 0) | (0 if os.read(ready_r, 1) == b"1" else SETUP_FAILED)
    os.close(ready_r)
    return REPLY.pack(os.waitstatus_to_exitcode(status), flags)


def main() -> None:
    """Set up the view (unshare modes), preload common modules, then serve requests until the harness hangs up."""
    config = json.loads(sys.argv[1])
    os.umask(0o022)
    if config["mode"] in ("root-namespaces", "user-namespaces"):
        _build_view(config["hide"], config["keep"])
    for name in config["preload"]:
        __import__(name)
    pidns = os.open("/proc/self/ns/pid", os.O_RDONLY)
    channel = socket.socket(fileno=config["fd"])
    while True:
        try:
            data, fds, _, _ = socket.recv_fds(channel, REQUEST.size, 3)
        except ConnectionError:
            return
        if len(data) != REQUEST.size or len(fds) != 3:
            return
        channel.sendall(_serve(config, pidns, REQUEST.unpack(data)[0], *fds))


if __name__ == "__main__":
    main()
