"""`owb compare` files: markdown, CSV (one column per number) and a self-contained HTML report with plots."""

from __future__ import annotations

import csv
import html
import io
from typing import Any

from harness.report.cells import COST_COLUMNS, comparison_cells, metric_columns
from harness.report.diagnose import RunDiagnosis
from harness.report.diagnosis_text import diagnosis_html
from harness.report.plots import all_plots
from harness.report.rows import RunRow


def to_markdown(rows: list[RunRow]) -> str:
    """The comparison as a markdown table, with the published claims' protocols and sources as footnotes."""
    cells = comparison_cells(rows)
    lines = ["| " + " | ".join(cells.header) + " |", "|" + "---|" * len(cells.header)]
    lines += ["| " + " | ".join(line) + " |" for line in cells.body]
    if cells.footnotes:
        lines += ["", *[f"{note}  " for note in cells.footnotes]]
    if cells.verdicts:
        lines += ["", "Verdicts:", "", *[f"- {line}" for line in cells.verdicts]]
    return "\n".join(lines) + "\n"


def to_csv(rows: list[RunRow]) -> str:
    """The comparison as CSV, one column per number (value, CI bounds) so tools can read it."""
    columns = metric_columns(rows)
    out = io.StringIO()
    writer = csv.writer(out)
    cost_fields = [field for _, field, _ in COST_COLUMNS] + ["usd_per_1m_output_tokens", "joules_per_output_token",
                                                           "output_tokens_per_sample"]
    tasks = list(dict.fromkeys(t for r in rows for t in r.costs))
    writer.writerow(["run_id", "model", "backend", "thinking", "output_tokens_per_s", "ttft_p50_s",
                     *[f"{t}:{m}:{part}" for t, m in columns
                       for part in ("value", "ci95_lo", "ci95_hi", "published", "published_detail", "verdict",
                                    "verdict_detail")],
                     *[f"{t}:{field}" for t in tasks for field in cost_fields]])
    for r in rows:
        cells: list[Any] = [r.run_id, r.model, r.backend, r.thinking, r.output_tokens_per_s, r.ttft_p50_s]
        for c in columns:
            metric = r.metrics.get(c)
            lo, hi = (metric.ci95 if metric and metric.ci95 else (None, None))
            shown = r.published.get(c, [])
            cells += [metric.value if metric else None, lo, hi, ";".join(f"{s.claim.value:g}" for s in shown) or None,
                      " | ".join(s.detail() for s in shown) or None,
                      ";".join(s.verdict.verdict if s.verdict else "-" for s in shown) or None,
                      " | ".join(s.verdict.describe() if s.verdict else "-" for s in shown) or None]
        cells += [getattr(r.costs.get(t), field, None) for t in tasks for field in cost_fields]
        writer.writerow(cells)
    return out.getvalue()


def to_html(rows: list[RunRow], diagnoses: list[RunDiagnosis] | None = None) -> str:
    """A self-contained HTML report: the comparison table, the claims' verdicts, each run's diagnosis and, per task,
    inline SVG plots."""
    cells = comparison_cells(rows)
    head = "".join(f"<th>{html.escape(h)}</th>" for h in cells.header)

    def td(i: int, j: int, text: str) -> str:
        tip = cells.details.get((i, j))
        return f'<td title="{html.escape(tip)}">{html.escape(text)}</td>' if tip else f"<td>{html.escape(text)}</td>"

    trs = "".join("<tr>" + "".join(td(i, j, c) for j, c in enumerate(line)) + "</tr>"
                  for i, line in enumerate(cells.body))
    notes = "".join(f"<li>{html.escape(n)}</li>" for n in cells.footnotes)
    footnotes = f'<ul class="claims">{notes}</ul>' if notes else ""
    verdicts = "".join(f"<li>{html.escape(v)}</li>" for v in cells.verdicts)
    footnotes += f'<h2>Verdicts</h2><ul class="verdicts">{verdicts}</ul>' if verdicts else ""
    footnotes += diagnosis_html(diagnoses) if diagnoses else ""
    figures = "".join(f'<figure class="plot"><figcaption>{html.escape(t)}</figcaption>{svg}</figure>'
                      for t, svg in all_plots(rows))
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
