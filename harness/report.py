"""Results tables for the terminal."""

from __future__ import annotations

from typing import Any

from rich.table import Table


def fmt_metric(metric: dict[str, Any] | None) -> str:
    """'62.5 [40.1, 80.2]' for a metric with a CI, '-' when absent."""
    if not metric or metric.get("value") is None:
        return "-"
    lo, hi = metric["ci95"]
    return f"{metric['value']:.1f} [{lo:.1f}, {hi:.1f}]"


def _fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def run_table(record: dict[str, Any]) -> Table:
    """One row per task metric of a run: value with 95% CI, n, truncation and speed."""
    table = Table(title=f"{record['model']['id']} · {record['backend']['name']} · thinking {record['thinking']}")
    for column in ("task", "metric", "value % [95% CI]", "n", "trunc %", "out tok/s", "ttft p50 s", "e2e p50 s"):
        table.add_column(column, justify="left" if column in ("task", "metric") else "right")
    for task, entry in record["tasks"].items():
        perf = entry.get("perf", {})
        for i, (name, metric) in enumerate(entry.get("metrics", {}).items()):
            first = i == 0
            table.add_row(
                task if first else "",
                name,
                fmt_metric(metric),
                str(entry["n"]) if first else "",
                _fmt(entry.get("truncated_rate"), ".1f") if first else "",
                _fmt(perf.get("output_tokens_per_s"), ".1f") if first else "",
                _fmt((perf.get("ttft_s") or {}).get("p50"), ".3f") if first else "",
                _fmt((perf.get("e2e_s") or {}).get("p50"), ".3f") if first else "",
            )
    return table
