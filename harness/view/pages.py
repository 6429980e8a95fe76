"""What each page shows, as template contexts built from the viewer's state: leaderboard, run page, sample browser
(one page of rows and the detail of one sample), paired diff and plots. Shared by the server and the export."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from harness.records.run import RunRecord, TaskResult
from harness.records.sample import SampleRecord
from harness.view.diff import DOCS_PER_PAGE, SHOWS, DiffQuery, DocPair, PairedDiff
from harness.view.filters import FILTERS, PAGE, SORTS, SampleQuery, ordered, predicate
from harness.view.index import IndexEntry
from harness.view.leaderboard import BoardQuery, board
from harness.view.plots import Plot, Shown, budget_plots, cost_plots, label, length_plot, score_plots, speed_plots
from harness.view.render import Links
from harness.view.runs import Run
from harness.view.viewer import TaskView, Viewer

MAX_LENGTH_RUNS = 6  # runs whose length histograms the plots page draws (each needs the runs' sample indexes)


def leaderboard(viewer: Viewer, query: BoardQuery) -> dict[str, Any]:
    """The leaderboard's context."""
    rows, skipped = viewer.rows()
    return {"board": board(rows, query), "query": query, "skipped": skipped,
            "statuses": ["", "complete", "running", "merged"]}


@dataclass(frozen=True)
class TaskSummary:
    """A task on its run's page: the record's summary and what the samples' index adds."""

    name: str
    result: TaskResult
    samples: int
    extraction_failed: float | None
    open_think: float | None
    code_errors: int | None
    files: list[str]


def _share(entries: list[IndexEntry], count: int | None) -> float | None:
    return None if count is None or not entries else count / len(entries)


def task_summary(viewer: Viewer, run: Run, task: str) -> TaskSummary:
    """A task's summary with the shares only the samples tell."""
    view = viewer.task(run.id, task)
    entries, found = view.index.entries, view.counts
    has_code = any(e.status is not None for e in entries)
    files = [p.relative_to(run.path).as_posix() for p in (view.samples.file.path, view.samples.prompts.path)
             if p.is_file()]
    return TaskSummary(task, view.record.tasks[task], len(entries), _share(entries, found["extraction_failed"]),
                       _share(entries, found["open_think"]), found["code_error"] if has_code else None, files)


def run_page(viewer: Viewer, run_id: str) -> dict[str, Any]:
    """A run's context: one summary per task, settings, warnings, environment, files and commands."""
    run, record = viewer.run(run_id)
    tasks = [task_summary(viewer, run, t) for t in record.tasks]
    return {"run": run, "record": record, "tasks": tasks, "label": label(run, record),
            "invocation": record.invocation.model_dump(exclude_defaults=True)}


@dataclass(frozen=True)
class Detail:
    """The sample open in the detail pane, the other samples of its document, and previous/next in the list."""

    entry: IndexEntry
    record: SampleRecord
    others: list[tuple[IndexEntry, SampleRecord]]
    prev: dict[str, str] | None
    next: dict[str, str] | None


def _neighbour(query: SampleQuery, view: TaskView, positions: list[int], at: int) -> dict[str, str] | None:
    if not 0 <= at < len(positions):
        return None
    e = view.index.entries[positions[at]]
    return query.link(doc=e.doc_id, k=e.sample_idx, page=at // PAGE + 1)


def _detail(view: TaskView, query: SampleQuery, positions: list[int]) -> Detail | None:
    if query.doc is None:
        return None
    samples = view.document(query.doc)
    chosen = next(((i, e) for i, e in samples if query.k is None or e.sample_idx == query.k), None)
    if chosen is None:
        return None
    at, entry = chosen
    others = [(e, view.read(e)) for i, e in samples if i != at]
    place = positions.index(at) if at in positions else -1
    prev = _neighbour(query, view, positions, place - 1) if place >= 0 else None
    nxt = _neighbour(query, view, positions, place + 1) if place >= 0 else None
    return Detail(entry, view.read(entry), others, prev, nxt)


def samples_page(viewer: Viewer, run_id: str, task: str, query: SampleQuery) -> dict[str, Any]:
    """A task's sample browser: the filter counts, one page of rows, and the detail of the chosen sample."""
    view = viewer.task(run_id, task, query.below)
    test = predicate(query.filter, view.judge, view.disagree)
    positions = [i for i, e in enumerate(view.index.entries) if test(e)]
    if query.q:
        hits = viewer.search(view, query.q)
        positions = [i for i in positions if i in hits]
    positions = ordered(view.index, positions, query.sort)
    pages = max(1, math.ceil(len(positions) / PAGE))
    page = min(query.page, pages)
    rows = [view.index.entries[i] for i in positions[(page - 1) * PAGE : page * PAGE]]
    return {"run": view.run, "record": view.record, "task": task, "view": view, "query": query, "rows": rows,
            "matched": len(positions), "page": page, "pages": pages, "filters": FILTERS, "sorts": SORTS,
            "detail": _detail(view, query, positions), "label": label(view.run, view.record)}


@dataclass(frozen=True)
class DiffDoc:
    """One document of the diff: both runs' samples of it."""

    pair: DocPair
    base_samples: list[SampleRecord]
    cand_samples: list[SampleRecord]


def _doc_samples(view: TaskView, doc_id: str) -> list[SampleRecord]:
    return [view.read(e) for _, e in view.document(doc_id)]


def diff_page(viewer: Viewer, base_id: str, cand_id: str, task: str, query: DiffQuery) -> dict[str, Any]:
    """The paired diff's context: check's verdict per metric, the lost/won counts and one page of documents."""
    base, _ = viewer.run(base_id)
    cand, _ = viewer.run(cand_id)
    diff: PairedDiff = viewer.diff(base, cand, task, query)
    first = diff.metrics[0] if diff.metrics else None
    chosen = next((m for m in diff.metrics if m.check.metric == query.metric), first)
    docs: list[DiffDoc] = []
    pages, page = 1, 1
    if chosen is not None:
        shown = chosen.shown(query.show)
        pages = max(1, math.ceil(len(shown) / DOCS_PER_PAGE))
        page = min(query.page, pages)
        base_view, cand_view = viewer.task(base.id, task), viewer.task(cand.id, task)
        for p in shown[(page - 1) * DOCS_PER_PAGE : page * DOCS_PER_PAGE]:
            docs.append(DiffDoc(p, _doc_samples(base_view, p.doc_id), _doc_samples(cand_view, p.doc_id)))
    return {"base": base, "cand": cand, "task": task, "diff": diff, "chosen": chosen, "docs": docs, "query": query,
            "page": page, "pages": pages, "shows": SHOWS}


def plots_page(viewer: Viewer, run_ids: list[str], links: Links) -> dict[str, Any]:
    """The plots' context over the chosen runs (all when none is chosen)."""
    rows, _ = viewer.rows()
    items: list[tuple[Run, RunRecord]] = [(r.run, r.record) for r in rows if not run_ids or r.run.id in run_ids]

    def href(run: Run) -> str:
        return links.run(run.id)

    lengths: list[Plot] = []
    if len(items) <= MAX_LENGTH_RUNS:
        for run, record in items:
            for task in record.tasks:
                view = viewer.task(run.id, task)
                right = [e.output_tokens for e in view.index.entries if not view.judge.failed(e)]
                wrong = [e.output_tokens for e in view.index.entries if view.judge.failed(e)]
                lengths.append(length_plot(run, record, task, right, wrong))
    shown = Shown(items, href, viewer.claims)
    return {"items": items, "scores": score_plots(shown), "speed": speed_plots(shown),
            "cost": cost_plots(shown), "budget": budget_plots(shown), "lengths": lengths,
            "too_many": len(items) > MAX_LENGTH_RUNS, "max_length_runs": MAX_LENGTH_RUNS, "run_ids": run_ids}
