"""Terminal tables (rich): one run, one bench sweep, a comparison of runs."""

from __future__ import annotations

from rich.table import Table

from harness.records.bench import BenchLevel, BenchRecord, Scope
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


SCOPE_WORDS = {"client": "client clock (HTTP, as vllm bench serve)", "engine": "the engine's own clocks",
               "batch": "per batch: every row of a batch shares its timings"}


def _load(lvl: BenchLevel) -> str:
    limit = "no limit" if lvl.max_concurrency is None else str(lvl.max_concurrency)
    if lvl.mode == "waves":
        return f"waves of {limit}"
    rate = "inf" if lvl.request_rate == "inf" else f"{lvl.request_rate:g}/s"
    return f"c {limit}, rate {rate}"


def bench_table(record: BenchRecord, scope: Scope | None = None) -> Table:
    """One row per level of a bench.json whose figures have `scope` (the first level's by default: a table never
    mixes scopes), in vLLM's units, with the roofline and the sweep in the caption."""
    p, roof = record.params, record.roofline
    scope = scope or (record.levels[0].scope if record.levels else "client")
    levels = [lvl for lvl in record.levels if lvl.scope == scope]
    workload = (f"the requests of run {p.from_run}" if p.from_run else f"in {p.input_len} / out {p.output_len} tokens")
    table = Table(title=f"{record.model.id} · {record.backend.name} · {workload} · {p.num_prompts} requests per "
                        f"level · scope {scope}", caption_justify="left")
    goodput, energy, usd = (any(getattr(lvl, f) is not None for lvl in levels)
                            for f in ("request_goodput", "joules_per_output_token", "usd"))
    columns = ["load", "done/failed", "req/s", *(["goodput req/s"] if goodput else []), "out tok/s",
               "mean TTFT ms", "p99 TTFT ms", "median TPOT ms", "median ITL ms", "median E2EL ms",
               *(["J/out tok"] if energy else []), *(["$/1M out tok"] if usd else [])]
    for column in columns:
        table.add_column(column, justify="left" if column == "load" else "right")
    for lvl in levels:
        table.add_row(_load(lvl), f"{lvl.completed}/{lvl.failed}", f"{lvl.request_throughput:.2f}",
                      *([fmt_number(lvl.request_goodput, ".2f")] if goodput else []), f"{lvl.output_throughput:.1f}",
                      *(fmt_number(lvl.stat(k), ".2f") for k in ("mean_ttft_ms", "p99_ttft_ms", "median_tpot_ms",
                                                                  "median_itl_ms", "median_e2el_ms")),
                      *([fmt_number(lvl.joules_per_output_token, ".3g")] if energy else []),
                      *([fmt_number(lvl.usd_per_1m_output_tokens, ".3g")] if usd else []))
    notes = [f"scope {scope}: {SCOPE_WORDS[scope]}"]
    if roof:
        share = roof.batch1_share_of_limit
        notes.append(f"{roof.memory} copy bandwidth {roof.memory_bandwidth_gb_s:.0f} GB/s; batch-1 decode limit "
                     f"{roof.batch1_decode_limit_tok_s:.0f} tok/s (tp {roof.tensor_parallel_size}); measured "
                     f"{fmt_number(roof.batch1_decode_measured_tok_s, '.0f')} tok/s"
                     + (f" ({100 * share:.0f}% of the limit)" if share else ""))
    if record.sweep:
        sw = record.sweep
        notes.append(f"sweep: highest {sw.over} with {100 * sw.target_attainment:g}% of requests meeting "
                     f"{sw.goodput}: {fmt_number(sw.best, '.3g')}")
    table.caption = "\n".join(notes)
    return table


TRANSPOSE_AT = 3  # more runs than this: one column per run (the figures as rows)


def compare_table(rows: list[RunRow]) -> Table:
    """The comparison for the terminal, the published claims' protocols and sources below it; nothing is cut
    (cells wrap), and with many runs the table turns: one column per run, named in a legend."""
    cells = comparison_cells(rows)
    notes = cells.footnotes + cells.verdicts
    if len(rows) <= TRANSPOSE_AT:
        table = Table(title="owb compare (values in %, 95% CI in brackets)", caption="\n".join(notes) or None,
                      caption_justify="left")
        for name in cells.header:
            table.add_column(name, overflow="fold")
        table.columns[0].no_wrap = True
        for line in cells.body:
            table.add_row(*line)
        return table
    legend = [f"run {i}: {row.run_id}" for i, row in enumerate(rows, 1)]
    table = Table(title="owb compare (values in %, 95% CI in brackets; one column per run)",
                  caption="\n".join(legend + notes), caption_justify="left")
    table.add_column("", overflow="fold")
    for i in range(1, len(rows) + 1):
        table.add_column(f"run {i}", overflow="fold")
    for j, name in enumerate(cells.header[1:], 1):
        table.add_row(name, *[line[j] for line in cells.body])
    return table
