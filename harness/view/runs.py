"""The runs `owb view` shows: every directory holding a run.json under the folders it was given, each under a short
URL name; run records read once and again when run.json changes; files reached only inside a found run directory."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from harness.core.errors import ConfigError, UserError, first_line
from harness.records.run import RunRecord
from harness.records.store import RunDir

SKIP_DIRS = {"samples", ".git", "__pycache__", "node_modules"}


@dataclass(frozen=True)
class Run:
    """A run directory found under a root: its URL name, its resolved path and the path as shown to the user."""

    id: str
    path: Path
    shown: str

    @property
    def dir(self) -> RunDir:
        """The run directory, for reading."""
        return RunDir(self.path)


@dataclass(frozen=True)
class Skipped:
    """A directory that looked like a run and is not shown, with the reason."""

    shown: str
    reason: str


def _run_dirs(root: Path) -> list[Path]:
    """Directories holding a run.json under root (root itself included), not following links, not descending into
    a run."""
    found = []
    for here, dirs, files in os.walk(root, followlinks=False):
        if "run.json" in files:
            found.append(Path(here))
            dirs[:] = []
        else:
            dirs[:] = sorted(d for d in dirs if d not in SKIP_DIRS and not d.startswith("."))
    return found


def discover(roots: list[Path]) -> list[Run]:
    """Every run directory under the roots, named by its directory name (a short hash of its path added where two
    share a name); a missing root is a user error."""
    paths: list[tuple[Path, str]] = []
    for root in roots:
        if not root.is_dir():
            raise ConfigError(f"not a directory: {root}")
        for found in _run_dirs(root):
            paths.append((found.resolve(), str(found)))
    unique = list(dict((path, shown) for path, shown in paths).items())
    names = [path.name for path, _ in unique]
    runs = []
    for path, shown in unique:
        name = path.name
        if names.count(name) > 1:
            name = f"{name}~{hashlib.sha256(str(path).encode()).hexdigest()[:6]}"
        runs.append(Run(name, path, shown))
    return runs


def _stamp(path: Path) -> tuple[int, int]:
    stat = path.stat()
    return stat.st_mtime_ns, stat.st_size


class Catalog:
    """The runs under the roots (found again on `refresh`), their records (cached until run.json changes) and the
    files inside them."""

    def __init__(self, roots: list[Path]) -> None:
        self.roots = roots
        self.runs = discover(roots)
        self._records: dict[Path, tuple[tuple[int, int], RunRecord]] = {}

    def refresh(self) -> None:
        """Find the run directories again (runs started since appear)."""
        self.runs = discover(self.roots)

    def get(self, run_id: str) -> Run:
        """The run of a URL name; KeyError when there is none."""
        for run in self.runs:
            if run.id == run_id:
                return run
        raise KeyError(run_id)

    def record(self, run: Run) -> RunRecord:
        """A run's run.json, read again only when it changed."""
        stamp = _stamp(run.dir.run_json)
        cached = self._records.get(run.path)
        if cached is None or cached[0] != stamp:
            cached = (stamp, run.dir.read_run())
            self._records[run.path] = cached
        return cached[1]

    def readable(self) -> tuple[list[tuple[Run, RunRecord]], list[Skipped]]:
        """Every run with its record, and the directories whose run.json cannot be read, with the reason."""
        good, skipped = [], []
        for run in self.runs:
            try:
                good.append((run, self.record(run)))
            except (UserError, OSError, ValueError) as exc:
                skipped.append(Skipped(run.shown, first_line(exc)))
        return good, skipped


def inside(run: Run, relative: str) -> Path | None:
    """A regular file inside the run directory named by a relative path; None for anything else (an absolute path,
    `..` out of the run, a link that resolves outside it, a directory, a missing file)."""
    if not relative or relative.startswith("/") or "\x00" in relative:
        return None
    root = os.path.realpath(run.path)
    target = os.path.realpath(os.path.join(root, relative))
    if os.path.commonpath([root, target]) != root or not os.path.isfile(target):
        return None
    return Path(target)
