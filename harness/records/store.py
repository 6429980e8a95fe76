"""The files of a run: run.json (written atomically), each task's samples (harness.records.samples), the lock held
while a run is written, and bench.json."""

from __future__ import annotations

import errno
import fcntl
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from harness.core.errors import ConfigError, StorageError
from harness.records.bench import BenchRecord
from harness.records.lines import Compression, new_file_mode
from harness.records.run import RunRecord
from harness.records.sample import SampleRecord
from harness.records.samples import TaskSamples
from harness.records.upgrade import read_bench_record, read_run_record

FULL = {errno.ENOSPC, errno.EDQUOT}


@contextmanager
def _disk_errors(path: Path) -> Iterator[None]:
    """A full disk (or quota) becomes one StorageError naming the file; other OS errors pass through."""
    try:
        yield
    except OSError as exc:
        if exc.errno in FULL:
            raise StorageError(f"no space left on the device writing {path}") from None
        raise


def atomic_write_text(path: Path, text: str) -> None:
    """Write through a temporary file and a rename, so a reader never sees half a file."""
    with _disk_errors(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(text)
            os.chmod(tmp, new_file_mode())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


def write_bench(path: Path, record: BenchRecord) -> None:
    """Write bench.json atomically."""
    atomic_write_text(path, record.model_dump_json(indent=2) + "\n")


def read_bench(path: Path) -> BenchRecord:
    """A bench.json (schema 1 or 2)."""
    if not path.is_file():
        raise ConfigError(f"bench record not found: {path}")
    return read_bench_record(path.read_text(), str(path))


class RunDir:
    """One run's directory: its run.json and, per task, its samples (`samples(task)`); new samples files are written
    with `compression`."""

    def __init__(self, path: Path, compression: Compression = "none") -> None:
        self.path = path
        self.compression = compression

    @property
    def run_json(self) -> Path:
        """Path of run.json."""
        return self.path / "run.json"

    def samples(self, task: str) -> TaskSamples:
        """A task's samples: appended, streamed, read at a location."""
        return TaskSamples(self.path / "samples", task, self.compression)

    def read_run(self) -> RunRecord:
        """run.json (schema 1, 2 or 3); a missing or unreadable one is a user error."""
        if not self.run_json.is_file():
            raise ConfigError(f"not a run directory (no run.json): {self.path}")
        return read_run_record(self.run_json.read_text(), str(self.run_json))

    def write_run(self, record: RunRecord) -> None:
        """Replace run.json atomically."""
        atomic_write_text(self.run_json, record.model_dump_json(indent=2) + "\n")

    def append_samples(self, task: str, records: list[SampleRecord]) -> None:
        """Append finished samples and flush them to disk at once (a write cut short leaves a torn tail, which the
        next writer cuts off); a full disk is one StorageError."""
        with _disk_errors(self.path / "samples"):
            self.samples(task).append(records)

    def create(self) -> None:
        """Claim a new run directory; one that exists (another process's run) is an error, never shared."""
        try:
            self.path.mkdir(parents=True, exist_ok=False)
        except FileExistsError:
            raise ConfigError(f"run directory already exists: {self.path}") from None

    @contextmanager
    def writing(self) -> Iterator[None]:
        """Hold the run's lock while writing it: a second owb process on the same run is refused."""
        lock_path = self.path / ".owb.lock"
        with _disk_errors(lock_path):
            handle = lock_path.open("a+")
        try:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                handle.seek(0)
                holder = handle.read().strip() or "?"
                raise ConfigError(f"run {self.path} is being written by another owb process (pid {holder})") from None
            handle.seek(0)
            handle.truncate()
            handle.write(str(os.getpid()))
            handle.flush()
            yield
        finally:
            handle.close()
