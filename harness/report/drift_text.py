"""`owb diff`'s audit as markdown: the settings table, the score changes, the flipped documents, greedy identity, and
the one line on noise."""

from __future__ import annotations

from harness.report.drift import DriftReport
from harness.report.format import fmt_number


def _settings(report: DriftReport) -> list[str]:
    lines = ["| setting | A | B | |", "|---|---|---|---|"]
    lines += [f"| {r.setting} | {r.a} | {r.b} | {'differs' if r.differs else ''} |" for r in report.settings]
    if report.generation_changes:
        lines += ["", "Generation settings differ: " + "; ".join(report.generation_changes)]
    return lines


def _scores(report: DriftReport) -> list[str]:
    lines = ["| task | metric | docs | A | B | B - A (pts) [95% CI] | test | p |",
             "|---|---|---:|---:|---:|---:|---|---:|"]
    for s in report.scores:
        ci = f" [{s.change_ci95[0]:+.2f}, {s.change_ci95[1]:+.2f}]" if s.change_ci95 else ""
        lines.append(f"| {s.task} | {s.metric} | {s.docs} | {s.a:.2f} | {s.b:.2f} | {s.change:+.2f}{ci} | {s.test} | "
                     f"{s.p_value:.3g} |")
    return lines


def _flips(report: DriftReport) -> list[str]:
    lines = ["| task | score | right in A only | right in B only | examples (A only) | examples (B only) |",
             "|---|---|---:|---:|---|---|"]
    lines += [f"| {f.task} | {f.score} | {f.right_in_a_only} | {f.right_in_b_only} | {', '.join(f.examples_a_only)} | "
              f"{', '.join(f.examples_b_only)} |" for f in report.flips]
    return lines


def _identity(report: DriftReport) -> list[str]:
    lines = ["| task | pairs | byte-identical | share % | first divergence: unit | median | p10 | p90 |",
             "|---|---:|---:|---:|---|---:|---:|---:|"] if report.identity else []
    lines += [f"| {i.task} | {i.pairs} | {i.identical} | {100 * i.share:.1f} | {i.unit} | "
              f"{fmt_number(i.median, 'g')} | {fmt_number(i.p10, 'g')} | {fmt_number(i.p90, 'g')} |"
              for i in report.identity]
    if report.not_greedy:
        note = f"Not compared for identity (sampled, not greedy): {', '.join(report.not_greedy)}"
        lines += ["", note] if lines else [note]
    return lines


def drift_markdown(report: DriftReport) -> str:
    """The whole audit as markdown, ending in the one line that says whether the change is within noise."""
    lines = [f"## owb diff: B {report.run_b} against A {report.run_a}", "", "### Settings", "", *_settings(report),
             "", "### Scores (paired per document, as owb check)", "", *_scores(report),
             "", "### Flipped documents", "", *_flips(report)]
    if report.identity or report.not_greedy:
        lines += ["", "### Greedy outputs", "", *_identity(report)]
    lines += ["", f"**{report.summary[0].upper()}{report.summary[1:]}**"]
    return "\n".join(lines) + "\n"
