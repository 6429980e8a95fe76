"""Runs written by schema 1 (tests/fixtures/v1) read as the current schema, replay to their metrics, compare, check, rescore and resume."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from harness.cli import app
from harness.core.errors import ConfigError
from harness.records.base import SCHEMA_VERSION
from harness.records.store import RunDir
from harness.records.upgrade import read_bench_record, read_run_record
from tests.contract import check_run
from tests.helpers import REPO, owb, run_cli, samples

V1 = REPO / "tests" / "fixtures" / "v1"


def test_a_schema_1_run_reads_as_schema_2() -> None:
    record = RunDir(V1 / "replayed").read_run()
    assert record.schema_version == SCHEMA_VERSION and record.upgraded_from == 1
    assert record.invocation.backend_args == {"replay": record.invocation.backend_args["replay"]}
    metrics = record.tasks["humaneval"].metrics
    assert metrics["pass@1"].score == "passed" and record.tasks["gsm8k"].metrics["maj@3"].score is None
    words = record.tasks["scitldr"].metrics["output_words"]
    assert (words.scale, words.higher_is_better) == ("raw", None)
    assert record.tasks["scitldr"].metrics["empty_rate"].higher_is_better is False
    assert read_bench_record((V1 / "bench.json").read_text()).levels[0].concurrency == 1
    broken = json.loads((V1 / "replayed" / "run.json").read_text())
    del broken["invocation"]["backend"]
    with pytest.raises(ConfigError, match=r"^invalid run.json \(schema 1\): KeyError 'backend'$"):
        read_run_record(json.dumps(broken))


def test_replaying_a_schema_1_run_gives_its_metrics(tmp_path: Path) -> None:
    """The same stored outputs through today's pipeline: every metric, stderr and interval as schema 1 wrote them."""
    old = json.loads((V1 / "replayed" / "run.json").read_text())
    run_dir = run_cli("--model", "tiny-qwen2", "--backend", "replay", "--replay", str(V1 / "replayed.jsonl"),
                      "--tasks", "gsm8k,math500,humaneval,scitldr", "--data", "fixture", "--samples", "3",
                      "--output", str(tmp_path))
    new = check_run(run_dir)
    assert new["schema_version"] == SCHEMA_VERSION
    for task, entry in old["tasks"].items():
        assert list(new["tasks"][task]["metrics"]) == list(entry["metrics"])
        for name, metric in entry["metrics"].items():
            got = new["tasks"][task]["metrics"][name]
            assert (got["value"], got["stderr"]) == (metric["value"], metric["stderr"])
            # Wilson intervals (0/1 per document) are exact; schema 2 bootstraps documents in id order (schema 1 in
            # the order samples finished), so a bootstrap interval moves by resampling noise only.
            assert got["ci95"] == pytest.approx(metric["ci95"], abs=3.0)
    for task in old["tasks"]:
        old_lines = [json.loads(x) for x in (V1 / "replayed" / "samples" / f"{task}.jsonl").read_text().splitlines()]
        kept = [k for k in old_lines[0] if k not in {"prompt", "key", "exec_s"}]  # every field schema 1 wrote
        assert [{k: line[k] for k in kept} for line in old_lines] == [{k: s[k] for k in kept}
                                                                       for s in samples(run_dir, task)]


def test_compare_check_and_rescore_read_schema_1(tmp_path: Path) -> None:
    copy = tmp_path / "v1"
    shutil.copytree(V1 / "replayed", copy)
    before = read_run_record((copy / "run.json").read_text())
    out = CliRunner().invoke(app, ["rescore", str(copy)], catch_exceptions=False)
    assert out.exit_code == 0, out.output
    after = RunDir(copy).read_run()
    assert after.schema_version == SCHEMA_VERSION and after.upgraded_from == 1
    assert {t: {m: v.value for m, v in e.metrics.items()} for t, e in after.tasks.items()} == {
        t: {m: v.value for m, v in e.metrics.items()} for t, e in before.tasks.items()}
    md = CliRunner().invoke(app, ["compare", str(V1 / "replayed"), str(copy), "--format", "md"])
    assert md.exit_code == 0 and md.output.count("| 20261123-064225-tiny-qwen2-replay-e02b45 |") == 2


@pytest.mark.slow
def test_resuming_a_schema_1_run_finishes_it(tmp_path: Path) -> None:
    """A run killed under schema 1 (2 of 4 gsm8k samples, no math500) is finished by today's owb: the same greedy
    outputs, every sample once, and run.json rewritten in the current schema."""
    run = tmp_path / "partial"
    shutil.copytree(V1 / "partial", run)
    result = owb("run", "--resume", str(run))
    assert result.returncode == 0, result.stderr
    assert "task spec format changed since schema 1" in result.stderr
    record = check_run(run)
    expected = json.loads((V1 / "partial.expected.json").read_text())
    assert record["schema_version"] == SCHEMA_VERSION and record["upgraded_from"] == 1
    for task, want in expected["raw_outputs"].items():
        assert [s["raw_output"] for s in samples(run, task)] == want
        assert {m: v["value"] for m, v in record["tasks"][task]["metrics"].items()} == {
            m: v["value"] for m, v in expected["tasks"][task]["metrics"].items()}
