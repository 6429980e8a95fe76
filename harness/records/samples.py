"""One task's samples in a run directory: `samples/<task>.jsonl` (one line per sample, appended as samples finish)
and `samples/<task>.prompts.jsonl` (each distinct prompt once, named by its hash), plain or compressed alike.

Every reader streams: a run's texts are never held in memory at once. Reading never changes a run: a torn tail
(a sample being written, or one cut by a kill) is skipped with a warning and a corrupt line anywhere else is an
error naming the file and line; only the writer, on resume, cuts a torn tail off before appending.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path

from pydantic import BaseModel, ValidationError

from harness.core.errors import DataError, first_error
from harness.core.log import warn
from harness.records.lines import SUFFIXES, Compression, LinesFile, Location, new_file_mode
from harness.records.sample import SampleRecord, SampleStats, parse_sample, prompt_hash

CHUNK_LINES = 256  # samples per chunk when a file is rewritten
PROMPT_CACHE = 256  # prompts kept in memory while reading (samples of a document are written together)


class StoredPrompt(BaseModel):
    """A line of samples/<task>.prompts.jsonl."""

    prompt_hash: str
    prompt: str


class TaskSamples:
    """The samples and prompts files of one task; new files are written with `compression`, existing ones keep
    theirs."""

    def __init__(self, directory: Path, task: str, compression: Compression = "none") -> None:
        self.task = task
        self.file = LinesFile(_existing(directory / f"{task}.jsonl", compression))
        self.prompts = LinesFile(_existing(directory / f"{task}.prompts.jsonl", self.file.compression))
        self._prompt_at: dict[str, Location] | None = None
        self._stored: set[str] | None = None  # hashes of the prompts on disk (what the writer needs)
        self._cache: dict[str, str] = {}

    def exists(self) -> bool:
        """Whether any sample of the task was written."""
        return self.file.path.is_file()

    def append(self, records: list[SampleRecord]) -> None:
        """Append finished samples as one chunk, their new prompts first, each flushed to disk before returning."""
        self._store_prompts(records)
        self.file.append([r.to_line(prompt_hash(r.prompt)) for r in records])

    def _store_prompts(self, records: Iterable[SampleRecord]) -> None:
        if self._stored is None:
            self._stored = set(self._prompt_index())
        new = {prompt_hash(r.prompt): r.prompt for r in records}
        new = {h: text for h, text in new.items() if h not in self._stored}
        if new:
            self.prompts.append([StoredPrompt(prompt_hash=h, prompt=t).model_dump_json() for h, t in new.items()])
            self._stored.update(new)
            self._prompt_at = None  # re-read when a prompt is next looked up

    def _prompt_index(self) -> dict[str, Location]:
        if self._prompt_at is None:
            self._prompt_at = {StoredPrompt.model_validate_json(line).prompt_hash: loc
                               for loc, line in self.prompts.lines()}
        return self._prompt_at

    def prompt(self, hashed: str) -> str:
        """The prompt stored under a hash (a few recent ones kept in memory)."""
        if hashed not in self._cache:
            location = self._prompt_index().get(hashed)
            if location is None:
                raise DataError(f"{self.prompts.path}: no prompt with hash {hashed}")
            if len(self._cache) >= PROMPT_CACHE:
                self._cache.clear()
            self._cache[hashed] = StoredPrompt.model_validate_json(self.prompts.read_at(location)).prompt
        return self._cache[hashed]

    def located(self) -> Iterator[tuple[Location, bytes]]:
        """Every complete line with its location; warns when a torn tail was skipped."""
        yield from self.file.lines()
        if self.file.torn():
            warn(f"{self.file.path}: skipped an incomplete last line (a sample being written, or torn by a kill)")

    def records(self) -> Iterator[SampleRecord]:
        """Every complete sample, in full, one at a time."""
        for lineno, (_, line) in enumerate(self.located(), 1):
            yield self._parsed(lineno, line)

    def stats(self) -> Iterator[SampleStats]:
        """Every complete sample without its texts, one at a time."""
        for lineno, (_, line) in enumerate(self.located(), 1):
            try:
                yield SampleStats.model_validate_json(line)
            except ValidationError as exc:
                raise DataError(f"{self.file.path} line {lineno}: not a valid sample ({first_error(exc)})") from None

    def read(self, location: Location) -> SampleRecord:
        """The sample at a location (as `located` gave it)."""
        return self._parsed(None, self.file.read_at(location))

    def _parsed(self, lineno: int | None, line: bytes) -> SampleRecord:
        try:
            return parse_sample(line, self.prompt)
        except ValidationError as exc:
            where = f" line {lineno}" if lineno is not None else ""
            raise DataError(f"{self.file.path}{where}: not a valid sample ({first_error(exc)})") from None

    def keys(self) -> set[str]:
        """The keys of every complete sample."""
        return {s.key for s in self.stats()}

    def count(self) -> int:
        """How many complete samples there are."""
        return sum(1 for _ in self.file.lines())

    def repair(self) -> None:
        """Cut a torn tail (from a kill mid-write) off both files, before appending to them."""
        self.prompts.repair()
        self.file.repair()

    def rewrite(self, records: Iterable[SampleRecord]) -> None:
        """Replace the samples file with these samples (streamed), atomically: rescore writes a whole task anew."""
        fd, tmp = tempfile.mkstemp(dir=self.file.path.parent, prefix=f".{self.file.path.name}.")
        os.close(fd)
        staged = LinesFile(Path(tmp + SUFFIXES[self.file.compression]))
        os.replace(tmp, staged.path)
        try:
            chunk: list[SampleRecord] = []
            for record in records:
                chunk.append(record)
                if len(chunk) >= CHUNK_LINES:
                    self._stage(staged, chunk)
                    chunk = []
            self._stage(staged, chunk)
            os.chmod(staged.path, new_file_mode())
            os.replace(staged.path, self.file.path)
        except BaseException:
            staged.path.unlink(missing_ok=True)
            raise

    def _stage(self, staged: LinesFile, chunk: list[SampleRecord]) -> None:
        if chunk:
            self._store_prompts(chunk)
            staged.append([r.to_line(prompt_hash(r.prompt)) for r in chunk])


def _existing(plain: Path, compression: Compression) -> Path:
    """The file as it exists under any compression's name, else the name for `compression`."""
    for suffix in SUFFIXES.values():
        candidate = plain.with_name(plain.name + suffix)
        if candidate.is_file():
            return candidate
    return plain.with_name(plain.name + SUFFIXES[compression])
