"""The viewer's fixture runs (made once per session), what the tests read straight from their JSONL files, and a
hash of every file under the run directories (to prove the viewer never writes there)."""

from __future__ import annotations

import gzip
import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import zstandard

from harness.records.store import RunDir
from tests.helpers import REPO
from tests.view.fixture_runs import Fixtures, make_runs

EXAMPLES = REPO / "results" / "examples"


@pytest.fixture(scope="session")
def small_runs(tmp_path_factory: pytest.TempPathFactory) -> Fixtures:
    """The fixture runs with a 1,200-sample generated run (the fast tier)."""
    return make_runs(tmp_path_factory.mktemp("view-small"), EXAMPLES, big_docs=300)


@pytest.fixture(scope="session")
def full_runs(tmp_path_factory: pytest.TempPathFactory) -> Fixtures:
    """The fixture runs with the 12,000-sample generated run (the browser tests)."""
    return make_runs(tmp_path_factory.mktemp("view-full"), EXAMPLES)


def jsonl(run: Path, task: str) -> list[dict[str, Any]]:
    """A task's samples as the JSONL file holds them (one dict per line; gzip or zstd decompressed), read without
    owb."""
    plain = run / "samples" / f"{task}.jsonl"
    if plain.with_name(plain.name + ".gz").is_file():
        data = gzip.decompress(plain.with_name(plain.name + ".gz").read_bytes())
    elif plain.with_name(plain.name + ".zst").is_file():
        reader = zstandard.ZstdDecompressor().stream_reader(plain.with_name(plain.name + ".zst").read_bytes(),
                                                            read_across_frames=True)
        data = reader.read()
    else:
        data = plain.read_bytes()
    return [json.loads(line) for line in data.decode().splitlines() if line.strip()]


def answer_of(line: dict[str, Any]) -> str:
    """A line's answer: its span of the raw output, or its own text (either layout)."""
    if "answer" in line:
        return str(line["answer"])
    span = line.get("answer_span")
    return line["raw_output"][span[0] : span[1]] if span else line.get("answer_text") or ""


def reasoning_of(line: dict[str, Any]) -> str:
    """A line's reasoning, as `answer_of`."""
    if "reasoning" in line:
        return str(line["reasoning"])
    span = line.get("reasoning_span", [0, 0])
    return line["raw_output"][span[0] : span[1]] if span else line.get("reasoning_text") or ""


def expected_counts(run: Path, task: str) -> dict[str, int]:
    """What each filter should count, computed from the JSONL and run.json alone."""
    record = RunDir(run).read_run().tasks[task]  # through owb: schema 1 derives the metric's score descriptor
    score = record.metrics[record.primary_metric or ""].score
    lines = jsonl(run, task)
    by_doc: dict[str, list[dict[str, Any]]] = {}
    for line in lines:
        by_doc.setdefault(line["doc_id"], []).append(line)
    disagree = {d for d, group in by_doc.items() if len(group) > 1 and (
        len({json.dumps(g["extracted"], sort_keys=True) for g in group}) > 1
        or len({g["scores"][score] for g in group}) > 1)}
    return {
        "all": len(lines),
        "failed": sum(line["scores"][score] < 1 for line in lines),
        "truncated": sum(line["truncated"] for line in lines),
        "extraction_failed": sum(line.get("extraction_failed") is True for line in lines),
        "open_think": sum(line["truncated"] and "</think>" not in line["raw_output"] and not answer_of(line).strip()
                          for line in lines),
        "code_error": sum(line.get("status") not in (None, "passed") for line in lines),
        "disagree": sum(line["doc_id"] in disagree for line in lines),
    }


def tree_hash(*roots: Path) -> dict[str, tuple[str, int]]:
    """Every file under the roots: its sha256 and mtime."""
    found = {}
    for root in roots:
        for path in sorted(root.rglob("*")):
            if path.is_file() and not path.is_symlink():
                found[str(path)] = (hashlib.sha256(path.read_bytes()).hexdigest(), path.stat().st_mtime_ns)
    return found


@pytest.fixture
def unchanged(small_runs: Fixtures) -> Iterator[None]:
    """Fails the test when any file under the run directories changed while it ran."""
    before = tree_hash(small_runs.runs, small_runs.examples)
    yield
    assert tree_hash(small_runs.runs, small_runs.examples) == before
