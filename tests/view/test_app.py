"""`owb view`'s server through Starlette's TestClient: the leaderboard holds every run with run.json's values, the
filters count what the JSONL holds, pages hold one page of rows, search, the detail pane, the paired diff agrees with
`owb check`, files outside the runs are refused, nothing is written into a run, the index is cached, the export."""

from __future__ import annotations

import html
import json
import os
import re
import shutil
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from harness.core.errors import ConfigError
from harness.records.run import MetricSummary
from harness.records.store import RunDir
from harness.report.format import fmt_metric
from harness.view.app import create_app
from harness.view.export import export
from harness.view.filters import PAGE
from harness.view.index import cache_file
from harness.view.viewer import Viewer
from tests.helpers import REPO, run_main
from tests.view.conftest import answer_of, expected_counts, jsonl, reasoning_of
from tests.view.fixture_runs import LOST, SCRIPT, WON, Fixtures, replay_run


@pytest.fixture(scope="module")
def client(small_runs: Fixtures) -> TestClient:
    return TestClient(create_app([small_runs.examples, small_runs.runs], ["testserver"]))


def chip_counts(page: str) -> dict[str, str]:
    """Each filter chip's count as the page shows it."""
    return dict(re.findall(r'data-filter="(\w+)"[^>]*>[^<]*<span class="count">([^<]+)</span>', page))


def rows(page: str) -> list[tuple[str, int]]:
    """The sample rows of a page: (document, sample index)."""
    return [(html.unescape(d), int(k)) for d, k in re.findall(r'<tr class="sample[^"]*" data-doc="([^"]*)" '
                                                              r'data-k="(\d+)"', page)]


def run_dirs(*roots: Path) -> set[str]:
    return {p.parent.name for root in roots for p in root.rglob("run.json")}


def test_the_leaderboard_has_a_row_per_run_with_run_json_values(client: TestClient, small_runs: Fixtures,
                                                                unchanged: None) -> None:
    page = client.get("/").text
    shown = re.findall(r'<tr class="run" data-run="([^"]+)"', page)
    assert set(shown) == run_dirs(small_runs.examples, small_runs.runs) and len(shown) == len(set(shown))
    for block in page.split('<tr class="run" ')[1:]:
        run_id = re.match(r'data-run="([^"]+)"', block)[1]  # type: ignore[index]
        path = next(p.parent for root in (small_runs.examples, small_runs.runs) for p in root.rglob("run.json")
                    if p.parent.name == run_id)
        record = json.loads((path / "run.json").read_text())
        for task, value in re.findall(r'data-task="([^"]+)"[^>]*>\s*<a[^>]*><span class="value">([^<]*)</span>', block):
            entry = record["tasks"][task]
            assert value == fmt_metric(MetricSummary(**entry["metrics"][entry["primary_metric"]])), (run_id, task)
    assert re.search(r'class="docs"[^>]*>docs A', page) and re.search(r'class="docs"[^>]*>docs B', page)
    big = json.loads((small_runs.big / "run.json").read_text())["tasks"]["gsm8k"]
    row = page.split('data-run="big-12k"')[1].split("</tr>")[0]
    assert re.findall(r'<td class="num">([^<]+)</td>', row)[1:3] == [
        f'{big["cost"]["usd_per_1k_correct"]:.3f}', f'{big["perf"]["ttft_s"]["p50"]:.3f}']
    for status in ("running", "merged", "complete"):
        assert f'<span class="status status-{status}">' in page


def test_the_leaderboard_sorts_and_filters(client: TestClient, small_runs: Fixtures) -> None:
    by_model = re.findall(r'<td class="model">([^<]+)</td>',
                          client.get("/?sort=model").text, re.S)
    assert by_model == sorted(by_model) and len(set(by_model)) > 1
    only = client.get("/?status=running").text
    assert re.findall(r'<tr class="run" data-run="([^"]+)"', only) == [small_runs.running.name]
    assert client.get("/?task=humaneval").text.count('<tr class="run" ') == 3, "A, B and the running copy of A"
    assert client.get("/?status=bogus").status_code == 400


@pytest.mark.parametrize(("run", "task"), [("a", "gsm8k"), ("a", "humaneval"), ("merged", "gsm8k"),
                                           ("big", "gsm8k"), ("example", "math500")])
def test_filter_counts_equal_the_jsonl(client: TestClient, small_runs: Fixtures, run: str, task: str) -> None:
    path = small_runs.examples / "r1-distill-7b-protocol-r1" if run == "example" else getattr(small_runs, run)
    shown = chip_counts(client.get(f"/run/{path.name}/{task}").text)
    expected = expected_counts(path, task)
    if run == "example":
        expected["extraction_failed"] = "unknown"  # type: ignore[assignment]  # written before scorers declared it
    assert shown == {k: str(v) for k, v in expected.items()}
    for name, count in expected.items():
        if name != "extraction_failed" or run != "example":
            matched = client.get(f"/run/{path.name}/{task}?filter={name}").text
            assert re.search(r'<span id="matched">(\d+)</span>', matched)[1] == str(count)  # type: ignore[index]


@pytest.mark.parametrize("layout", ["v1", "v2"])
def test_runs_of_older_schemas_are_browsed(layout: str) -> None:
    """Runs written by schema 1 and 2 (prompt, reasoning and answer on every line): counted and shown alike, two
    runs of one directory name told apart, extraction failure unknown."""
    root = REPO / "tests" / "fixtures"
    client = TestClient(create_app([root / "v1", root / "v2"], ["testserver"]))
    ids = re.findall(r'<tr class="run" data-run="([^"]+)"', client.get("/").text)
    assert len(ids) == 4 and len(set(ids)) == 4
    run = root / layout / "replayed"
    run_id = next(i for i in ids if i.startswith("replayed~") and f"/{layout}/" in html.unescape(
        re.search(rf'data-run="{re.escape(i)}" data-path="([^"]+)"', client.get("/").text)[1]))  # type: ignore[index]
    for task in RunDir(run).read_run().tasks:
        page = client.get(f"/run/{run_id}/{task}?doc={jsonl(run, task)[0]['doc_id']}").text
        expected = {k: str(v) for k, v in expected_counts(run, task).items()}
        assert chip_counts(page) == {**expected, "extraction_failed": "unknown"}
        assert answer_of(jsonl(run, task)[0]) in html.unescape(page)


@pytest.mark.parametrize("compress", ["gzip", "zstd"])
def test_compressed_samples_are_browsed(small_runs: Fixtures, tmp_path: Path, compress: str) -> None:
    lines = [{"task": "gsm8k", "doc_id": str(i), "output": f"<think>x</think>#### {i}"} for i in range(12)]
    run = replay_run(tmp_path, compress, lines, "gsm8k", "--compress", compress)
    client = TestClient(create_app([tmp_path / compress], ["testserver"]))
    page = client.get(f"/run/{run.name}/gsm8k?doc=5").text
    assert chip_counts(page) == {k: str(v) for k, v in expected_counts(run, "gsm8k").items()}
    assert "#### 5" in html.unescape(page[page.index('id="detail"'):])
    assert len(rows(client.get(f"/run/{run.name}/gsm8k?q=%23%23%23%23 7").text)) == 1


def test_a_page_holds_at_most_one_page_of_rows(client: TestClient, small_runs: Fixtures) -> None:
    total = len(jsonl(small_runs.big, "gsm8k"))
    first = rows(client.get("/run/big-12k/gsm8k").text)
    assert len(first) == PAGE and first[0] == ("0", 0)
    last_page = -(-total // PAGE)
    last = rows(client.get(f"/run/big-12k/gsm8k?page={last_page}").text)
    assert len(last) == total - PAGE * (last_page - 1)
    assert rows(client.get(f"/run/big-12k/gsm8k?page={last_page + 5}").text) == last, "a page past the end is the last"
    tokens = {(s["doc_id"], s["sample_idx"]): s["output_tokens"] for s in jsonl(small_runs.big, "gsm8k")}
    slowest = [tokens[r] for r in rows(client.get("/run/big-12k/gsm8k?sort=tokens").text)]
    assert slowest == sorted(tokens.values(), reverse=True)[:PAGE]


def test_search_finds_text_in_prompts_and_outputs(client: TestClient, small_runs: Fixtures) -> None:
    lines = jsonl(small_runs.big, "gsm8k")
    page = client.get("/run/big-12k/gsm8k?q=Question 12:&filter=all").text
    assert {d for d, _ in rows(page)} == {"12"}, "the prompt is stored apart from the line, by hash"
    wanted = "ANSWER IS 85"
    expected = sum(wanted.lower() in line["raw_output"].lower() for line in lines)
    page = client.get(f"/run/big-12k/gsm8k?q={wanted}").text
    assert re.search(r'<span id="matched">(\d+)</span>', page)[1] == str(expected) != "0"  # type: ignore[index]
    assert rows(client.get("/run/big-12k/gsm8k?q=stop").text) == [], "field names and values are not searched"


def test_the_detail_pane_shows_the_sample_as_text(client: TestClient, small_runs: Fixtures) -> None:
    line = next(s for s in jsonl(small_runs.a, "gsm8k") if s["doc_id"] == "0")
    page = client.get("/run/replay-a/gsm8k?doc=0").text
    detail = page[page.index('id="detail"'):]
    prompts = {json.loads(p)["prompt_hash"]: json.loads(p)["prompt"]
               for p in (small_runs.a / "samples" / "gsm8k.prompts.jsonl").read_text().splitlines()}
    for text in (prompts[line["prompt_hash"]], reasoning_of(line), answer_of(line), line["target"]):
        assert text in html.unescape(detail)
    assert json.dumps(line["extracted"]["flexible"]) in html.unescape(detail)
    assert 'data-verdict="passed"' in detail and "flexible_match 1" in detail
    assert SCRIPT not in page and html.escape(SCRIPT, quote=False) in page, "model output is text, never markup"
    code = client.get("/run/replay-a/humaneval?doc=Fixture/2").text
    assert 'class="status-code">failed' in code or 'class="status-code">error' in code
    assert "SyntaxError" in code, "the program's stderr"


def test_the_detail_pane_shows_the_other_samples_and_keeps_the_filter(client: TestClient) -> None:
    page = client.get("/run/big-12k/gsm8k?filter=failed&doc=3&k=0").text
    others = re.findall(r'<div class="other" data-k="(\d+)">', page)
    assert others == ["1", "2", "3"]
    nxt = html.unescape(re.search(r'<a id="next" href="([^"]+)"', page)[1])  # type: ignore[index]
    assert "filter=failed" in nxt
    assert 'class="sample selected" data-doc="3" data-k="0"' in page


def test_the_diff_equals_owb_check(client: TestClient, small_runs: Fixtures) -> None:
    page = client.get("/diff/replay-a/replay-b/gsm8k").text
    ended = run_main("check", "--baseline", str(small_runs.a), "--candidate", str(small_runs.b))
    verdicts = dict(re.findall(r"\| gsm8k \| (\w+) \|.*\| ([*A-Za-z]+) \|\n", ended.stdout + "\n"))
    a = {s["doc_id"]: s["scores"] for s in jsonl(small_runs.a, "gsm8k")}
    b = {s["doc_id"]: s["scores"] for s in jsonl(small_runs.b, "gsm8k")}
    for metric, verdict in verdicts.items():
        row = re.search(rf'<tr data-metric="{metric}".*?</tr>', page, re.S)[0]  # type: ignore[index]
        lost = sum(a[d][metric] == 1 and b[d][metric] == 0 for d in a)
        won = sum(a[d][metric] == 0 and b[d][metric] == 1 for d in a)
        assert re.search(r'class="num lost">(\d+)<', row)[1] == str(lost)  # type: ignore[index]
        assert re.search(r'class="num won">(\d+)<', row)[1] == str(won)  # type: ignore[index]
        shown = re.search(r'class="verdict [a-z]+">([A-Za-z]+)<', row)[1]  # type: ignore[index]
        assert shown == verdict.strip("*")
    assert (ended.returncode == 1) == ("<strong>FAIL</strong>" in page)
    lost_docs = re.findall(r'<section class="pair" data-doc="([^"]+)"',
                           client.get("/diff/replay-a/replay-b/gsm8k?metric=strict_match&show=lost").text)
    assert sorted(lost_docs) == sorted(LOST)
    assert re.findall(r'<section class="pair" data-doc="([^"]+)"',
                      client.get("/diff/replay-a/replay-b/gsm8k?metric=strict_match&show=won").text) == WON


def test_the_diff_refuses_what_check_refuses(client: TestClient, small_runs: Fixtures) -> None:
    other_docs = client.get("/diff/replay-a/big-12k/gsm8k")
    assert other_docs.status_code == 400 and "the runs scored different documents" in other_docs.text
    running = client.get(f"/diff/replay-a/{small_runs.running.name}/gsm8k")
    assert running.status_code == 400 and "is not complete" in running.text
    settings = client.get(f"/diff/replay-a/{small_runs.merged.name}/gsm8k")
    assert settings.status_code == 400 and "samples_per_doc 1 -&gt; 2" in settings.text
    assert "allow_config_change=1" in settings.text
    allowed = client.get(f"/diff/replay-a/{small_runs.merged.name}/gsm8k?allow_config_change=1")
    assert allowed.status_code == 200 and "Settings differ (allowed)" in allowed.text


def test_only_files_inside_a_run_are_served(client: TestClient, small_runs: Fixtures, tmp_path: Path) -> None:
    served = client.get("/raw/replay-a/run.json")
    assert served.status_code == 200 and served.content == (small_runs.a / "run.json").read_bytes()
    assert served.headers["content-type"].startswith("text/plain")
    assert "sandbox" in served.headers["content-security-policy"]
    for bad in ("%2e%2e/replay-b/run.json", "%2e%2e/%2e%2e/%2e%2e/etc/passwd", "samples/%2e%2e/%2e%2e/replay-b/run.json",
                "%2Fetc%2Fpasswd", "samples", "nothing.json"):
        assert client.get(f"/raw/replay-a/{bad}").status_code == 404, bad
    assert client.get("/raw/no-such-run/run.json").status_code == 404
    linked = tmp_path / "linked"
    shutil.copytree(small_runs.a, linked / "run")
    (tmp_path / "secret.txt").write_text("secret")
    os.symlink(tmp_path / "secret.txt", linked / "run" / "out.txt")
    own = TestClient(create_app([linked], ["testserver"]))
    assert own.get("/raw/run/out.txt").status_code == 404
    assert own.get("/raw/run/run.json").status_code == 200


def test_requests_that_are_not_plain_reads_are_refused(client: TestClient) -> None:
    assert client.post("/").status_code == 405
    assert client.get("/run/nope").status_code == 404
    assert client.get("/run/replay-a/nope").status_code == 404
    assert client.get("/run/replay-a/gsm8k?filter=bogus").status_code == 400
    assert client.get("/", headers={"host": "evil.example"}).status_code == 400, "DNS rebinding"
    headers = client.get("/").headers
    assert "script-src 'self'" in headers["content-security-policy"] and headers["x-content-type-options"] == "nosniff"


def test_no_page_writes_a_run_and_the_index_is_cached(small_runs: Fixtures, unchanged: None) -> None:
    viewer = Viewer([small_runs.examples, small_runs.runs])
    app = TestClient(create_app([], ["testserver"], viewer))
    for url in ("/", "/plots", "/run/replay-a", "/run/big-12k/gsm8k?filter=disagree&doc=5",
                "/diff/replay-a/replay-b/math500", "/run/still-running/humaneval?q=def", "/raw/big-12k/run.json"):
        assert app.get(url).status_code == 200, url
    samples = small_runs.big / "samples" / "gsm8k.jsonl"
    assert cache_file(samples).is_file() and str(cache_file(samples)).startswith(os.environ["OWB_HOME"])
    again = Viewer([small_runs.runs])
    again.task("big-12k", "gsm8k")
    assert (again.indexes.built, again.indexes.loaded) == (0, 1), "read from the cache"


def test_an_index_is_rebuilt_when_its_file_changes(small_runs: Fixtures, tmp_path: Path) -> None:
    run = Path(shutil.copytree(small_runs.a, tmp_path / "runs" / "copy"))
    Viewer([tmp_path / "runs"]).task("copy", "gsm8k")
    with (run / "samples" / "gsm8k.jsonl").open("ab") as handle:
        handle.write(b'{"key": "torn')  # a sample being written: skipped, and the file changed
    viewer = Viewer([tmp_path / "runs"])
    view = viewer.task("copy", "gsm8k")
    assert (viewer.indexes.built, len(view.index.entries)) == (1, 12)


def test_the_plots_never_draw_a_missing_figure_at_zero(client: TestClient) -> None:
    page = client.get("/plots?run=replay-a&run=big-12k").text
    assert page.count("<svg class=\"chart\"") >= 3
    assert "no output tokens/s recorded" in page and "no $ per 1,000 correct recorded" in page
    assert "qwen3-8b · thinking on · big-12k" in page, "labels name the run, not only the model"
    assert "output length of right and wrong answers" in page


def test_the_export_is_static_and_capped(small_runs: Fixtures, tmp_path: Path, unchanged: None) -> None:
    roots = [small_runs.runs]
    written = export(roots, tmp_path / "share")
    index = (tmp_path / "share" / "index.html").read_text()
    assert "/compare" not in index and 'href="runs/replay-a/index.html"' in index
    failed = (tmp_path / "share" / "runs" / "replay-a" / "gsm8k.failed.html").read_text()
    assert re.search(r'<span id="matched">(\d+)</span>', failed)[1] == str(  # type: ignore[index]
        expected_counts(small_runs.a, "gsm8k")["failed"])
    assert not [p for p in (tmp_path / "share").rglob("*.html") if SCRIPT in p.read_text()]
    assert written.bytes <= written.cap and not list((tmp_path / "share").rglob("*.js"))
    small = export(roots, tmp_path / "small", cap=200_000)
    assert small.omitted > 0 and small.bytes < 400_000
    with pytest.raises(ConfigError, match="inside the run directory"):
        export(roots, small_runs.a / "share")
