"""The files of a run: run.json (written atomically) and samples/<task>.jsonl (appended as samples finish)."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from harness.errors import UserError

SCHEMA_VERSION = 1


def atomic_write_json(path: Path, data: Any) -> None:
    """Write JSON through a temporary file and a rename, so a reader never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "w") as handle:
        json.dump(data, handle, indent=2, ensure_ascii=False, default=str)
        handle.write("\n")
    os.replace(tmp, path)


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

    def read_run(self) -> dict[str, Any]:
        """run.json as a dict; a missing or unreadable one is a user error."""
        if not self.run_json.is_file():
            raise UserError(f"not a run directory (no run.json): {self.path}")
        try:
            data: dict[str, Any] = json.loads(self.run_json.read_text())
        except json.JSONDecodeError as exc:
            raise UserError(f"unreadable run.json in {self.path}: {exc.msg}") from None
        return data

    def write_run(self, data: dict[str, Any]) -> None:
        """Replace run.json atomically."""
        atomic_write_json(self.run_json, data)

    def load_samples(self, task: str) -> list[dict[str, Any]]:
        """Every complete sample line of a task; a torn last line (from a kill mid-write) is dropped from the file."""
        path = self.samples_file(task)
        if not path.is_file():
            return []
        records, good_bytes = [], 0
        with path.open("rb") as handle:
            for raw in handle:
                try:
                    records.append(json.loads(raw))
                except json.JSONDecodeError:
                    break
                if not raw.endswith(b"\n"):
                    records.pop()
                    break
                good_bytes += len(raw)
        if good_bytes != path.stat().st_size:
            with path.open("r+b") as handle:
                handle.truncate(good_bytes)
        return records

    def append_samples(self, task: str, records: list[dict[str, Any]]) -> None:
        """Append finished samples and flush them to disk at once."""
        path = self.samples_file(task)
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a", encoding="utf-8") as handle:
            for record in records:
                handle.write(json.dumps(record, ensure_ascii=False, default=str) + "\n")
            handle.flush()
            os.fsync(handle.fileno())

    def rewrite_samples(self, task: str, records: list[dict[str, Any]]) -> None:
        """Replace a task's samples file atomically (used by rescore)."""
        path = self.samples_file(task)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            for record in records:
                handle.write(json.dumps(record, ensure_ascii=False, default=str) + "\n")
        os.replace(tmp, path)
