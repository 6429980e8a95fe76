"""Results tables (terminal, markdown, CSV, self-contained HTML with plots) for one run or several."""

from __future__ import annotations

import csv
import html
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from rich.table import Table

from harness.config import PublishedScore
from harness.perf import run_output_tokens_per_s
from harness.budget import split_name
from harness.records import BenchRecord, MetricSummary, RunRecord, TaskCost
from harness.results import RunDir
from harness.stats import percentiles


def fmt_metric(metric: MetricSummary | None) -> str:
    """'62.5 [40.1, 80.2]' for a metric with a CI, '-' when absent."""
    if metric is None or metric.value is None or metric.ci95 is None:
        return "-"
    lo, hi = metric.ci95
    return f"{metric.value:.1f} [{lo:.1f}, {hi:.1f}]"


def _fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def _p(stat: Any, field: str) -> float | None:
    return getattr(stat, field) if stat is not None else None


def run_table(record: RunRecord) -> Table:
    """One row per task metric of a run: value with 95% CI (raw-scale metrics in their own unit), n, truncation
    and speed."""
    table = Table(title=f"{record.model.id} · {record.backend.name} · thinking {record.thinking}")
    for column in ("task", "metric", "value % [95% CI]", "n", "trunc %", "out tok/s", "ttft p50 s", "e2e p50 s"):
        table.add_column(column, justify="left" if column in ("task", "metric") else "right")
    for task, entry in record.tasks.items():
        perf = entry.perf
        for i, (name, metric) in enumerate(entry.metrics.items()):
            first = i == 0
            table.add_row(
                task if first else "",
                name,
                fmt_metric(metric),
                str(entry.n) if first else "",
                _fmt(entry.truncated_rate, ".1f") if first else "",
                _fmt(perf.output_tokens_per_s if perf else None, ".1f") if first else "",
                _fmt(_p(perf.ttft_s if perf else None, "p50"), ".3f") if first else "",
                _fmt(_p(perf.e2e_s if perf else None, "p50"), ".3f") if first else "",
            )
    return table


def bench_table(record: BenchRecord) -> Table:
    """One row per concurrency level of a bench.json, and the batch-1 roofline in the caption."""
    p, roof = record.params, record.roofline
    table = Table(title=f"{record.model.id} · {record.backend.name} · in {p.input_len} / out "
                        f"{p.output_len} tokens · {p.num_prompts} requests per level")
    for column in ("concurrency", "req/s", "out tok/s", "total tok/s", "ttft p50 s", "ttft p99 s", "tpot p50 ms",
                   "e2e p50 s"):
        table.add_column(column, justify="right")
    for lvl in record.levels:
        tpot = _p(lvl.tpot_s, "p50")
        table.add_row(str(lvl.concurrency), f"{lvl.request_throughput:.2f}", f"{lvl.output_tokens_per_s:.1f}",
                      f"{lvl.total_tokens_per_s:.1f}", _fmt(_p(lvl.ttft_s, "p50"), ".3f"),
                      _fmt(_p(lvl.ttft_s, "p99"), ".3f"), _fmt(1000 * tpot if tpot else None, ".2f"),
                      _fmt(_p(lvl.e2e_s, "p50"), ".3f"))
    if roof:
        share = roof.batch1_share_of_limit
        table.caption = (f"{roof.memory} bandwidth {roof.memory_bandwidth_gb_s:.0f} GB/s; batch-1 decode limit "
                         f"{roof.batch1_decode_limit_tok_s:.0f} tok/s; measured "
                         f"{_fmt(roof.batch1_decode_measured_tok_s, '.0f')} tok/s"
                         + (f" ({100 * share:.0f}% of the limit)" if share else ""))
    return table


@dataclass(frozen=True)
class ShownClaim:
    """A published claim shown beside a run of the same task, metric and thinking mode."""

    claim: PublishedScore
    outside_ci: bool  # the published value lies outside the run's measured 95% CI

    def detail(self) -> str:
        """Benchmark, mode, protocol, notes and source in one line (footnote, tooltip)."""
        c = self.claim
        mode = f", thinking {c.thinking}" if c.thinking else ""
        notes = f"; {c.notes}" if c.notes else ""
        return f"{c.benchmark} {c.metric}{mode}: {c.protocol.describe()}{notes}. Source: {c.source}"


def matching_claims(record: RunRecord, task: str, metric: str) -> list[PublishedScore]:
    """The card's claims measured like this run: same owb task and metric, same thinking mode (or unstated), the
    same owb protocol where the claim names one, and the same samples per problem where the claim states k."""
    protocol = record.invocation.protocol
    samples = record.tasks[task].config.generation.samples_per_doc
    return [c for c in record.model.card.published
            if c.task == task and c.metric == metric and c.thinking in (None, record.thinking)
            and (c.protocol.name is None or c.protocol.name == protocol)
            and (c.protocol.samples is None or c.protocol.samples == samples)]


@dataclass(frozen=True)
class RunRow:
    """One run as a row of a comparison: who ran, the metrics with CIs, the published claims, the speed."""

    run_id: str
    model: str
    backend: str
    thinking: str
    metrics: dict[tuple[str, str], MetricSummary]
    primary: dict[str, str]
    published: dict[tuple[str, str], list[ShownClaim]]
    output_tokens_per_s: float | None
    ttft_p50_s: float | None
    costs: dict[str, TaskCost]

    @property
    def label(self) -> str:
        """Short name of the run for plots and headers."""
        return f"{self.model} ({self.backend}, thinking {self.thinking})"


def load_row(path: Path) -> RunRow:
    """A comparison row from a run directory."""
    run_dir = RunDir(path)
    record = run_dir.read_run()
    metrics = {(t, m): v for t, e in record.tasks.items() for m, v in e.metrics.items()}
    claims: dict[tuple[str, str], list[ShownClaim]] = {}
    for (task, metric), summary in metrics.items():
        lo, hi = summary.ci95 or (float("-inf"), float("inf"))
        shown = [ShownClaim(c, not lo <= c.value <= hi) for c in matching_claims(record, task, metric)]
        if shown:
            claims[(task, metric)] = shown
    ttft = percentiles([s.ttft_s for t in record.tasks for s in run_dir.load_samples(t)])
    return RunRow(
        run_id=record.run_id,
        model=record.model.id,
        backend=record.backend.name,
        thinking=record.thinking,
        metrics=metrics,
        primary={t: e.primary_metric or next(iter(e.metrics), "") for t, e in record.tasks.items()},
        published=claims,
        output_tokens_per_s=run_output_tokens_per_s(record),
        ttft_p50_s=ttft.p50 if ttft else None,
        costs={t: e.cost for t, e in record.tasks.items() if e.cost is not None},
    )


def _columns(rows: list[RunRow]) -> list[tuple[str, str]]:
    return list(dict.fromkeys(key for row in rows for key in row.metrics))


COST_COLUMNS = (("tok/correct", "output_tokens_per_correct", ".0f"), ("J/correct", "joules_per_correct", ".1f"),
                ("$/1k correct", "usd_per_1k_correct", ".3f"))


def _cost_columns(rows: list[RunRow]) -> list[tuple[str, str, str, str]]:
    """(task, label, field, format) for each cost figure some run measured."""
    tasks = list(dict.fromkeys(t for r in rows for t in r.costs))
    return [(t, label, field, fmt) for t in tasks for label, field, fmt in COST_COLUMNS
            if any(getattr(r.costs.get(t), field, None) is not None for r in rows)]


OUTSIDE_CI = "*"
LEGEND = f"{OUTSIDE_CI} the published value lies outside this run's 95% CI"


@dataclass(frozen=True)
class Cells:
    """The comparison as text: header, one row per run, footnotes for the published claims and, per claim cell,
    the claims' details (tooltips)."""

    header: list[str]
    body: list[list[str]]
    footnotes: list[str]
    details: dict[tuple[int, int], str]


def _cells(rows: list[RunRow]) -> Cells:
    """A value-with-CI column per task metric, then its published claims (numbered footnotes), then speed."""
    columns = _columns(rows)
    claimed = [c for c in columns if any(c in r.published for r in rows)]
    costs = _cost_columns(rows)
    header = ["run", "model", "backend", "thinking", *[f"{t} {m}" for t, m in columns],
              *[f"{t} {m} (published)" for t, m in claimed], *[f"{t} {label}" for t, label, _, _ in costs],
              "out tok/s", "ttft p50 s"]
    notes: dict[str, int] = {}
    body, details = [], {}
    for i, r in enumerate(rows):
        claim_cells = []
        for j, c in enumerate(claimed):
            shown = r.published.get(c, [])
            refs = [notes.setdefault(s.detail(), len(notes) + 1) for s in shown]
            claim_cells.append("; ".join(f"{s.claim.value:.1f}{OUTSIDE_CI if s.outside_ci else ''} [{n}]"
                                         for s, n in zip(shown, refs, strict=True)) or "-")
            if shown:
                details[(i, 4 + len(columns) + j)] = " | ".join(s.detail() for s in shown)
        cost_cells = [_fmt(getattr(r.costs.get(t), field, None), fmt) for t, _, field, fmt in costs]
        body.append([r.run_id, r.model, r.backend, r.thinking, *[fmt_metric(r.metrics.get(c)) for c in columns],
                     *claim_cells, *cost_cells, _fmt(r.output_tokens_per_s, ".1f"), _fmt(r.ttft_p50_s, ".3f")])
    footnotes = [f"[{n}] {text}" for text, n in notes.items()] + ([LEGEND] if notes else [])
    return Cells(header, body, footnotes, details)


def compare_table(rows: list[RunRow]) -> Table:
    """The comparison for the terminal, the published claims' protocols and sources below it."""
    cells = _cells(rows)
    table = Table(title="owb compare (values in %, 95% CI in brackets)", caption="\n".join(cells.footnotes) or None,
                  caption_justify="left")
    for name in cells.header:
        table.add_column(name)
    for line in cells.body:
        table.add_row(*line)
    return table


def to_markdown(rows: list[RunRow]) -> str:
    """The comparison as a markdown table, with the published claims' protocols and sources as footnotes."""
    cells = _cells(rows)
    lines = ["| " + " | ".join(cells.header) + " |", "|" + "---|" * len(cells.header)]
    lines += ["| " + " | ".join(line) + " |" for line in cells.body]
    if cells.footnotes:
        lines += ["", *[f"{note}  " for note in cells.footnotes]]
    return "\n".join(lines) + "\n"


def to_csv(rows: list[RunRow]) -> str:
    """The comparison as CSV, one column per number (value, CI bounds) so tools can read it."""
    columns = _columns(rows)
    out = io.StringIO()
    writer = csv.writer(out)
    cost_fields = [field for _, field, _ in COST_COLUMNS] + ["usd_per_1m_output_tokens", "joules_per_output_token",
                                                           "output_tokens_per_sample"]
    tasks = list(dict.fromkeys(t for r in rows for t in r.costs))
    writer.writerow(["run_id", "model", "backend", "thinking", "output_tokens_per_s", "ttft_p50_s",
                     *[f"{t}:{m}:{part}" for t, m in columns
                       for part in ("value", "ci95_lo", "ci95_hi", "published", "published_detail")],
                     *[f"{t}:{field}" for t in tasks for field in cost_fields]])
    for r in rows:
        cells: list[Any] = [r.run_id, r.model, r.backend, r.thinking, r.output_tokens_per_s, r.ttft_p50_s]
        for c in columns:
            metric = r.metrics.get(c)
            lo, hi = (metric.ci95 if metric and metric.ci95 else (None, None))
            shown = r.published.get(c, [])
            cells += [metric.value if metric else None, lo, hi, ";".join(f"{s.claim.value:g}" for s in shown) or None,
                      " | ".join(s.detail() for s in shown) or None]
        cells += [getattr(r.costs.get(t), field, None) for t in tasks for field in cost_fields]
        writer.writerow(cells)
    return out.getvalue()


def _svg(fig: Any) -> str:
    buf = io.StringIO()
    fig.savefig(buf, format="svg", bbox_inches="tight")
    text = buf.getvalue()
    return text[text.index("<svg") :]


def _plots(rows: list[RunRow]) -> list[tuple[str, str]]:
    """(title, inline SVG) per task: score against output tokens/s, and bars with 95% CIs."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tasks = list(dict.fromkeys(t for r in rows for t, _ in r.metrics))
    plots = []
    for task in tasks:
        metric = next(r.primary[task] for r in rows if task in r.primary)
        have = [r for r in rows if (task, metric) in r.metrics]
        have = [r for r in have if r.metrics[(task, metric)].value is not None]
        if not have:
            continue
        values = np.array([r.metrics[(task, metric)].value for r in have])
        errors = np.array([[v - _ci(r, task, metric)[0], _ci(r, task, metric)[1] - v]
                           for v, r in zip(values, have, strict=True)]).T
        fig, (speed_ax, bar_ax) = plt.subplots(1, 2, figsize=(10, 3.6))
        for r, v, lo, hi in zip(have, values, errors[0], errors[1], strict=True):
            x = r.output_tokens_per_s or 0.0
            speed_ax.errorbar([x], [v], yerr=[[lo], [hi]], fmt="o", capsize=4, label=r.label)
        speed_ax.set_xlabel("output tokens/s")
        speed_ax.set_ylabel(f"{metric} (%)")
        speed_ax.set_title(f"{task}: {metric} vs speed")
        speed_ax.legend(fontsize=7)
        bar_ax.bar(range(len(have)), values, yerr=errors, capsize=4, color="#4c78a8")
        bar_ax.set_xticks(range(len(have)), [r.model for r in have], rotation=20, ha="right", fontsize=8)
        bar_ax.set_ylabel(f"{metric} (%)")
        bar_ax.set_title(f"{task}: {metric} with 95% CI")
        plots.append((f"{task}: {metric}", _svg(fig)))
        plt.close(fig)
    return plots + _pareto_plots(rows, plt) + _budget_plots(rows, plt)


def _primary_value(row: RunRow, task: str) -> float | None:
    summary = row.metrics.get((task, row.primary.get(task, "")))
    return summary.value if summary is not None else None


def _pareto_plots(rows: list[RunRow], plt: Any) -> list[tuple[str, str]]:
    """Per task priced in some run: the primary score against dollars per 1,000 correct answers, with the Pareto
    frontier (no other run is both cheaper and better)."""
    plots = []
    for task in dict.fromkeys(t for r in rows for t in r.costs):
        points: list[tuple[float, float, RunRow]] = []
        for r in rows:
            x, y = (r.costs[task].usd_per_1k_correct if task in r.costs else None), _primary_value(r, task)
            if x is not None and y is not None:
                points.append((x, y, r))
        if not points:
            continue
        fig, ax = plt.subplots(figsize=(6, 3.6))
        for x, y, r in points:
            ax.scatter([x], [y], label=r.label)
        frontier, best = [], float("-inf")
        for x, y, _ in sorted(points, key=lambda p: (p[0], -p[1])):
            if y > best:
                frontier.append((x, y))
                best = y
        ax.step([x for x, _ in frontier], [y for _, y in frontier], where="post", color="#999", linestyle="--",
                label="Pareto frontier")
        ax.set_xscale("log")
        ax.set_xlabel("$ per 1,000 correct answers")
        ax.set_ylabel(f"{points[0][2].primary[task]} (%)")
        ax.set_title(f"{task}: score against cost")
        ax.legend(fontsize=7)
        plots.append((f"{task}: score against $ per 1,000 correct answers", _svg(fig)))
        plt.close(fig)
    return plots


def _budget_plots(rows: list[RunRow], plt: Any) -> list[tuple[str, str]]:
    """Per task run at several thinking budgets: the primary score against output tokens per sample, one line per
    run (the curve to pick a budget from)."""
    plots = []
    bases = dict.fromkeys(split_name(t)[0] for r in rows for t in r.costs if split_name(t)[1] is not None)
    for base in bases:
        fig, ax = plt.subplots(figsize=(6, 3.6))
        for r in rows:
            points = sorted((r.costs[t].output_tokens_per_sample, _primary_value(r, t), split_name(t)[1])
                            for t in r.costs if split_name(t)[0] == base and split_name(t)[1] is not None)
            points = [(x, y, b) for x, y, b in points if y is not None]
            if points:
                ax.plot([x for x, _, _ in points], [y for _, y, _ in points], marker="o", label=r.label)
                for x, y, b in points:
                    ax.annotate(f"{b}", (x, y), fontsize=7, textcoords="offset points", xytext=(3, 3))
        ax.set_xlabel("output tokens per sample")
        ax.set_ylabel("score (%)")
        ax.set_title(f"{base}: score against thinking budget (labels: budget)")
        ax.legend(fontsize=7)
        plots.append((f"{base}: score against thinking budget", _svg(fig)))
        plt.close(fig)
    return plots


def _ci(row: RunRow, task: str, metric: str) -> tuple[float, float]:
    summary = row.metrics[(task, metric)]
    assert summary.ci95 is not None
    return summary.ci95


def to_html(rows: list[RunRow]) -> str:
    """A self-contained HTML report: the comparison table and, per task, inline SVG plots."""
    cells = _cells(rows)
    head = "".join(f"<th>{html.escape(h)}</th>" for h in cells.header)

    def td(i: int, j: int, text: str) -> str:
        tip = cells.details.get((i, j))
        return f'<td title="{html.escape(tip)}">{html.escape(text)}</td>' if tip else f"<td>{html.escape(text)}</td>"

    trs = "".join("<tr>" + "".join(td(i, j, c) for j, c in enumerate(line)) + "</tr>"
                  for i, line in enumerate(cells.body))
    notes = "".join(f"<li>{html.escape(n)}</li>" for n in cells.footnotes)
    footnotes = f'<ul class="claims">{notes}</ul>' if notes else ""
    figures = "".join(f'<figure class="plot"><figcaption>{html.escape(t)}</figcaption>{svg}</figure>'
                      for t, svg in _plots(rows))
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>owb compare</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2rem; color: #222; }}
table {{ border-collapse: collapse; font-size: 0.85rem; }}
th, td {{ border: 1px solid #ccc; padding: 0.3rem 0.5rem; text-align: right; }}
th {{ background: #f0f0f0; }} td:nth-child(-n+4) {{ text-align: left; }}
figure {{ margin: 1.5rem 0; }} figcaption {{ font-weight: bold; }}
</style></head><body>
<h1>owb compare</h1>
<p>Values in percent with 95% confidence intervals; speed is output tokens per second over generation time.</p>
<table id="runs"><thead><tr>{head}</tr></thead><tbody>{trs}</tbody></table>
{footnotes}
<h2>Plots</h2>
{figures}
</body></html>
"""
