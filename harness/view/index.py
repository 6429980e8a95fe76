"""An index of one task's samples file: per sample its location and a small summary (no texts), built in one streamed
pass and cached under $OWB_HOME/view/ keyed by the file's path, size and mtime, so details are read by seeking."""

from __future__ import annotations

import hashlib
import json
from collections import OrderedDict
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from harness.core.errors import StorageError
from harness.core.paths import owb_home
from harness.records.lines import Location
from harness.records.sample import SampleStats, parse_sample
from harness.records.samples import TaskSamples
from harness.records.store import atomic_write_text

INDEX_VERSION = 2
SHORT = 80  # characters of the extracted answer kept in the index
MEMORY = 8  # indexes kept in memory


class StatsLine(SampleStats):
    """What the index reads of a samples line: the stats, and the prompt's hash where the layout names it."""

    prompt_hash: str | None = None
    target: Any = None


@dataclass(frozen=True, slots=True)
class IndexEntry:
    """One sample: where its line is, who it is, its grade and the figures lists and filters need."""

    chunk: int
    offset: int
    doc_id: str
    sample_idx: int
    scores: dict[str, float]
    extracted: str  # shortened, as text
    target: str  # shortened, as text
    answer_key: str  # the extracted answer in full as JSON, hashed: what "the K samples disagree" compares
    truncated: bool
    finish_reason: str
    open_think: bool  # the think block was never closed
    status: str | None
    exec_s: float | None
    extraction_failed: bool | None
    prompt_tokens: int
    output_tokens: int
    reasoning_tokens: int
    ttft_s: float | None
    e2e_s: float | None
    prompt_hash: str | None

    @property
    def location(self) -> Location:
        """Where the sample's line is."""
        return Location(self.chunk, self.offset)


FIELDS = tuple(f.name for f in fields(IndexEntry))


class IndexSource(BaseModel):
    """What an index was built from: the samples file (path, size, mtime) and the think-end tag of the run's card."""

    version: int = INDEX_VERSION
    path: str
    size: int
    mtime_ns: int
    think_end: str | None


@dataclass(frozen=True)
class TaskIndex:
    """Every complete sample of a samples file, in file order, and what the index was built from."""

    source: IndexSource
    entries: list[IndexEntry]

    def dump(self) -> str:
        """The cache file: the source, the field names, and one JSON array per sample."""
        rows = [[getattr(e, name) for name in FIELDS] for e in self.entries]
        return json.dumps({"source": self.source.model_dump(), "fields": FIELDS, "rows": rows}, ensure_ascii=False)

    @classmethod
    def load(cls, text: bytes) -> TaskIndex | None:
        """An index from its cache file (None: unreadable or of another layout)."""
        try:
            data = json.loads(text)
            if tuple(data["fields"]) != FIELDS:
                return None
            return cls(IndexSource.model_validate(data["source"]), [IndexEntry(*row) for row in data["rows"]])
        except (ValueError, TypeError, KeyError, ValidationError):
            return None


def shorten(value: Any, limit: int = SHORT) -> str:
    """A value as short text: strings as they are, anything else as JSON; cut at `limit` characters."""
    text = "" if value is None else value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _entry(samples: TaskSamples, location: Location, line: bytes, think_end: str | None) -> IndexEntry:
    stats = StatsLine.model_validate_json(line)
    open_think = False
    if stats.truncated and think_end is not None:
        record = parse_sample(line, samples.prompt)
        open_think = think_end not in record.raw_output and not record.answer.strip()
    full = json.dumps(stats.extracted, sort_keys=True, ensure_ascii=False)
    return IndexEntry(chunk=location.chunk, offset=location.offset, doc_id=stats.doc_id, sample_idx=stats.sample_idx,
                      scores=stats.scores, extracted=shorten(stats.extracted), target=shorten(stats.target),
                      answer_key=hashlib.sha256(full.encode()).hexdigest()[:16], truncated=stats.truncated,
                      finish_reason=stats.finish_reason, open_think=open_think, status=stats.status,
                      exec_s=stats.exec_s, extraction_failed=stats.extraction_failed,
                      prompt_tokens=stats.prompt_tokens, output_tokens=stats.output_tokens,
                      reasoning_tokens=stats.reasoning_tokens, ttft_s=stats.ttft_s, e2e_s=stats.e2e_s,
                      prompt_hash=stats.prompt_hash)


def build(samples: TaskSamples, think_end: str | None) -> TaskIndex:
    """One streamed pass over the samples file (a torn tail skipped); texts are read only for truncated samples,
    to tell a think block left open."""
    stat = samples.file.path.stat()
    entries = [_entry(samples, location, line, think_end) for location, line in samples.located()]
    source = IndexSource(path=str(samples.file.path), size=stat.st_size, mtime_ns=stat.st_mtime_ns,
                         think_end=think_end)
    return TaskIndex(source, entries)


def cache_file(path: Path) -> Path:
    """Where the index of a samples file is cached: under $OWB_HOME/view/, named by the file's path."""
    name = hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:24]
    return owb_home() / "view" / "index" / f"{name}.json"


class Indexes:
    """The indexes of samples files: the latest few in memory, every one on disk under $OWB_HOME/view/; one is built
    again when its file's size or mtime changed (a run still writing). `built` and `loaded` count what happened."""

    def __init__(self) -> None:
        self._memory: OrderedDict[str, TaskIndex] = OrderedDict()
        self.built = 0
        self.loaded = 0

    def of(self, samples: TaskSamples, think_end: str | None) -> TaskIndex:
        """The current index of a task's samples file."""
        path = samples.file.path
        if not path.is_file():
            return TaskIndex(IndexSource(path=str(path), size=0, mtime_ns=0, think_end=think_end), [])
        stat = path.stat()
        now = IndexSource(path=str(path), size=stat.st_size, mtime_ns=stat.st_mtime_ns, think_end=think_end)

        def fresh(index: TaskIndex | None) -> bool:
            return index is not None and index.source == now

        index = self._memory.get(str(path))
        if not fresh(index):
            index = self._from_disk(path)
            if fresh(index):
                self.loaded += 1
            else:
                index = build(samples, think_end)
                self.built += 1
                self._save(path, index)
        assert index is not None
        self._memory[str(path)] = index
        self._memory.move_to_end(str(path))
        while len(self._memory) > MEMORY:
            self._memory.popitem(last=False)
        return index

    @staticmethod
    def _from_disk(path: Path) -> TaskIndex | None:
        try:
            return TaskIndex.load(cache_file(path).read_bytes())
        except OSError:
            return None

    @staticmethod
    def _save(path: Path, index: TaskIndex) -> None:
        try:
            atomic_write_text(cache_file(path), index.dump())
        except (OSError, StorageError):
            pass  # an unwritable or full home only costs a rebuild next time
