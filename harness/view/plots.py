"""The plots page's charts: per task, score against output tokens/s (with CIs) and against $ per 1,000 correct
answers (with the Pareto front), the thinking-budget curve, and output length of right against wrong answers; the
published claims as hollow markers. A run without a figure is listed as such, never drawn at zero."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

from harness.records.run import MetricSummary, RunRecord
from harness.records.sample import split_name
from harness.view.leaderboard import Claims
from harness.view.runs import Run
from harness.view.svg import Chart, color

BINS = 20
Item = tuple[Run, RunRecord]
Href = Callable[[Run], str]


@dataclass(frozen=True)
class Shown:
    """The runs a plots page draws, how a point links to its run, and the claims beside each run."""

    items: list[Item]
    href: Href
    claims: Claims


@dataclass
class Plot:
    """A chart with its legend (color, label, link) and the runs it could not draw, each with the reason."""

    title: str
    svg: str = ""
    legend: list[tuple[str, str, str]] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)


def label(run: Run, record: RunRecord) -> str:
    """How a run is named on a chart: model, thinking mode and its name (the hash that ends an id owb made), never
    the model alone."""
    made = re.match(r"\d{8}-\d{6}-", run.id) is not None
    return f"{record.model.id} · thinking {record.thinking} · {run.id[-6:] if made else run.id}"


def _primary(record: RunRecord, task: str) -> tuple[str, MetricSummary | None]:
    result = record.tasks[task]
    metric = result.primary_metric or next(iter(result.metrics), "")
    return metric, result.metrics.get(metric)


def _unit(summary: MetricSummary | None) -> str:
    return " (%)" if summary is None or summary.scale == "percent" else ""


def _tasks(items: list[Item]) -> list[str]:
    return list(dict.fromkeys(t for _, r in items for t in r.tasks))


Drawn = tuple[Chart, Plot, list[tuple[float, float]]]
XOf = Callable[[int, RunRecord], float | None]  # a run's x from its position among the items and its record


def _scatter(shown: Shown, task: str, what: str, xlabel: str, x_of: XOf, xlog: bool = False) -> Drawn:
    """Each run's primary score (with its CI) at its x, its claims hollow; runs without x or score listed."""
    items, href = shown.items, shown.href
    metric, first = _primary(next(r for _, r in items if task in r.tasks), task)
    chart = Chart(f"{task}: {metric} against {what}", xlabel, f"{metric}{_unit(first)}", xlog)
    plot, drawn = Plot(f"{task}: {metric} against {what}"), []
    for i, (run, record) in enumerate(items):
        if task not in record.tasks:
            continue
        name, c = label(run, record), color(i)
        metric, summary = _primary(record, task)
        x = x_of(i, record)
        if summary is None or summary.value is None:
            plot.missing.append(f"{name}: no {metric} yet")
            continue
        if x is None or (xlog and x <= 0):
            plot.missing.append(f"{name}: no {what} recorded")
            continue
        if summary.ci95:
            chart.errorbar(x, summary.ci95[0], summary.ci95[1], c)
        chart.point(x, summary.value, c, f"{name}: {metric} {summary.value:.1f}, {what} {x:.4g}", href(run))
        for claim in shown.claims.of(record, task, metric):
            chart.point(x, claim.value, c, f"published ({claim.benchmark}, {claim.source}): {claim.value:.1f}",
                        hollow=True)
        plot.legend.append((c, name, href(run)))
        drawn.append((x, summary.value))
    return chart, plot, drawn


def _valued(record: RunRecord, task: str) -> bool:
    summary = _primary(record, task)[1] if task in record.tasks else None
    return summary is not None and summary.value is not None


def _numbered(number: dict[int, int]) -> XOf:
    def x(i: int, record: RunRecord) -> float | None:
        return float(number[i]) if i in number else None
    return x


def score_plots(shown: Shown) -> list[Plot]:
    """Per task: each run's primary score with its 95% CI (numbered as in the legend) and its claims, hollow."""
    plots, items = [], shown.items
    for task in _tasks(items):
        valued = [i for i, (_, record) in enumerate(items) if _valued(record, task)]
        number = {i: n for n, i in enumerate(valued, 1)}
        chart, plot, drawn = _scatter(shown, task, "run", "run (numbered as in the legend)", _numbered(number))
        plot.title = chart.title = f"{task}: {_primary(items[valued[0]][1], task)[0] if valued else ''} per run"
        plot.legend = [(c, f"{n}. {text}", h) for n, (c, text, h) in enumerate(plot.legend, 1)]
        chart.x_ticks = [(float(n), str(n)) for n in number.values()]
        chart.x.fixed = (0.5, len(number) + 0.5)
        plot.svg = chart.render() if drawn else ""
        plots.append(plot)
    return plots


def _speed_of(task: str) -> XOf:
    def speed(i: int, record: RunRecord) -> float | None:
        perf = record.tasks[task].perf
        return perf.output_tokens_per_s if perf is not None else None
    return speed


def _cost_of(task: str) -> XOf:
    def cost(i: int, record: RunRecord) -> float | None:
        found = record.tasks[task].cost
        return found.usd_per_1k_correct if found is not None else None
    return cost


def speed_plots(shown: Shown) -> list[Plot]:
    """Per task: the primary score against output tokens/s."""
    plots = []
    for task in _tasks(shown.items):
        chart, plot, drawn = _scatter(shown, task, "output tokens/s", "output tokens/s", _speed_of(task))
        plot.svg = chart.render() if drawn else ""
        plots.append(plot)
    return plots


def pareto(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """The points no other point beats on both cost (lower) and score (higher), cheapest first."""
    front: list[tuple[float, float]] = []
    for x, y in sorted(points, key=lambda p: (p[0], -p[1])):
        if not front or y > front[-1][1]:
            front.append((x, y))
    return front


def cost_plots(shown: Shown) -> list[Plot]:
    """Per task: the primary score against $ per 1,000 correct answers, with the Pareto front."""
    plots = []
    for task in _tasks(shown.items):
        chart, plot, drawn = _scatter(shown, task, "$ per 1,000 correct", "$ per 1,000 correct answers (log)",
                                      _cost_of(task), xlog=True)
        front = pareto(drawn)
        if len(front) > 1:
            chart.line([x for x, _ in front], [y for _, y in front], "#888", "Pareto front", step=True, dashed=True)
        plot.svg = chart.render() if drawn else ""
        plots.append(plot)
    return plots


def budget_plots(shown: Shown) -> list[Plot]:
    """Per task run at thinking budgets: the primary score against the budget, a line per run."""
    plots, items, href = [], shown.items, shown.href
    bases = list(dict.fromkeys(split_name(t)[0] for _, r in items for t in r.tasks if split_name(t)[1] is not None))
    for base in bases:
        chart = Chart(f"{base}: score against thinking budget", "thinking budget (tokens, log)", "score (%)", True)
        plot = Plot(f"{base}: score against thinking budget")
        for i, (run, record) in enumerate(items):
            points = []
            for task in record.tasks:
                name, budget = split_name(task)
                metric, summary = _primary(record, task)
                if name == base and budget is not None and summary is not None and summary.value is not None:
                    points.append((float(budget), summary.value, metric))
            if not points:
                continue
            points.sort()
            c = color(i)
            chart.line([p[0] for p in points], [p[1] for p in points], c, label(run, record))
            for x, y, metric in points:
                chart.point(x, y, c, f"{label(run, record)}: budget {x:.0f}, {metric} {y:.1f}", href(run))
            plot.legend.append((c, label(run, record), href(run)))
        plot.svg = chart.render() if plot.legend else ""
        plots.append(plot)
    return plots


def histogram(values: list[int], top: int) -> tuple[list[float], list[float]]:
    """Counts in BINS equal bins from 0 to top, as step-line points (bin starts and the end)."""
    width = max(top, 1) / BINS
    counts = [0.0] * BINS
    for v in values:
        counts[min(int(v / width), BINS - 1)] += 1
    xs = [i * width for i in range(BINS + 1)]
    return xs, counts + counts[-1:]


def length_plot(run: Run, record: RunRecord, task: str, right: list[int], wrong: list[int]) -> Plot:
    """A run's output tokens per sample of one task, right against wrong answers (histograms)."""
    name = label(run, record)
    plot = Plot(f"{task}: output length of right and wrong answers, {name}")
    if not any(right) and not any(wrong):
        plot.missing.append(f"{name}: no output token counts recorded")
        return plot
    top = max(right + wrong)
    chart = Chart(plot.title, "output tokens", "samples")
    for values, what, c in ((right, "right", "#54a24b"), (wrong, "wrong", "#e45756")):
        if values:
            xs, ys = histogram(values, top)
            chart.line(xs, ys, c, f"{what}: {len(values)} samples", step=True)
            plot.legend.append((c, f"{what} ({len(values)}, median {sorted(values)[len(values) // 2]} tokens)", ""))
    plot.svg = chart.render()
    return plot
