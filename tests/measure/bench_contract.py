"""The file contract of bench.json since the load generator: vLLM's result keys and units per level, the per-request
arrays, and a scope on every level (for tests/contract.py's `check_bench`, which it replaces)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

VLLM_KEYS = {"duration", "completed", "failed", "total_input_tokens", "total_output_tokens", "request_throughput",
             "request_goodput", "output_throughput", "total_token_throughput", "input_lens", "output_lens", "ttfts",
             "itls", "latencies", "start_times", "queue_times", "errors"}
STATS = {f"{s}_{m}_ms" for s in ("mean", "median", "std", "p50", "p90", "p99") for m in ("ttft", "tpot", "e2el")}


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
