"""Terminal tables (rich): one run, one bench sweep, a comparison of runs."""

from __future__ import annotations

from rich.table import Table

from harness.records.bench import BenchRecord
from harness.records.run import RunRecord
from harness.report.cells import comparison_cells
from harness.report.format import fmt_metric, fmt_number, stat_field
from harness.report.rows import RunRow


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
                fmt_number(entry.truncated_rate, ".1f") if first else "",
                fmt_number(perf.output_tokens_per_s if perf else None, ".1f") if first else "",
                fmt_number(stat_field(perf.ttft_s if perf else None, "p50"), ".3f") if first else "",
                fmt_number(stat_field(perf.e2e_s if perf else None, "p50"), ".3f") if first else "",
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
        tpot = stat_field(lvl.tpot_s, "p50")
        table.add_row(str(lvl.concurrency), f"{lvl.request_throughput:.2f}", f"{lvl.output_tokens_per_s:.1f}",
                      f"{lvl.total_tokens_per_s:.1f}", fmt_number(stat_field(lvl.ttft_s, "p50"), ".3f"),
                      fmt_number(stat_field(lvl.ttft_s, "p99"), ".3f"),
                      fmt_number(1000 * tpot if tpot else None, ".2f"),
                      fmt_number(stat_field(lvl.e2e_s, "p50"), ".3f"))
    if roof:
        share = roof.batch1_share_of_limit
        table.caption = (f"{roof.memory} bandwidth {roof.memory_bandwidth_gb_s:.0f} GB/s; batch-1 decode limit "
                         f"{roof.batch1_decode_limit_tok_s:.0f} tok/s; measured "
                         f"{fmt_number(roof.batch1_decode_measured_tok_s, '.0f')} tok/s"
                         + (f" ({100 * share:.0f}% of the limit)" if share else ""))
    return table


def compare_table(rows: list[RunRow]) -> Table:
    """The comparison for the terminal, the published claims' protocols and sources below it."""
    cells = comparison_cells(rows)
    table = Table(title="owb compare (values in %, 95% CI in brackets)", caption="\n".join(cells.footnotes) or None,
                  caption_justify="left")
    for name in cells.header:
        table.add_column(name)
    for line in cells.body:
        table.add_row(*line)
    return table
