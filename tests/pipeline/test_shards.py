"""`owb run --shard I/N` and `owb merge`: three shards merged give exactly the metrics of one run; the shards must
be one run's, complete and each once."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from harness.cli import app
from harness.core.errors import ConfigError
from harness.pipeline.merge import merge
from tests.contract import check_run
from tests.helpers import fixture_rows, run_cli, samples, write_replay

TASKS = "gsm8k,math500,scitldr"


def _replay(tmp_path: Path) -> Path:
    """Two samples per document, right and wrong answers mixed, summaries of several lengths."""
    lines = []
    for i, r in enumerate(fixture_rows("gsm8k")):
        gold = r["answer"].split("####")[-1].strip()
        lines += [{"task": "gsm8k", "doc_id": str(i), "sample_idx": k, "output": f"#### {gold if (i + k) % 3 else 0}"}
                  for k in range(2)]
    for i, r in enumerate(fixture_rows("math500")):
        lines += [{"task": "math500", "doc_id": r["unique_id"], "sample_idx": k,
                   "output": f"\\boxed{{{r['answer'] if (i * k) % 2 == 0 else 'x'}}}"} for k in range(2)]
    for r in fixture_rows("scitldr"):
        lines += [{"task": "scitldr", "doc_id": r["paper_id"], "sample_idx": k, "output": " ".join(r["source"][:k + 1])}
                  for k in range(2)]
    return write_replay(tmp_path / "outputs.jsonl", lines)


def _run(replay: Path, out: Path, *extra: str) -> Path:
    return run_cli("--model", "tiny-qwen2", "--backend", "replay", "--replay", str(replay), "--tasks", TASKS,
                   "--data", "fixture", "--samples", "2", "--output", str(out), *extra)


def test_three_shards_merged_equal_one_run(tmp_path: Path) -> None:
    replay = _replay(tmp_path)
    whole = json.loads((_run(replay, tmp_path / "whole") / "run.json").read_text())
    shards = [_run(replay, tmp_path / f"shard{i}", "--shard", f"{i}/3") for i in (1, 2, 3)]
    sizes = {task: [len(samples(s, task)) for s in shards] for task in TASKS.split(",")}
    assert sizes == {"gsm8k": [8, 8, 8], "math500": [8, 6, 6], "scitldr": [4, 4, 2]}, "dealt evenly, K=2 each"
    result = CliRunner().invoke(app, ["merge", *map(str, shards), "--output", str(tmp_path / "merged")])
    assert result.exit_code == 0, result.output
    merged_dir = next((tmp_path / "merged").iterdir())
    merged = check_run(merged_dir)
    assert merged["merged_from"] == [json.loads((s / "run.json").read_text())["run_id"] for s in shards]
    assert merged["invocation"]["shard"] is None
    for task in TASKS.split(","):
        assert merged["tasks"][task]["metrics"] == whole["tasks"][task]["metrics"], task
        assert merged["tasks"][task]["config"] == whole["tasks"][task]["config"]
        assert sorted(s["key"] for s in samples(merged_dir, task)) == sorted(
            s["key"] for s in samples(next((tmp_path / "whole").iterdir()), task))


@pytest.mark.slow
def test_merge_refuses_what_is_not_one_runs_shards(tmp_path: Path) -> None:
    replay = _replay(tmp_path)
    one, two = (_run(replay, tmp_path / f"s{i}", "--shard", f"{i}/3") for i in (1, 2))
    with pytest.raises(ConfigError, match=r"the shards are 1/3, 2/3, not 1..3 of 3 once each"):
        merge([one, two], tmp_path / "m")
    other = _run(replay, tmp_path / "s3", "--shard", "3/3", "--max-new-tokens", "9")
    with pytest.raises(ConfigError, match="differs in task gsm8k's spec, data, prompts or decoding"):
        merge([one, two, other], tmp_path / "m")
    live = tmp_path / "live"
    shutil.copytree(other, live)
    record = json.loads((live / "run.json").read_text())
    record["status"] = "running"
    (live / "run.json").write_text(json.dumps(record))
    with pytest.raises(ConfigError, match="is not complete"):
        merge([one, two, live], tmp_path / "m")
    with pytest.raises(ConfigError, match="--shard I/N needs 1 <= I <= N"):
        _run(replay, tmp_path / "bad", "--shard", "4/3")
    with pytest.raises(ConfigError, match="task scitldr has only 5 documents, so some shards would get none"):
        _run(replay, tmp_path / "bad", "--shard", "6/6")


@pytest.mark.slow
def test_check_refuses_a_shard_against_another_shard_or_the_whole_run(tmp_path: Path) -> None:
    from harness.report.check import check

    replay = _replay(tmp_path)
    whole = _run(replay, tmp_path / "whole")
    one, two = (_run(replay, tmp_path / f"s{i}", "--shard", f"{i}/2") for i in (1, 2))
    with pytest.raises(ConfigError, match=r"different shards \(1/2 vs 2/2\)"):
        check(one, two, max_drop=1, alpha=0.05, max_slowdown=None)
    with pytest.raises(ConfigError, match=r"different shards \(all vs 1/2\)"):
        check(whole, one, max_drop=1, alpha=0.05, max_slowdown=None)


def test_a_run_interrupted_before_a_tasks_first_batch_rescores_and_resumes(tmp_path: Path) -> None:
    from tests.helpers import run_main

    replay = _replay(tmp_path)
    run_dir = _run(replay, tmp_path / "runs")
    record = json.loads((run_dir / "run.json").read_text())
    record["status"] = "running"
    record["tasks"]["scitldr"] = {"config": record["tasks"]["scitldr"]["config"]}  # as written before generating
    (run_dir / "run.json").write_text(json.dumps(record))
    (run_dir / "samples" / "scitldr.jsonl").unlink()
    rescored = run_main("rescore", str(run_dir))
    assert rescored.returncode == 0, rescored.stderr
    assert json.loads((run_dir / "run.json").read_text())["tasks"]["scitldr"].get("n") is None
    resumed = run_main("run", "--resume", str(run_dir))
    assert resumed.returncode == 0, resumed.stderr
    assert check_run(run_dir)["tasks"]["scitldr"]["n"] == 5
