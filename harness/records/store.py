"""The files of a run: run.json (written atomically) and samples/<task>.jsonl (appended as samples finish).

Reading never changes a run: a reader skips an incomplete last line (a sample being written, or one torn by a
kill) with a warning, and a corrupt line anywhere else is an error naming the file and line. Only the writer,
on resume, cuts a torn last line off before appending.
"""

from __future__ import annotations

import errno
import fcntl
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from pydantic import ValidationError

from harness.core.errors import ConfigError, DataError, StorageError, first_error
from harness.core.log import warn
from harness.records.bench import BenchRecord
from harness.records.run import RunRecord
from harness.records.sample import SampleRecord
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
    """One run's directory: its run.json and one samples file per task."""

    def __init__(self, path: Path) -> None:
        self.path = path

    @property
    def run_json(self) -> Path:
        """Path of run.json."""
        return self.path / "run.json"

    def samples_file(self, task: str) -> Path:
        """Path of a task's samples file."""
        return self.path / "samples" / f"{task}.jsonl"

    def read_run(self) -> RunRecord:
        """run.json (schema 1 or 2); a missing or unreadable one is a user error."""
        if not self.run_json.is_file():
            raise ConfigError(f"not a run directory (no run.json): {self.path}")
        return read_run_record(self.run_json.read_text(), str(self.run_json))

    def write_run(self, record: RunRecord) -> None:
        """Replace run.json atomically."""
        atomic_write_text(self.run_json, record.model_dump_json(indent=2) + "\n")

    def load_samples(self, task: str) -> list[SampleRecord]:
        """Every complete sample of a task, without changing the file; an incomplete last line is skipped."""
        path = self.samples_file(task)
        if not path.is_file():
            return []
        records, _ = _parse_samples(path)
        return records

    def repair_samples(self, task: str) -> None:
        """Cut a torn last line (from a kill mid-write) off a task's samples file, before appending to it."""
        path = self.samples_file(task)
        if path.is_file():
            _, good_bytes = _parse_samples(path, quiet=True)
            if good_bytes != path.stat().st_size:
                with path.open("r+b") as handle:
                    handle.truncate(good_bytes)

    def append_samples(self, task: str, records: list[SampleRecord]) -> None:
        """Append finished samples and flush them to disk at once (a write cut short leaves a torn last line, which
        the next writer cuts off)."""
        path = self.samples_file(task)
        with _disk_errors(path):
            path.parent.mkdir(parents=True, exist_ok=True)
            with path.open("a", encoding="utf-8") as handle:
                handle.write("".join(record.to_line() + "\n" for record in records))
                handle.flush()
                os.fsync(handle.fileno())

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

    def rewrite_samples(self, task: str, records: list[SampleRecord]) -> None:
        """Replace a task's samples file atomically (used by rescore)."""
        atomic_write_text(self.samples_file(task), "".join(record.to_line() + "\n" for record in records))


def _parse_samples(path: Path, quiet: bool = False) -> tuple[list[SampleRecord], int]:
    """The complete samples of a file and the byte length they occupy; a bad line before the last is an error."""
    data = path.read_bytes()
    lines = data.split(b"\n")
    tail = lines.pop()  # the bytes after the last newline: empty, or a line still being written / torn
    records: list[SampleRecord] = []
    for lineno, raw in enumerate(lines, 1):
        try:
            records.append(SampleRecord.model_validate_json(raw))
        except ValidationError as exc:
            raise DataError(f"{path} line {lineno}: not a valid sample ({first_error(exc)})") from None
    if tail.strip() and not quiet:
        warn(f"{path}: skipped an incomplete last line (a sample being written, or torn by a kill)")
    return records, len(data) - len(tail)

