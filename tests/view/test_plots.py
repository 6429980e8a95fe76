"""The plots page's charts: the Pareto front, the thinking-budget curve, length histograms, and SVG that holds
model-chosen text only escaped."""

from __future__ import annotations

from harness.records.store import RunDir
from harness.view.leaderboard import Claims
from harness.view.plots import Shown, budget_plots, histogram, length_plot, pareto
from harness.view.runs import Run
from harness.view.svg import Chart
from tests.view.fixture_runs import Fixtures


def test_the_pareto_front_keeps_what_no_cheaper_run_beats() -> None:
    points = [(1.0, 50.0), (2.0, 60.0), (3.0, 55.0), (0.5, 40.0), (2.0, 45.0)]
    assert pareto(points) == [(0.5, 40.0), (1.0, 50.0), (2.0, 60.0)]


def test_the_budget_curve_draws_each_run_over_its_budgets(small_runs: Fixtures) -> None:
    record = RunDir(small_runs.a).read_run()
    gsm8k = record.tasks["gsm8k"]
    tasks = {}
    for budget, value in ((256, 40.0), (1024, 70.0)):
        entry = gsm8k.model_copy(deep=True)
        entry.metrics[entry.primary_metric or ""].value = value
        tasks[f"gsm8k@think{budget}"] = entry
    budgeted = record.model_copy(update={"tasks": tasks})
    runs = [(Run("budgets", small_runs.a, "budgets"), budgeted), (Run("plain", small_runs.a, "plain"), record)]
    (plot,) = budget_plots(Shown(runs, lambda run: f"/run/{run.id}", Claims()))
    assert plot.title == "gsm8k: score against thinking budget"
    assert [text for _, text, _ in plot.legend] == ["qwen3-8b · thinking on · budgets"], "runs without budgets: none"
    assert plot.svg.count("<polyline") == 1 and plot.svg.count('class="point"') == 2
    assert "budget 256, flexible_match 40.0" in plot.svg and "budget 1024, flexible_match 70.0" in plot.svg


def test_length_histograms_say_when_nothing_was_counted(small_runs: Fixtures) -> None:
    record = RunDir(small_runs.a).read_run()
    run = Run("a", small_runs.a, "a")
    assert length_plot(run, record, "gsm8k", [0, 0], [0]).missing == [
        "qwen3-8b · thinking on · a: no output token counts recorded"]
    drawn = length_plot(run, record, "gsm8k", [10, 20, 30], [300, 400])
    assert drawn.svg.count("<polyline") == 2 and drawn.legend[0][1].startswith("right (3, median 20 tokens)")
    assert histogram([0, 5, 10], 10)[1][:1] == [1.0] and sum(histogram([0, 5, 10], 10)[1][:-1]) == 3


def test_chart_text_is_escaped() -> None:
    chart = Chart("<script>alert(1)</script>", "x <b>", "y", xlog=True)
    chart.point(10.0, 1.0, "#000", tip="</title><script>alert(2)</script>", href='/run/a"onclick="x')
    svg = chart.render()
    assert "<script>" not in svg and "&lt;script&gt;alert(2)" in svg and 'href="/run/a&quot;onclick=&quot;x"' in svg
