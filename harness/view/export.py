"""`owb view --export DIR`: a static copy for sharing without a server: the leaderboard, the plots, every run's page
and, per task, its failed and its disagreeing samples in full, within a size cap (the rest named by path)."""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.core.errors import ConfigError
from harness.view import pages
from harness.view.filters import FILTERS, FilterName, predicate
from harness.view.leaderboard import BoardQuery
from harness.view.plots import label
from harness.view.render import STATIC, ExportLinks, environment, file_name
from harness.view.viewer import TaskView, Viewer

CAP_BYTES = 20 * 2**20  # the whole export
SAMPLE_OVERHEAD = 3000  # bytes of markup around one sample's texts
EXPORTED: tuple[FilterName, ...] = ("failed", "disagree")


@dataclass
class Written:
    """What an export wrote: files, bytes, and samples left out for the cap."""

    out: Path
    cap: int
    files: int = 0
    bytes: int = 0
    omitted: int = 0
    pages_left: int = 0
    notes: list[str] = field(default_factory=list)

    def write(self, relative: str, text: str) -> None:
        """Write one file of the export."""
        path = self.out / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        data = text.encode("utf-8")
        path.write_bytes(data)
        self.files += 1
        self.bytes += len(data)

    def share(self) -> int:
        """Bytes the next sample page may take: an even share of what is left."""
        return max(0, self.cap - self.bytes) // max(1, self.pages_left)


def _refuse_inside_runs(viewer: Viewer, out: Path) -> None:
    target = out.resolve()
    for run in viewer.catalog.runs:
        if target == run.path or run.path in target.parents:
            raise ConfigError(f"--export {out} is inside the run directory {run.shown}; owb view never writes there")


def _sample_page(viewer: Viewer, view: TaskView, name: FilterName, budget: int) -> tuple[dict[str, Any], int]:
    """The samples a filter shows, in full, as many as fit the budget; and how many were left out."""
    test = predicate(name, view.judge, view.disagree)
    chosen = [e for e in view.index.entries if test(e)]
    items, used = [], 0
    for entry in chosen:
        record = view.read(entry)
        size = SAMPLE_OVERHEAD + 2 * (len(record.prompt) + len(record.raw_output) + len(str(record.target))
                                      + len(str(record.extracted)) + len(record.stderr or ""))
        if used + size > budget:
            break
        items.append((entry, record))
        used += size
    context = {"run": view.run, "record": view.record, "task": view.task, "view": view, "filter": FILTERS[name],
               "items": items, "total": len(chosen), "label": label(view.run, view.record),
               "path": view.samples.file.path}
    return context, len(chosen) - len(items)


def export(roots: list[Path], out: Path, cap: int = CAP_BYTES) -> Written:
    """Write the static copy of the runs under the roots into `out`."""
    viewer = Viewer(roots)
    _refuse_inside_runs(viewer, out)
    env = environment()
    written = Written(out, cap)

    def render(template: str, depth: int, context: dict[str, Any]) -> str:
        return env.get_template(template).render(links=ExportLinks(depth), **context)

    out.mkdir(parents=True, exist_ok=True)
    (out / "static").mkdir(exist_ok=True)
    shutil.copyfile(STATIC / "view.css", out / "static" / "view.css")
    written.write("index.html", render("leaderboard.html", 0, pages.leaderboard(viewer, BoardQuery())))
    written.write("plots.html", render("plots.html", 0, pages.plots_page(viewer, [], ExportLinks(0))))
    rows, _ = viewer.rows()
    for row in rows:
        page = render("run.html", 2, pages.run_page(viewer, row.run.id))
        written.write(f"runs/{file_name(row.run.id)}/index.html", page)
    jobs = [(row.run.id, task, name) for row in rows for task in row.record.tasks for name in EXPORTED]
    written.pages_left = len(jobs)
    for run_id, task, name in jobs:
        context, omitted = _sample_page(viewer, viewer.task(run_id, task), name, written.share())
        written.omitted += omitted
        written.write(f"runs/{file_name(run_id)}/{file_name(task)}.{name}.html",
                      render("export_samples.html", 2, {**context, "omitted": omitted}))
        written.pages_left -= 1
    return written
