"""The HTML report's plots as inline SVG: score against speed and with its CI, score against cost with the Pareto
frontier, and score against thinking budget."""

from __future__ import annotations

import io
from typing import Any

import numpy as np

from harness.report.rows import RunRow


def _svg(fig: Any) -> str:
    buf = io.StringIO()
    fig.savefig(buf, format="svg", bbox_inches="tight")
    text = buf.getvalue()
    return text[text.index("<svg") :]


def all_plots(rows: list[RunRow]) -> list[tuple[str, str]]:
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
    bases = dict.fromkeys(base for r in rows for t, (base, _) in r.budgets.items() if t in r.costs)
    for base in bases:
        fig, ax = plt.subplots(figsize=(6, 3.6))
        for r in rows:
            measured = [(r.costs[t].output_tokens_per_sample, _primary_value(r, t), budget)
                        for t, (task, budget) in r.budgets.items() if task == base and t in r.costs]
            points = sorted((x, y, b) for x, y, b in measured if x is not None and y is not None)
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
