"""What the viewer holds between requests: the runs, the sample indexes, and the leaderboard rows, searches and
diffs already computed (each dropped when the files it came from change). Nothing here writes a run directory."""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

from harness.records.run import RunRecord
from harness.records.sample import SampleRecord
from harness.records.samples import TaskSamples
from harness.view.diff import DiffQuery, PairedDiff, paired_diff
from harness.view.filters import FilterName, Grading, counts, disagreeing, grading, search
from harness.view.index import IndexEntry, Indexes, TaskIndex
from harness.view.leaderboard import BoardRow, Claims, board_row
from harness.view.runs import Catalog, Run

KEEP = 16  # searches and diffs remembered


@dataclass(frozen=True)
class TaskView:
    """One task of one run as the browser reads it: its samples, their index, how a sample fails, which documents'
    samples disagree and how many samples each filter shows."""

    run: Run
    record: RunRecord
    task: str
    samples: TaskSamples
    index: TaskIndex
    judge: Grading
    disagree: set[str]
    counts: dict[FilterName, int | None]

    def read(self, entry: IndexEntry) -> SampleRecord:
        """A sample in full, read at its location."""
        return self.samples.read(entry.location)

    def document(self, doc_id: str) -> list[tuple[int, IndexEntry]]:
        """A document's samples: positions and entries, by sample index."""
        found = [(i, e) for i, e in enumerate(self.index.entries) if e.doc_id == doc_id]
        return sorted(found, key=lambda p: p[1].sample_idx)


def _remember(cache: OrderedDict[tuple[object, ...], object], key: tuple[object, ...], value: object) -> None:
    cache[key] = value
    while len(cache) > KEEP:
        cache.popitem(last=False)


class Viewer:
    """The runs under the roots and what has been read of them."""

    def __init__(self, roots: list[Path]) -> None:
        self.catalog = Catalog(roots)
        self.indexes = Indexes()
        self.claims = Claims()
        self._rows: dict[Path, tuple[RunRecord, BoardRow]] = {}
        self._cache: OrderedDict[tuple[object, ...], object] = OrderedDict()

    def run(self, run_id: str) -> tuple[Run, RunRecord]:
        """A run and its record; KeyError when no run has that name."""
        run = self.catalog.get(run_id)
        return run, self.catalog.record(run)

    def rows(self) -> tuple[list[BoardRow], list[tuple[str, str]]]:
        """Every readable run as a leaderboard row (the runs found again first), and the skipped directories."""
        self.catalog.refresh()
        pairs, skipped = self.catalog.readable()
        rows = []
        for run, record in pairs:
            cached = self._rows.get(run.path)
            if cached is None or cached[0] is not record or cached[1].run != run:
                cached = (record, board_row(run, record, self.claims))
                self._rows[run.path] = cached
            rows.append(cached[1])
        return rows, [(s.shown, s.reason) for s in skipped]

    def task(self, run_id: str, task: str, below: float | None = None) -> TaskView:
        """A task of a run for the browser; KeyError when the run or task is unknown."""
        run, record = self.run(run_id)
        if task not in record.tasks:
            raise KeyError(task)
        samples = run.dir.samples(task)
        index = self.indexes.of(samples, record.model.card.reasoning.think_end)
        src = index.source
        key = ("task", src.path, src.size, src.mtime_ns, id(index), id(record), below)
        if key not in self._cache:
            judge = grading(record.tasks[task], index, below)
            disagree = disagreeing(index, judge)
            _remember(self._cache, key, TaskView(run, record, task, samples, index, judge, disagree,
                                                 counts(index, judge, disagree)))
        view = self._cache[key]
        assert isinstance(view, TaskView)
        return view

    def search(self, view: TaskView, text: str) -> set[int]:
        """Positions of the task's samples holding the text (remembered for the latest searches)."""
        src = view.index.source
        key = ("search", src.path, src.size, src.mtime_ns, text)
        if key not in self._cache:
            _remember(self._cache, key, search(view.samples, view.index, text))
        found = self._cache[key]
        assert isinstance(found, set)
        return found

    def diff(self, base: Run, cand: Run, task: str, query: DiffQuery) -> PairedDiff:
        """The paired diff of two runs on a task (remembered until either run.json changes)."""
        stamps = tuple(r.dir.run_json.stat().st_mtime_ns for r in (base, cand))
        key = ("diff", base.path, cand.path, stamps, task, query.allow_config_change, query.max_drop, query.alpha)
        if key not in self._cache:
            _remember(self._cache, key, paired_diff(base.path, cand.path, task, query))
        found = self._cache[key]
        assert isinstance(found, PairedDiff)
        return found
