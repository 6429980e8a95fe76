"""The leaderboard: one row per run (who ran, how, when, from which commit), per task the primary metric with its CI
and n beside the published claims, speed and cost; sortable and filterable from the URL; runs of a task that scored
different documents are marked."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict

from harness.config.cards import PublishedScore
from harness.measure.perf import run_output_tokens_per_s
from harness.records.run import MetricSummary, RunRecord, TaskResult
from harness.report.rows import ShownClaim, matching_claims
from harness.view.runs import Run

StatusName = Literal["complete", "running", "merged"]
NAME_COLUMNS = ("run", "model", "backend", "thinking", "protocol", "status", "commit")


class BoardQuery(BaseModel):
    """The leaderboard's state in the URL: the sort column and direction, and the filters."""

    model_config = ConfigDict(extra="ignore")

    sort: str = "created"
    desc: bool | None = None  # None: names ascending, times and figures descending
    model: str = ""  # a substring of the model id
    task: str = ""  # show only this task's columns, and only runs that have it
    status: Literal["", "complete", "running", "merged"] = ""

    def descending(self) -> bool:
        """Whether the sort runs from the largest (the latest) down."""
        return self.desc if self.desc is not None else self.sort not in NAME_COLUMNS


@dataclass(frozen=True)
class TaskCell:
    """One task of one run: its primary metric, the documents it scored, the claims beside it, speed and cost."""

    metric: str
    summary: MetricSummary | None
    n: int | None
    docs_hash: str
    claims: list[ShownClaim]
    tok_s: float | None
    ttft_p50_s: float | None
    usd_per_1k_correct: float | None
    joules_per_correct: float | None

    def deltas(self) -> list[tuple[ShownClaim, float | None]]:
        """Each claim with the run's value minus the claim's (None when the run has no value)."""
        value = self.summary.value if self.summary is not None else None
        return [(c, None if value is None else value - c.claim.value) for c in self.claims]


class Claims:
    """The published claims measured like a run's task and metric (`report.rows.matching_claims`), remembered by
    everything they depend on: the card, the task and metric, the thinking mode, the protocol and K."""

    def __init__(self) -> None:
        self._found: dict[tuple[object, ...], list[PublishedScore]] = {}

    def of(self, record: RunRecord, task: str, metric: str) -> list[PublishedScore]:
        """The claims beside this task and metric of the run."""
        key = (record.model.card_hash, task, metric, record.thinking, record.invocation.protocol,
               record.tasks[task].config.generation.samples_per_doc)
        if key not in self._found:
            self._found[key] = matching_claims(record, task, metric)
        return self._found[key]


def task_cell(record: RunRecord, task: str, result: TaskResult, claims: Claims) -> TaskCell:
    """The leaderboard cell of a task of a run."""
    metric = result.primary_metric or next(iter(result.metrics), "")
    summary = result.metrics.get(metric)
    lo, hi = summary.ci95 if summary is not None and summary.ci95 else (float("-inf"), float("inf"))
    shown = [ShownClaim(c, not lo <= c.value <= hi) for c in claims.of(record, task, metric)] if metric else []
    perf, cost = result.perf, result.cost
    return TaskCell(metric, summary, result.n, result.config.data.docs_hash, shown,
                    perf.output_tokens_per_s if perf else None,
                    perf.ttft_s.p50 if perf and perf.ttft_s else None,
                    cost.usd_per_1k_correct if cost else None, cost.joules_per_correct if cost else None)


@dataclass(frozen=True)
class BoardRow:
    """One run on the leaderboard."""

    run: Run
    record: RunRecord
    cells: dict[str, TaskCell]
    out_tok_s: float | None

    @property
    def status(self) -> StatusName:
        """complete, running, or merged (a complete run joined from shards)."""
        if self.record.status == "running":
            return "running"
        return "merged" if self.record.merged_from else "complete"

    @property
    def samples_per_doc(self) -> str:
        """K, or each task's K when they differ."""
        ks = sorted({t.config.generation.samples_per_doc for t in self.record.tasks.values()})
        return "/".join(map(str, ks)) if ks else str(self.record.samples_per_doc or "-")

    @property
    def commit(self) -> str:
        """The git commit owb ran from (short), with `+dirty` for uncommitted changes."""
        env = self.record.environment
        return (env.git_commit or "-")[:10] + ("+dirty" if env.git_dirty else "")

    def sort_key(self, column: str) -> tuple[int, float | str]:
        """The value a column sorts on (missing values sort last either way)."""
        r = self.record
        text = {"model": r.model.id, "backend": r.backend.name, "thinking": r.thinking, "status": self.status,
                "protocol": r.invocation.protocol or "", "created": r.created_at, "commit": self.commit,
                "run": self.run.id, "k": self.samples_per_doc}
        if column in text:
            return (0, text[column])
        if column == "tok_s":
            return (0, self.out_tok_s) if self.out_tok_s is not None else (1, 0.0)
        cell = self.cells.get(column.removeprefix("task:"))
        value = cell.summary.value if cell is not None and cell.summary is not None else None
        return (0, value) if value is not None else (1, 0.0)


def board_row(run: Run, record: RunRecord, claims: Claims) -> BoardRow:
    """A run as a leaderboard row."""
    cells = {task: task_cell(record, task, result, claims) for task, result in record.tasks.items()}
    return BoardRow(run, record, cells, run_output_tokens_per_s(record))


@dataclass(frozen=True)
class Board:
    """The rows shown (filtered, sorted), the task columns, which optional columns any row fills, and per task the
    letter of each distinct document set where the runs scored different documents."""

    rows: list[BoardRow]
    tasks: list[str]
    total: int
    docs_letters: dict[str, dict[str, str]]
    has_claims: dict[str, bool]
    has_cost: dict[str, bool]
    has_energy: dict[str, bool]
    has_ttft: dict[str, bool]


def _letters(rows: list[BoardRow], task: str) -> dict[str, str]:
    hashes = list(dict.fromkeys(r.cells[task].docs_hash for r in rows if task in r.cells))
    return {h: chr(ord("A") + i) for i, h in enumerate(hashes)} if len(hashes) > 1 else {}


def board(rows: list[BoardRow], query: BoardQuery) -> Board:
    """The leaderboard for a query: rows filtered by model, task and status, sorted by the column."""
    shown = [r for r in rows if query.model.lower() in r.record.model.id.lower()
             and (not query.task or query.task in r.cells) and (not query.status or r.status == query.status)]
    present = [r for r in shown if r.sort_key(query.sort)[0] == 0]
    missing = [r for r in shown if r.sort_key(query.sort)[0] == 1]
    present.sort(key=lambda r: r.sort_key(query.sort)[1], reverse=query.descending())
    tasks = [query.task] if query.task else list(dict.fromkeys(t for r in rows for t in r.cells))

    def any_row(task: str, has: str) -> bool:
        return any(getattr(r.cells[task], has) not in (None, []) for r in shown if task in r.cells)

    return Board(present + missing, tasks, len(rows), {t: _letters(rows, t) for t in tasks},
                 {t: any_row(t, "claims") for t in tasks}, {t: any_row(t, "usd_per_1k_correct") for t in tasks},
                 {t: any_row(t, "joules_per_correct") for t in tasks}, {t: any_row(t, "ttft_p50_s") for t in tasks})
