"""The architecture's seams: typed records that read schema 1, a backend added as one class plus one registry line,
task specs validated against their scorer, the reducers a task YAML chooses, and reading a run never changing it."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from harness.cli import app
from harness.config.taskspec import MetricSpec, load_task_spec
from harness.core.errors import ConfigError, DataError, UserError
from harness.engines.base import Generation
from harness.engines.registry import BACKENDS, register_backend
from harness.pipeline.runner import run
from harness.records.base import SCHEMA_VERSION
from harness.records.run import RunOptions, RunRecord
from harness.records.sample import SampleRecord, Timings
from harness.records.store import RunDir
from harness.records.upgrade import read_bench_record, read_run_record
from harness.scoring.maths import MathScorer
from harness.scoring.metrics import document_values, majority
from harness.scoring.registry import make_scorer
from harness.tasks.base import load_task_file
from tests.contract import check_bench, check_run
from tests.helpers import REPO, FakeBackend, owb, run_cli, samples, write_replay

V1 = REPO / "tests" / "fixtures" / "v1"


@pytest.fixture
def fake_backend() -> FakeBackend:
    """The in-test backend, registered for the test only."""
    register_backend("fake", FakeBackend)
    FakeBackend.opened.clear()
    yield FakeBackend
    BACKENDS.unregister("fake")


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
    assert new["schema_version"] == 2
    for task, entry in old["tasks"].items():
        assert list(new["tasks"][task]["metrics"]) == list(entry["metrics"])
        for name, metric in entry["metrics"].items():
            got = new["tasks"][task]["metrics"][name]
            assert (got["value"], got["stderr"]) == (metric["value"], metric["stderr"])
            # Wilson intervals (0/1 per document) are exact; schema 2 bootstraps documents in id order (schema 1 in
            # the order samples finished), so a bootstrap interval moves by resampling noise only.
            assert got["ci95"] == pytest.approx(metric["ci95"], abs=3.0)
    for task in old["tasks"]:
        old_lines = (V1 / "replayed" / "samples" / f"{task}.jsonl").read_text().splitlines()
        strip = {"prompt", "key"}
        assert [{k: v for k, v in json.loads(x).items() if k not in strip and k != "exec_s"} for x in old_lines] == [
            {k: v for k, v in s.items() if k not in strip and k != "exec_s"} for s in samples(run_dir, task)]


def test_compare_check_and_rescore_read_schema_1(tmp_path: Path) -> None:
    copy = tmp_path / "v1"
    shutil.copytree(V1 / "replayed", copy)
    before = read_run_record((copy / "run.json").read_text())
    out = CliRunner().invoke(app, ["rescore", str(copy)], catch_exceptions=False)
    assert out.exit_code == 0, out.output
    after = RunDir(copy).read_run()
    assert after.schema_version == 2 and after.upgraded_from == 1
    assert {t: {m: v.value for m, v in e.metrics.items()} for t, e in after.tasks.items()} == {
        t: {m: v.value for m, v in e.metrics.items()} for t, e in before.tasks.items()}
    md = CliRunner().invoke(app, ["compare", str(V1 / "replayed"), str(copy), "--format", "md"])
    assert md.exit_code == 0 and md.output.count("| 20261123-064225-tiny-qwen2-replay-e02b45 |") == 2


@pytest.mark.slow
def test_resuming_a_schema_1_run_finishes_it(tmp_path: Path) -> None:
    """A run killed under schema 1 (2 of 4 gsm8k samples, no math500) is finished by today's owb: the same greedy
    outputs, every sample once, and run.json rewritten as schema 2."""
    run = tmp_path / "partial"
    shutil.copytree(V1 / "partial", run)
    result = owb("run", "--resume", str(run))
    assert result.returncode == 0, result.stderr
    assert "task spec format changed since schema 1" in result.stderr
    record = check_run(run)
    expected = json.loads((V1 / "partial.expected.json").read_text())
    assert record["schema_version"] == 2 and record["upgraded_from"] == 1
    for task, want in expected["raw_outputs"].items():
        assert [s["raw_output"] for s in samples(run, task)] == want
        assert {m: v["value"] for m, v in record["tasks"][task]["metrics"].items()} == {
            m: v["value"] for m, v in expected["tasks"][task]["metrics"].items()}


def test_a_new_backend_is_one_class_and_one_registry_line(fake_backend: type[FakeBackend], tmp_path: Path) -> None:
    """The fake backend (tests/helpers.py) registered at run time runs `owb run` and `owb bench` end to end; its own
    options model validates --backend-arg, and the card's engine_args for it apply."""
    run_dir = run_cli("--model", "tiny-qwen2", "--backend", "fake", "--tasks", "gsm8k,math500", "--data", "fixture",
                      "--limit", "3", "--backend-arg", "answer=\\boxed{7}", "--batch-size", "2",
                      "--output", str(tmp_path / "runs"))
    record = check_run(run_dir)
    assert record["backend"] == {"name": "fake", "version": "0",
                                 "args": {"answer": "\\boxed{7}", "batch_size": 2, "random_weights": False}}
    assert all(s["raw_output"] == "\\boxed{7}" and s["ttft_s"] == 0.001 for s in samples(run_dir, "math500"))
    bench = run_cli("--model", "tiny-qwen2", "--backend", "fake", "--input-len", "6", "--output-len", "4",
                    "--concurrency", "1,2", "--num-prompts", "4", "--output", str(tmp_path / "bench"), command="bench")
    check_bench(bench, 6, 4, [1, 2], 4)
    assert fake_backend.opened[-1].batch_size == 2  # the top concurrency level, mapped by the options model
    card = tmp_path / "card.yaml"
    card.write_text((REPO / "model_cards" / "tiny-qwen2.yaml").read_text()
                    + "engine_args: {fake: {answer: '#### 5', batch_size: 8}}\n")
    for flags, batch in (((), 8), (("--batch-size", "2"), 2), (("--batch-size", "2", "--backend-arg", "batch_size=3"), 3)):
        run_cli("--model", str(card), "--backend", "fake", "--tasks", "gsm8k", "--data", "fixture", "--limit", "1",
                "--output", str(tmp_path / "card"), *flags)  # the card, then owb's flags, then --backend-arg
        assert (fake_backend.opened[-1].answer, fake_backend.opened[-1].batch_size) == ("#### 5", batch), flags
    with pytest.raises(UserError, match=r"backend fake: unknown option 'temprature' \(it takes: answer, batch_size"):
        run(RunOptions(model="tiny-qwen2", backend="fake", backend_args={"temprature": 1}))


@pytest.mark.parametrize(
    ("patch", "message"),
    [
        ("scorer: {name: math}", "ok"),
        ("scorer: {name: maths}", "unknown scorer 'maths'"),
        ("scorer: {name: math, args: {answer: boxed}}", "scorer math: invalid argument answer"),
        ("metrics: [math_verify, math_verfy]", "reduces score 'math_verfy', which scorer math does not write"),
        ("primary_metric: accuracy", "primary_metric accuracy is not one of the metrics"),
        ("metrics: [{name: pass@k, score: math_verify, reduce: pass_at_k}]", "pass_at_k needs `k: [...]`"),
    ],
)
def test_task_specs_are_checked_against_their_scorer(tmp_path: Path, patch: str, message: str) -> None:
    base = (REPO / "tasks" / "math500.yaml").read_text().splitlines()
    key = patch.split(":")[0]
    lines = [line for line in base if not line.startswith(key + ":")]
    if key == "metrics":  # drop the block that followed `metrics:`
        start = next(i for i, line in enumerate(base) if line.startswith("metrics:"))
        lines = base[:start] + [x for x in base[start + 1:] if not x.startswith("  - ")]
    path = tmp_path / "task.yaml"
    path.write_text("\n".join([*lines, patch]) + "\n")
    if message == "ok":
        assert load_task_file(path).scorer.name == "math"
        return
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("(", r"\(")):
        load_task_file(path)


def test_the_task_yaml_chooses_how_samples_reduce() -> None:
    """mean (pass@1), unbiased pass@k and majority come from the YAML's metric specs, for any scorer."""
    def sample(i: int, score: float, boxed: str) -> SampleRecord:
        return SampleRecord(key=f"t/0/{i}", doc_id="0", sample_idx=i, prompt="", raw_output="", reasoning="",
                            answer="", extracted=boxed, target="1/2", scores={"math_verify": score},
                            finish_reason="stop", truncated=False, prompt_tokens=0, output_tokens=0,
                            reasoning_tokens=0, answer_tokens=0, ttft_s=None, tpot_s=None, e2e_s=None,
                            queue_s=None, timing_scope="none")

    scorer = make_scorer(load_task_spec("math500").scorer)
    try:
        # \frac12, \dfrac{1}{2} and 0.5 are one answer by math-verify: it outvotes two 3s.
        docs = [sample(0, 0, "3"), sample(1, 1, "\\frac12"), sample(2, 0, "3"), sample(3, 1, "\\dfrac{1}{2}"),
                sample(4, 1, "0.5")]
        specs = [MetricSpec.model_validate(x) for x in (
            "math_verify", {"name": "maj@k", "score": "math_verify", "reduce": "majority"},
            {"name": "pass@k", "score": "math_verify", "reduce": "pass_at_k", "k": [1, 2, 10]})]
        values = document_values(specs, docs, 5, scorer)
        assert values == {"math_verify": 0.6, "maj@5": 1.0, "pass@1": pytest.approx(0.6),
                          "pass@2": pytest.approx(1 - (2 / 5) * (1 / 4))}
        assert isinstance(scorer, MathScorer)
        assert majority(["3", "3", "\\frac12", "0.5"], scorer) == 0, "a tie goes to the answer seen first"
    finally:
        scorer.close()


def test_one_tpot_rule() -> None:
    assert Timings.measured("request", 5, 0.2, 1.0).tpot_s == pytest.approx(0.2)
    assert Timings.measured("batch", 1, 0.2, 0.2).tpot_s is None
    assert Timings.measured("request", 3, None, 1.0).tpot_s is None


def _live_run(tmp_path: Path) -> Path:
    lines = [{"task": "gsm8k", "doc_id": str(i), "sample_idx": 0, "output": f"#### {i}"} for i in range(6)]
    run_dir = run_cli("--model", "tiny-qwen2", "--backend", "replay", "--replay",
                      str(write_replay(tmp_path / "r.jsonl", lines)), "--tasks", "gsm8k", "--data", "fixture",
                      "--limit", "6", "--output", str(tmp_path / "runs"))
    return run_dir


def test_reading_a_run_being_written_changes_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run_dir = _live_run(tmp_path)
    path = run_dir / "samples" / "gsm8k.jsonl"
    whole = path.read_bytes()
    lines = whole.splitlines(keepends=True)
    path.write_bytes(b"".join(lines[:4]) + lines[4][:40])  # the writer is halfway through sample 5
    live = path.read_bytes()
    from harness.report.rows import load_row

    assert len(RunDir(run_dir).load_samples("gsm8k")) == 4
    load_row(run_dir)  # owb compare's reader
    assert path.read_bytes() == live, "a reader cut the line being written"
    assert "skipped an incomplete last line" in capsys.readouterr().err
    path.write_bytes(whole)  # the writer finishes: nothing was lost
    assert len(RunDir(run_dir).load_samples("gsm8k")) == 6
    corrupt = lines[:2] + [b"{not json\n"] + lines[3:]
    path.write_bytes(b"".join(corrupt))
    with pytest.raises(DataError, match=r"gsm8k.jsonl line 3: not a valid sample"):
        RunDir(run_dir).load_samples("gsm8k")


def test_only_the_writer_repairs_a_torn_line(tmp_path: Path) -> None:
    run_dir = _live_run(tmp_path)
    path = run_dir / "samples" / "gsm8k.jsonl"
    lines = path.read_bytes().splitlines(keepends=True)
    path.write_bytes(b"".join(lines[:3]) + lines[3][:25])
    RunDir(run_dir).repair_samples("gsm8k")
    assert path.read_bytes() == b"".join(lines[:3])


def test_error_classes_tell_causes_apart(tmp_path: Path) -> None:
    from harness.config.cards import load_card
    from harness.tasks.data import load_documents

    with pytest.raises(ConfigError):
        load_card("no-such-model")
    with pytest.raises(DataError):
        load_documents(load_task_spec("gsm8k"), "local", tmp_path, None)
    record = RunRecord.model_json_schema()
    assert "invocation" in record["properties"]


@pytest.mark.parametrize("background", [False, True])
def test_generation_time_counts_what_the_engine_spent(background: bool) -> None:
    """In-thread engines: the time spent waiting on them; engines that go on generating while owb scores (vLLM's
    engine process, a server): the wall time, scoring included."""
    import time

    from harness.measure.energy import EnergyMeter
    from harness.pipeline.runner import _timed_batches

    def engine() -> Iterator[Generation]:
        for i in range(4):
            time.sleep(0.05)
            yield Generation(key=str(i), text="", prompt_tokens=1, output_tokens=1, finish_reason="stop",
                             timings=Timings())

    total = 0.0
    with EnergyMeter() as meter:
        for _batch, seconds in _timed_batches(engine(), 2, background, meter):
            total += seconds
            time.sleep(0.1)  # scoring the batch
    assert (0.3 <= total < 0.45) if background else (0.2 <= total < 0.3)
