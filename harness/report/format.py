"""How a figure is printed: a metric with its CI, a number or a dash for what was not measured."""

from __future__ import annotations

from typing import Any

from harness.records.run import MetricSummary


def fmt_metric(metric: MetricSummary | None) -> str:
    """'62.5 [40.1, 80.2]' for a metric with a CI, '-' when absent."""
    if metric is None or metric.value is None or metric.ci95 is None:
        return "-"
    lo, hi = metric.ci95
    return f"{metric.value:.1f} [{lo:.1f}, {hi:.1f}]"


def fmt_number(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def stat_field(stat: Any, field: str) -> float | None:
    return getattr(stat, field) if stat is not None else None
