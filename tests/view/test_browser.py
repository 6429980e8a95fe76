"""`owb view` in a real browser (Playwright driving the system's Chromium; no browser is downloaded): the real
command serves the committed examples, two replays that differ, a running run, a merged run and a 12,000-sample run.
Every page: no request leaves loopback, no console error, no dialog. Screenshots go to docs/screenshots/."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest

from harness.records.run import MetricSummary
from harness.report.format import fmt_metric
from harness.view.filters import PAGE
from tests.helpers import REPO, run_main
from tests.view.conftest import answer_of, expected_counts, jsonl, reasoning_of, tree_hash
from tests.view.fixture_runs import SCRIPT, Fixtures

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
SHOTS = REPO / "docs" / "screenshots"
pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(CHROMIUM is None, reason="no system Chromium (apt-get install chromium)")]


@pytest.fixture(scope="session")
def browser_type_launch_args() -> dict[str, Any]:
    """pytest-playwright launches the system's Chromium: no browser download."""
    return {"executable_path": CHROMIUM, "args": ["--no-sandbox"]}


@dataclass(frozen=True)
class Server:
    """The running `owb view`: its address, the runs it serves and what it printed first."""

    url: str
    runs: Fixtures
    banner: str


@pytest.fixture(scope="module")
def before(full_runs: Fixtures) -> dict[str, tuple[str, int]]:
    """Every file under the run directories, hashed before the server starts."""
    return tree_hash(full_runs.runs, full_runs.examples)


@pytest.fixture(scope="module")
def server(full_runs: Fixtures, before: dict[str, tuple[str, int]]) -> Iterator[Server]:
    exe = Path(sys.executable).with_name("owb")
    proc = subprocess.Popen([str(exe), "view", str(full_runs.examples), str(full_runs.runs), "--port", "0"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ})
    assert proc.stdout is not None
    banner = proc.stdout.readline()
    found = re.search(r" at (http://127\.0\.0\.1:\d+) \(over SSH: ssh -L (\d+):127\.0\.0\.1:(\d+) HOST\)", banner)
    assert found, banner
    try:
        yield Server(found[1], full_runs, banner)
    finally:
        proc.terminate()
        proc.wait(timeout=30)


@dataclass
class Watched:
    """What a page did that it must not: requests off loopback, console errors, page errors, dialogs."""

    external: list[str]
    errors: list[str]
    dialogs: list[str]


@pytest.fixture
def watched(page: Any) -> Iterator[Watched]:
    """Every request off loopback is aborted and recorded; console errors, page errors and dialogs are recorded;
    the test fails on any."""
    seen = Watched([], [], [])

    def route(r: Any) -> None:
        host = urlparse(r.request.url).hostname
        if r.request.url.startswith("data:") or host in ("127.0.0.1", "localhost"):
            r.continue_()
        else:
            seen.external.append(r.request.url)
            r.abort()

    page.route("**/*", route)
    page.on("console", lambda m: seen.errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: seen.errors.append(str(e)))
    page.on("dialog", lambda d: (seen.dialogs.append(d.message), d.dismiss()))
    yield seen
    assert seen == Watched([], [], [])


def shot(page: Any, name: str) -> None:
    """A screenshot of the viewport for the README (reviewed by people, never diffed)."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"))


def test_the_leaderboard_rows_are_the_run_directories(page: Any, server: Server, watched: Watched) -> None:
    page.set_viewport_size({"width": 1440, "height": 860})
    page.goto(server.url + "/")
    rows = page.locator("tr.run")
    dirs = {p.parent for root in (server.runs.examples, server.runs.runs) for p in root.rglob("run.json")}
    assert sorted(rows.evaluate_all("rs => rs.map(r => r.dataset.run)")) == sorted(d.name for d in dirs)
    for path in dirs:
        record = json.loads((path / "run.json").read_text())
        row = page.locator(f'tr.run[data-run="{path.name}"]')
        for task, entry in record["tasks"].items():
            value = row.locator(f'td.metric[data-task="{task}"] .value').inner_text()
            assert value == fmt_metric(MetricSummary(**entry["metrics"][entry["primary_metric"]])), (path.name, task)
    shot(page, "leaderboard")
    page.click('a[data-sort="model"]')
    assert "sort=model" in page.url
    models = page.locator("tr.run td.model").all_inner_texts()
    assert models == sorted(models)


def test_the_12k_run_opens_in_under_2_seconds_with_one_page_of_rows(page: Any, server: Server,
                                                                    watched: Watched) -> None:
    started = time.perf_counter()
    page.goto(f"{server.url}/run/big-12k/gsm8k")
    first = time.perf_counter() - started
    assert page.locator("a[data-filter='all'] .count").inner_text() == "12000"
    assert page.locator("tr.sample").count() == PAGE and page.locator("tr").count() <= PAGE + 1
    assert first < 2.0, f"first page of 12,000 samples took {first:.2f} s (index built)"
    started = time.perf_counter()
    page.click("a.page-next")
    assert page.locator("tr.sample").first.get_attribute("data-doc") == str(PAGE // 4)
    print(f"12k run: first open {first:.2f} s (its index built), next page {time.perf_counter() - started:.2f} s")


def test_ticking_two_runs_opens_their_diff(page: Any, server: Server, watched: Watched) -> None:
    page.goto(server.url + "/")
    page.check('input[value="replay-a"]')
    page.check('input[value="replay-b"]')
    page.click("text=compare (paired diff)")
    assert urlparse(page.url).path == "/diff/replay-a/replay-b/gsm8k"


@pytest.mark.parametrize(("run", "task"), [("a", "gsm8k"), ("a", "humaneval"), ("merged", "gsm8k"), ("big", "gsm8k")])
def test_filter_counts_equal_the_jsonl(page: Any, server: Server, watched: Watched, run: str, task: str) -> None:
    path = getattr(server.runs, run)
    page.goto(f"{server.url}/run/{path.name}/{task}")
    expected = expected_counts(path, task)
    for name, count in expected.items():
        assert page.locator(f'a[data-filter="{name}"] .count').inner_text() == str(count), name
    page.click('a[data-filter="failed"]')
    assert page.locator("#matched").inner_text() == str(expected["failed"])
    assert page.locator("tr.sample").count() == min(PAGE, expected["failed"])


def test_the_detail_pane_shows_a_sample_as_text(page: Any, server: Server, watched: Watched) -> None:
    page.set_viewport_size({"width": 1440, "height": 900})
    page.goto(f"{server.url}/run/replay-a/gsm8k")
    page.click('tr.sample[data-doc="0"] td.doc a')
    line = next(s for s in jsonl(server.runs.a, "gsm8k") if s["doc_id"] == "0")
    prompts = [json.loads(x) for x in (server.runs.a / "samples" / "gsm8k.prompts.jsonl").read_text().splitlines()]
    detail = page.locator("#detail")
    assert detail.locator("pre.prompt").inner_text() == next(p["prompt"] for p in prompts
                                                              if p["prompt_hash"] == line["prompt_hash"])
    detail.locator("details.reasoning summary").click()
    assert detail.locator("details.reasoning pre").inner_text() == reasoning_of(line)
    assert detail.locator("pre.answer").inner_text() == answer_of(line)
    assert json.loads(detail.locator("pre.extracted").inner_text()) == line["extracted"]
    assert detail.locator("pre.target").inner_text() == line["target"]
    assert detail.locator(".verdict").get_attribute("data-verdict") == "passed"
    assert SCRIPT in detail.locator("pre.answer").inner_text(), "the script tag is shown as text and never runs"
    assert page.locator("#detail script").count() == 0
    shot(page, "samples")


def test_a_failed_code_sample_shows_its_program_run(page: Any, server: Server, watched: Watched) -> None:
    page.goto(f"{server.url}/run/replay-a/humaneval?filter=code_error")
    page.locator("tr.sample td.doc a").first.click()
    assert page.locator("#detail .stderr").inner_text().strip() != ""
    assert page.locator("#detail .status-code").inner_text() in ("failed", "error", "timeout")


def test_a_deep_link_restores_the_view(page: Any, server: Server, watched: Watched) -> None:
    url = f"{server.url}/run/big-12k/gsm8k?filter=failed&sort=tokens&doc=7&k=0"
    page.goto(url)
    page.reload()
    assert page.url == url
    assert page.locator("a.chip.active").get_attribute("data-filter") == "failed"
    assert page.locator("#detail h2").inner_text().startswith("7")
    assert page.locator("select[name=sort]").input_value() == "tokens"
    page.click("#next")
    assert "filter=failed" in page.url and "sort=tokens" in page.url


def test_the_diff_agrees_with_owb_check(page: Any, server: Server, watched: Watched) -> None:
    page.set_viewport_size({"width": 1440, "height": 900})
    page.goto(f"{server.url}/diff/replay-a/replay-b/gsm8k")
    ended = run_main("check", "--baseline", str(server.runs.a), "--candidate", str(server.runs.b))
    verdicts = dict(re.findall(r"\| gsm8k \| (\w+) \|.*\| ([*A-Za-z]+) \|\n", ended.stdout + "\n"))
    a = {s["doc_id"]: s["scores"] for s in jsonl(server.runs.a, "gsm8k")}
    b = {s["doc_id"]: s["scores"] for s in jsonl(server.runs.b, "gsm8k")}
    assert verdicts
    for metric, verdict in verdicts.items():
        row = page.locator(f'#checks tr[data-metric="{metric}"]')
        assert row.locator(".lost").inner_text() == str(sum(a[d][metric] > b[d][metric] for d in a))
        assert row.locator(".won").inner_text() == str(sum(a[d][metric] < b[d][metric] for d in a))
        assert row.locator(".verdict").inner_text() == verdict.strip("*")
    assert page.locator("#result strong").inner_text() == ("FAIL" if ended.returncode == 1 else "PASS")
    shot(page, "diff")


def test_the_run_page_links_its_raw_files(page: Any, server: Server, watched: Watched) -> None:
    page.set_viewport_size({"width": 1440, "height": 900})
    page.goto(f"{server.url}/run/replay-a")
    shot(page, "run")
    with page.expect_response(lambda r: r.url.endswith("/samples/gsm8k.jsonl")) as response:
        page.click('#task-gsm8k .files a:has-text("samples/gsm8k.jsonl")')
    assert response.value.status == 200
    assert response.value.body() == (server.runs.a / "samples" / "gsm8k.jsonl").read_bytes()


def test_the_plots_draw_only_what_was_measured(page: Any, server: Server, watched: Watched) -> None:
    page.set_viewport_size({"width": 1440, "height": 900})
    page.goto(f"{server.url}/plots?run=big-12k&run=replay-a&run=r1-distill-7b-protocol-r1&run=qwen3-8b-thinking")
    assert page.locator("svg.chart").count() >= 4
    assert page.locator("circle.point[fill='none']").count() >= 2, "published claims, hollow"
    assert page.locator("text=no output tokens/s recorded").count() >= 1
    shot(page, "plots")


def test_the_run_directories_are_unchanged(server: Server, full_runs: Fixtures,
                                           before: dict[str, tuple[str, int]]) -> None:
    """Last: after every page above, each file under the run directories has its hash and mtime of before the
    server started (the server's index cache lives under $OWB_HOME/view/)."""
    assert tree_hash(full_runs.runs, full_runs.examples) == before
