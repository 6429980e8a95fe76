"""Checks of a run directory and a bench.json against the file contract of docs/architecture.md (bench.json: vLLM's
result keys and units per level, the per-request arrays, a scope on every level)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from harness.records.lines import SUFFIXES, LinesFile

RUN_KEYS = {"schema_version", "run_id", "created_at", "model", "backend", "environment", "tasks"}
ENV_KEYS = {"python", "torch", "transformers", "vllm", "gpu", "driver", "cpu", "git_commit"}
TASK_KEYS = {"n", "metrics", "truncated_rate", "config", "perf"}
CONFIG_KEYS = {"spec_hash", "data", "prompt_hash", "generation"}
PERF_KEYS = {"wall_s", "prompt_tokens", "output_tokens", "output_tokens_per_s", "ttft_s", "tpot_s", "e2e_s"}
SAMPLE_KEYS = {"key", "doc_id", "sample_idx", "prompt_hash", "raw_output", "reasoning_span", "answer_span",
               "extracted", "target", "scores", "finish_reason", "prompt_tokens", "output_tokens", "ttft_s", "e2e_s"}
# lines written by schemas 1 and 2 (a resumed old run keeps them beside new ones)
SAMPLE_KEYS_V2 = {"key", "doc_id", "sample_idx", "prompt", "raw_output", "reasoning", "answer", "extracted",
                  "target", "scores", "finish_reason", "prompt_tokens", "output_tokens", "ttft_s", "e2e_s"}
METRICS = {"gsm8k": {"strict_match", "flexible_match", "math_verify"}, "math500": {"math_verify"}}


def check_run(run_dir: Path) -> dict[str, Any]:
    """Assert run.json and every samples file follow the contract; returns run.json."""
    record = json.loads((run_dir / "run.json").read_text())
    assert RUN_KEYS <= record.keys(), RUN_KEYS - record.keys()
    assert record["status"] == "complete"
    assert ENV_KEYS <= record["environment"].keys()
    assert {"name", "version", "args"} <= record["backend"].keys()
    for task, entry in record["tasks"].items():
        assert TASK_KEYS <= entry.keys()
        assert CONFIG_KEYS <= entry["config"].keys()
        assert PERF_KEYS <= entry["perf"].keys()
        for name in ("ttft_s", "tpot_s", "e2e_s"):
            stat = entry["perf"][name]
            assert stat is None or set(stat) == {"mean", "p50", "p90", "p99"}
        for name in METRICS.get(task, set()):
            metric = entry["metrics"][name]
            assert set(metric) == {"value", "stderr", "ci95", "score", "higher_is_better", "scale"}
            lo, hi = metric["ci95"]
            assert 0.0 <= lo <= metric["value"] <= hi <= 100.0
        samples = _lines(run_dir / "samples", f"{task}.jsonl")
        assert samples, f"no samples file for {task}"
        prompts = _lines(run_dir / "samples", f"{task}.prompts.jsonl")
        hashes = [p["prompt_hash"] for p in prompts]
        assert len(hashes) == len(set(hashes)), "a prompt was stored twice"
        named = {s["prompt_hash"] for s in samples if "prompt_hash" in s}
        assert named <= set(hashes), "a sample names a prompt that is not stored"
        assert len(samples) == entry["n_samples"]
        keys = [s["key"] for s in samples]
        assert len(keys) == len(set(keys)), "a sample was recorded twice"
        for s in samples:
            keys = SAMPLE_KEYS if "prompt_hash" in s else SAMPLE_KEYS_V2
            assert keys <= s.keys(), keys - s.keys()
            assert s["finish_reason"] in ("stop", "length")
            assert set(s["scores"]) >= METRICS.get(task, set())
    return record
VLLM_KEYS = {"duration", "completed", "failed", "total_input_tokens", "total_output_tokens", "request_throughput",
             "request_goodput", "output_throughput", "total_token_throughput", "input_lens", "output_lens", "ttfts",
             "itls", "latencies", "start_times", "queue_times", "errors"}
STATS = {f"{s}_{m}_ms" for s in ("mean", "median", "std", "p50", "p90", "p99") for m in ("ttft", "tpot", "e2el")}


def _lines(directory: Path, name: str) -> list[dict[str, Any]]:
    """The JSON lines of a file written plain, gzip or zstd (at most one of them; none: no lines)."""
    found = [directory / (name + suffix) for suffix in SUFFIXES.values() if (directory / (name + suffix)).is_file()]
    assert len(found) <= 1, found
    return [json.loads(line) for _, line in LinesFile(found[0]).lines()] if found else []


def check_bench(path: Path, input_len: int, output_len: int, levels: list[int], prompts: int) -> dict[str, Any]:
    """Assert bench.json has vLLM's figures for every level, at exactly the asked lengths; returns it."""
    record: dict[str, Any] = json.loads(path.read_text())
    assert {"schema_version", "bench_id", "model", "backend", "environment", "params", "roofline", "levels"} <= record.keys()
    assert [lvl["max_concurrency"] for lvl in record["levels"]] == levels
    for lvl in record["levels"]:
        assert VLLM_KEYS | STATS <= lvl.keys(), (VLLM_KEYS | STATS) - lvl.keys()
        assert lvl["scope"] in ("client", "engine", "batch")
        assert lvl["completed"] == prompts and lvl["failed"] == 0 and set(lvl["errors"]) == {""}
        assert lvl["total_input_tokens"] == prompts * input_len, "prompts must have exact input lengths"
        assert lvl["total_output_tokens"] == prompts * output_len, "EOS must be ignored: exact output lengths"
        assert lvl["input_lens"] == [input_len] * prompts and lvl["output_lens"] == [output_len] * prompts
        assert lvl["request_throughput"] > 0 and lvl["total_token_throughput"] > lvl["output_throughput"] > 0
        assert lvl["output_throughput"] == lvl["total_output_tokens"] / lvl["duration"]
        assert 0 < lvl["median_ttft_ms"] <= lvl["p99_ttft_ms"] and lvl["median_e2el_ms"] > 0
    roof = record["roofline"]
    if roof is None:  # a served model (openai backend)
        return record
    assert roof["memory_bandwidth_gb_s"] > 0 and roof["decode_weight_bytes"] > 0
    if 1 in levels:
        assert 0 < roof["batch1_share_of_limit"] <= 1
    else:
        assert roof["batch1_share_of_limit"] is None
    return record
