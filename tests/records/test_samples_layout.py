"""Samples store every text once: the raw output once with the reasoning and answer as spans of it, each prompt once
per task by hash; files may be compressed and read the same everywhere; old layouts keep reading, resuming,
rescoring, comparing and checking; a kill during a compressed write loses nothing already flushed."""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from harness.cli import app
from harness.config.cards import ModelCard, load_card
from harness.records.lines import LinesFile
from harness.records.sample import SampleRecord, parse_sample, prompt_hash
from harness.records.store import RunDir
from harness.scoring.reasoning import split_output
from tests.contract import check_run
from tests.helpers import REPO, FakeBackend, owb, run_cli, samples

V2 = REPO / "tests" / "fixtures" / "v2"
PIECES = ["<think>", "</think>", "<answer>", "</answer>", "\n", "\n\n", "  ", "\t", "x", "é", "😀", "\u2003", "\r\n",
          "def f():\n    return 1", "\\boxed{1}", "answer", "ſ"]


def _reference_split(text: str, card: ModelCard, prompt: str) -> tuple[str, str, bool]:
    """The split as owb computed it before spans (text slicing and str methods), the reference for the spans."""
    tags, reasoning, answer, unclosed = card.reasoning, "", text, False
    if tags.think_end is not None:
        end = text.rfind(tags.think_end)
        if end >= 0:
            reasoning, answer = text[:end], text[end + len(tags.think_end):]
        elif tags.think_start is not None and (prompt.rstrip().endswith(tags.think_start) or tags.think_start in text):
            reasoning, answer, unclosed = text, "", True
        if tags.think_start and reasoning.lstrip().startswith(tags.think_start):
            reasoning = reasoning.lstrip()[len(tags.think_start):]
    if tags.answer_start is not None and not unclosed:
        begin = answer.rfind(tags.answer_start)
        if begin >= 0:
            answer = answer[begin + len(tags.answer_start):]
            if tags.answer_end is not None and (stop := answer.find(tags.answer_end)) >= 0:
                answer = answer[:stop]
    lines = answer.rstrip().split("\n")
    while lines and not lines[0].strip():
        lines.pop(0)
    return reasoning.strip(), "\n".join(lines), unclosed


def _record(raw: str, prompt: str, **fields: object) -> SampleRecord:
    return SampleRecord.model_validate({
        "key": "t/0/0", "doc_id": "0", "sample_idx": 0, "prompt": prompt, "raw_output": raw, "extracted": None,
        "target": "t", "scores": {"s": 1.0}, "finish_reason": "stop", "truncated": False, "prompt_tokens": 1,
        "output_tokens": 1, "reasoning_tokens": 0, "answer_tokens": 1, "ttft_s": None, "tpot_s": None,
        "e2e_s": None, "queue_s": None, "timing_scope": "none", **fields})


def test_reasoning_and_answer_are_recovered_exactly_from_spans() -> None:
    """On random outputs (tags, whitespace, unicode) for every card: the spans give exactly the texts the text-based
    split gave, and a sample line read back gives the raw output, reasoning, answer and prompt it was written with."""
    cards = [load_card(p.stem) for p in (REPO / "model_cards").glob("*.yaml")]
    rng = random.Random(0)
    for _ in range(3000):
        text = "".join(rng.choice(PIECES) for _ in range(rng.randint(0, 14)))
        card, prompt = rng.choice(cards), rng.choice(["", "p<think>\n", "q é"])
        split = split_output(text, card, prompt)
        assert (split.reasoning, split.answer, split.unclosed) == _reference_split(text, card, prompt)
        record = _record(text, prompt, reasoning_span=split.reasoning_span, answer_span=split.answer_span)
        line = record.to_line(prompt_hash(prompt)).encode()
        back = parse_sample(line, {prompt_hash(prompt): prompt}.__getitem__)
        assert (back.raw_output, back.reasoning, back.answer, back.prompt) == (text, split.reasoning, split.answer,
                                                                                prompt)
        assert line.count(json.dumps(text, ensure_ascii=False)[1:-1].encode()) >= 1
        assert b'"prompt":' not in line and b'"reasoning":' not in line


def test_an_answer_that_is_not_a_slice_is_kept_as_text() -> None:
    record = SampleRecord.with_texts("why", "42", **_record("because 41", "p").model_dump(
        exclude={"reasoning_span", "reasoning_text", "answer_span", "answer_text"}))
    assert (record.reasoning, record.answer, record.answer_span, record.answer_text) == ("why", "42", None, "42")
    back = parse_sample(record.to_line("h").encode(), lambda h: "p")
    assert (back.reasoning, back.answer) == ("why", "42")


def _fake_run(tmp_path: Path, name: str, *args: str) -> Path:
    return run_cli("--model", "tiny-llama", "--backend", "fake", "--tasks", "gsm8k,humaneval", "--data", "fixture",
                   "--samples", "3", "--backend-arg", "answer=I think </think> #### 42", "--output",
                   str(tmp_path / name), *args)


@pytest.mark.slow
@pytest.mark.parametrize("compress", ["gzip", "zstd"])
def test_compressed_samples_read_the_same_everywhere(fake_backend: type[FakeBackend], tmp_path: Path,
                                                     compress: str) -> None:
    plain, packed = _fake_run(tmp_path, "plain"), _fake_run(tmp_path, "packed", "--compress", compress)
    suffix = {"gzip": ".gz", "zstd": ".zst"}[compress]
    assert (packed / "samples" / f"gsm8k.jsonl{suffix}").is_file()
    assert not (packed / "samples" / "gsm8k.jsonl").exists()
    check_run(packed)
    strip = ("ttft_s", "tpot_s", "e2e_s", "queue_s", "exec_s")
    for task in ("gsm8k", "humaneval"):
        assert [{k: v for k, v in s.items() if k not in strip} for s in samples(packed, task)] == \
            [{k: v for k, v in s.items() if k not in strip} for s in samples(plain, task)]
    runner = CliRunner()
    assert runner.invoke(app, ["rescore", str(packed)], catch_exceptions=False).exit_code == 0
    assert (packed / "samples" / f"gsm8k.jsonl{suffix}").is_file() and samples(packed, "gsm8k")
    result = runner.invoke(app, ["check", "--baseline", str(plain), "--candidate", str(packed)],
                           catch_exceptions=False)
    assert result.exit_code == 0 and "PASS" in result.output, result.output


def test_each_text_is_stored_once(fake_backend: type[FakeBackend], tmp_path: Path) -> None:
    """With long outputs the run directory is about the size of the output text: no second copy of an output, and
    each document's prompt once, not once per sample."""
    answer = "reasoning " * 1200 + "</think> " + "words " * 1200 + "#### 42"  # about 20 KB, as a reasoning trace
    run_dir = run_cli("--model", "tiny-llama", "--backend", "fake", "--tasks", "gsm8k", "--data", "fixture",
                      "--samples", "8", "--backend-arg", f"answer={answer}", "--max-new-tokens", "5000",
                      "--output", str(tmp_path))
    stored = samples(run_dir, "gsm8k")
    text = sum(len(s["raw_output"].encode()) for s in stored)
    on_disk = sum(p.stat().st_size for p in (run_dir / "samples").iterdir())
    assert on_disk <= 1.1 * text, (on_disk, text)
    prompts = LinesFile(run_dir / "samples" / "gsm8k.prompts.jsonl")
    assert len(list(prompts.lines())) == len({s["doc_id"] for s in stored})


def _copy(source: Path, tmp_path: Path) -> Path:
    target = tmp_path / source.name
    shutil.copytree(source, target)
    for run_json in target.rglob("run.json"):
        record = json.loads(run_json.read_text())
        record["invocation"]["backend_args"]["replay"] = str(V2 / "replayed.jsonl")
        record["invocation"]["output"] = str(tmp_path)
        run_json.write_text(json.dumps(record))
    return target


def test_a_schema_2_run_reads_rescores_compares_and_checks(tmp_path: Path) -> None:
    """A run written by schema 2 (tests/fixtures/v2: the prompt, reasoning and answer in every line) reads with the
    same texts, rescores to the same metrics (its samples rewritten in the current layout) and compares and checks
    against a run replayed today from the same outputs."""
    old = _copy(V2 / "replayed", tmp_path)
    before = json.loads((old / "run.json").read_text())
    texts = {s["key"]: (s["prompt"], s["raw_output"], s["reasoning"], s["answer"])
             for line in (old / "samples" / "gsm8k.jsonl").read_text().splitlines() for s in [json.loads(line)]}
    assert {s["key"]: (s["prompt"], s["raw_output"], s["reasoning"], s["answer"])
            for s in samples(old, "gsm8k")} == texts
    runner = CliRunner()
    assert runner.invoke(app, ["rescore", str(old)], catch_exceptions=False).exit_code == 0
    after = json.loads((old / "run.json").read_text())
    assert after["upgraded_from"] == 2
    for task, entry in before["tasks"].items():
        assert {m: v["value"] for m, v in after["tasks"][task]["metrics"].items()} == \
            {m: v["value"] for m, v in entry["metrics"].items()}
    assert b'"prompt_hash":' in (old / "samples" / "gsm8k.jsonl").read_bytes()
    assert {s["key"]: (s["prompt"], s["raw_output"], s["reasoning"], s["answer"])
            for s in samples(old, "gsm8k")} == texts
    new = run_cli("--model", "tiny-qwen2", "--backend", "replay", "--replay", str(V2 / "replayed.jsonl"),
                  "--tasks", "gsm8k,math500,humaneval,scitldr", "--data", "fixture", "--samples", "3",
                  "--output", str(tmp_path / "new"))
    result = runner.invoke(app, ["check", "--baseline", str(V2 / "replayed"), "--candidate", str(new)],
                           catch_exceptions=False)
    assert result.exit_code == 0 and "PASS" in result.output, result.output
    result = runner.invoke(app, ["compare", "--format", "md", str(V2 / "replayed"), str(new)], catch_exceptions=False)
    assert result.exit_code == 0 and result.output.count("tiny-qwen2") >= 2


def test_a_schema_2_run_resumes(tmp_path: Path) -> None:
    """A schema-2 run killed after 5 samples resumes: the new samples are appended in the current layout beside the
    old lines, and the metrics equal the uninterrupted run's."""
    run_dir = _copy(V2 / "partial", tmp_path)
    assert run_cli("--resume", str(run_dir)) == run_dir
    check_run(run_dir)
    lines = (run_dir / "samples" / "gsm8k.jsonl").read_bytes().splitlines()
    assert sum(b'"prompt_hash":' in line for line in lines) == len(lines) - 5
    expected = json.loads((V2 / "partial.expected.json").read_text())["tasks"]["gsm8k"]
    got = json.loads((run_dir / "run.json").read_text())["tasks"]["gsm8k"]
    assert (got["n"], got["n_samples"]) == (expected["n"], expected["n_samples"])
    assert {m: v["value"] for m, v in got["metrics"].items()} == {m: v["value"] for m, v in expected["metrics"].items()}


APPENDER = """
import sys
from pathlib import Path
from harness.records.lines import LinesFile
f = LinesFile(Path(sys.argv[1]))
for i in range(100000):
    f.append([f'{{"chunk": {i}, "n": {j}, "pad": "{"x" * 2000}"}}' for j in range(50)])
"""


@pytest.mark.slow
@pytest.mark.parametrize("suffix", [".gz", ".zst"])
def test_kill_9_during_a_compressed_write_loses_nothing_flushed(tmp_path: Path, suffix: str) -> None:
    """A writer appending compressed chunks is killed with SIGKILL at random moments: every chunk it flushed reads
    back whole, a torn last chunk is skipped by readers and cut off by the next writer, which appends after it."""
    path = tmp_path / f"s.jsonl{suffix}"
    for round_ in range(3):
        proc = subprocess.Popen([sys.executable, "-c", APPENDER, str(path)], cwd=REPO)
        time.sleep(0.3 + random.random() * 0.5)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        file = LinesFile(path)
        rows = [json.loads(line) for _, line in file.lines()]
        assert rows and len(rows) % 50 == 0, "a chunk is read whole or not at all"
        chunks = [rows[i : i + 50] for i in range(0, len(rows), 50)]
        assert all([r["n"] for r in c] == list(range(50)) and len({r["chunk"] for r in c}) == 1 for c in chunks)
        ids = [c[0]["chunk"] for c in chunks]
        marks = [i for i, chunk in enumerate(ids) if chunk == -1]
        assert len(marks) == round_  # each writer's chunks run 0, 1, ... from the marker before it
        for start, end in zip([-1, *marks], [*marks, len(ids)], strict=True):
            assert ids[start + 1 : end] == list(range(end - start - 1)), ids[:50]
        file.repair()
        assert not file.torn() and [json.loads(line) for _, line in file.lines()] == rows
        file.append([f'{{"chunk": -1, "n": {j}, "pad": ""}}' for j in range(50)])  # the next writer's marker chunk
        assert json.loads(list(file.lines())[-1][1])["chunk"] == -1, round_


@pytest.mark.slow
def test_a_compressed_run_killed_and_resumed_is_complete(tmp_path: Path) -> None:
    """`owb run --compress zstd` killed with SIGKILL midway, then --resume: every sample once, readable."""
    out = tmp_path / "runs"
    exe = Path(sys.executable).with_name("owb")
    proc = subprocess.Popen([str(exe), "run", "--model", "tiny-qwen2", "--tasks", "gsm8k", "--data", "fixture",
                             "--samples", "4", "--batch-size", "2", "--compress", "zstd", "--output", str(out)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 300
    while time.time() < deadline:
        found = list(out.glob("*/samples/gsm8k.jsonl.zst"))
        if found and len(list(RunDir(found[0].parents[1]).samples("gsm8k").stats())) >= 6:
            break
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    run_dir = found[0].parents[1]
    result = owb("run", "--resume", str(run_dir))
    assert result.returncode == 0, result.stderr
    record = check_run(run_dir)
    assert record["tasks"]["gsm8k"]["n_samples"] == 4 * record["tasks"]["gsm8k"]["n"]
