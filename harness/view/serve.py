"""Starting `owb view`'s server: the optional extra checked first, the port bound on loopback by default, one line
saying where it listens and the SSH port-forward that reaches it, then uvicorn until Ctrl-C."""

from __future__ import annotations

import importlib
import ipaddress
import socket
from collections.abc import Callable
from pathlib import Path

from harness.core.errors import ConfigError

EXTRA = ("starlette", "uvicorn", "jinja2")
WILDCARDS = ("0.0.0.0", "::", "")
BACKLOG = 128


def require_extra() -> None:
    """The view extra's packages import; otherwise one user error naming the pip command."""
    missing = []
    for name in EXTRA:
        try:
            importlib.import_module(name)
        except ImportError:
            missing.append(name)
    if missing:
        raise ConfigError(f"owb view needs {', '.join(missing)} (the view extra): pip install 'owb[view]'")


def is_loopback(host: str) -> bool:
    """Whether an address (or the name localhost) is this machine only."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def allowed_hosts(host: str) -> list[str]:
    """The Host header values the server answers: loopback names, and the address it listens on (any, for a
    wildcard address)."""
    if host in WILDCARDS:
        return ["*"]
    names = ["127.0.0.1", "localhost", "::1", "[::1]", host] + ([f"[{host}]"] if ":" in host else [])
    return list(dict.fromkeys(names))


def bind(host: str, port: int) -> socket.socket:
    """A socket listening on host:port (port 0: any free one); a port in use is a user error."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise ConfigError(f"cannot listen on {host}:{port} ({exc.strerror}); "
                          "pick another --port (0: any free one)") from None
    sock.listen(BACKLOG)  # listening from here: a browser opened on the banner's address waits, never refused
    return sock


def banner(runs: int, roots: list[Path], host: str, port: int) -> list[str]:
    """What `owb view` prints: where it listens, how to reach it over SSH, and a warning off loopback."""
    where = ", ".join(f"{r}/" if not str(r).endswith("/") else str(r) for r in roots)
    shown = f"[{host}]" if ":" in host else host
    lines = [f"owb view: {runs} run{'s' if runs != 1 else ''} under {where} at http://{shown}:{port}"]
    if is_loopback(host):
        lines[0] += f" (over SSH: ssh -L {port}:{shown}:{port} HOST)"
    else:
        lines.append(f"warning: listening on {host}: anyone who can reach this machine on port {port} can read "
                     "these runs (the default, 127.0.0.1, is this machine only)")
    return lines + ["press Ctrl-C to stop"]


def serve(roots: list[Path], host: str, port: int, announce: Callable[[str], None]) -> None:
    """Serve the runs under the roots until interrupted."""
    require_extra()
    import uvicorn

    from harness.view.app import create_app
    from harness.view.viewer import Viewer

    viewer = Viewer(roots)
    sock = bind(host, port)
    app = create_app(roots, allowed_hosts(host), viewer)
    for line in banner(len(viewer.catalog.runs), roots, host, sock.getsockname()[1]):
        announce(line)
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off")
    uvicorn.Server(config).run(sockets=[sock])


def write_export(roots: list[Path], out: Path) -> tuple[int, int, int]:
    """Write the static copy of the runs under the roots; (files, bytes, samples left out for the size cap)."""
    require_extra()
    from harness.view.export import export

    written = export(roots, out)
    return written.files, written.bytes, written.omitted
