"""`owb bench`: vLLM's load model and figures against a simulated server (semaphore, rate, goodput, failures, a
run's workload, the sweep), the level arithmetic against vLLM's own `calculate_metrics`, and in-process engines in
waves (exact lengths with EOS ignored, random weights of a card's shape, the roofline)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from harness.engines.load import Latency, LoadShape, Slo, arrival_delays
from harness.measure.load import LevelSpec, Measured, attainment, level_record
from harness.measure.sweep import bisect
from harness.records.store import RunDir
from tests.contract import check_bench
from tests.helpers import FakeBackend, owb, run_cli, run_main
from tests.measure.fake_server import fake_server

SMALL_SHAPE = """id: small-shape
family: qwen2.5
architecture: qwen2
hf_repo: example/not-downloaded
dtype: float32
shape: {hidden_size: 128, num_hidden_layers: 2, num_attention_heads: 2, num_key_value_heads: 1,
        intermediate_size: 256, vocab_size: 5000, max_position_embeddings: 1024, tie_word_embeddings: false}
"""


def _served(url: str, tmp_path: Path, *args: str) -> dict:
    path = run_cli("--model", "tiny-qwen2", "--backend", "openai", "--base-url", url, "--input-len", "16",
                   "--output-len", "6", "--num-prompts", "8", "--output", str(tmp_path), *args, command="bench")
    return json.loads(path.read_text())


def test_served_levels_have_vllms_figures_and_the_requests_sent(tmp_path: Path) -> None:
    """Against a simulated server: exact token-id prompts, EOS ignored, greedy, usage-based counts, client scope,
    the client queue time behind the semaphore, goodput against objectives, one level per concurrency."""
    with fake_server(slots=8, token_s=0.002) as (url, server):
        record = _served(url, tmp_path, "--max-concurrency", "1,4", "--num-warmups", "2", "--goodput",
                         "ttft:5000 e2el:10000")
    check_bench(next(tmp_path.glob("*/bench.json")), 16, 6, [1, 4], 8)
    sent = server.payloads[-1]
    assert sent["ignore_eos"] is True and sent["temperature"] == 0 and sent["stream_options"] == {"include_usage": True}
    assert len(sent["prompt"]) == 16 and all(isinstance(t, int) for t in sent["prompt"])
    assert len(server.payloads) == 1 + 2 * (2 + 8)  # one engine warm-up, then per level 2 warm-ups and 8 requests
    one, four = record["levels"]
    assert one["scope"] == four["scope"] == "client" and one["mode"] == "load" and one["request_rate"] == "inf"
    assert one["request_goodput"] == pytest.approx(one["request_throughput"])  # generous objectives: all met
    assert set(four["output_len_sources"]) == {"usage"} and all(len(gaps) == 5 for gaps in four["itls"])
    assert four["median_client_queue_time_ms"] >= 0 and max(four["queue_times"]) > 0  # 8 requests, 4 slots
    assert record["params"]["goodput"] == "ttft:5000 e2el:10000" and record["prefix_caching"] is None
    assert record["metered_gpus"] == [] and all(lvl["energy"] is None for lvl in record["levels"])


def test_a_server_without_usage_is_recounted_and_a_rate_is_kept(tmp_path: Path) -> None:
    with fake_server(usage=False) as (url, _):
        record = _served(url, tmp_path, "--request-rate", "50", "--burstiness", "2", "--num-warmups", "0")
    [level] = record["levels"]
    assert level["request_rate"] == 50 and level["burstiness"] == 2 and level["max_concurrency"] is None
    assert set(level["output_len_sources"]) == {"retokenized"} and level["total_output_tokens"] > 0
    assert level["duration"] >= 8 / 50 * 0.9  # the last arrival is at N/rate


def test_from_run_replays_a_runs_prompts_and_output_lengths(fake_backend: type[FakeBackend], tmp_path: Path) -> None:
    run_dir = run_cli("--model", "tiny-qwen2", "--backend", "fake", "--tasks", "gsm8k", "--data", "fixture",
                      "--limit", "3", "--output", str(tmp_path / "runs"))
    with fake_server() as (url, server):
        record = _served(url, tmp_path / "bench", "--from-run", str(run_dir), "--max-concurrency", "2",
                         "--num-warmups", "0")  # 8 asked, the run has 3
    replayed = server.payloads[-3:]
    samples = list(RunDir(run_dir).samples("gsm8k").records())
    assert sorted((p["prompt"], p["max_tokens"]) for p in replayed) == sorted((s.prompt, s.output_tokens)
                                                                              for s in samples)
    assert record["params"]["from_run"] == str(run_dir) and record["params"]["input_len"] is None
    assert record["levels"][0]["completed"] == 3 and record["roofline"] is None


@pytest.mark.slow
def test_the_concurrency_sweep_finds_a_simulated_servers_capacity(tmp_path: Path) -> None:
    """A server that decodes 3 requests at once: with up to 3 in flight no request waits (TTFT ~ one token); a 4th
    waits a whole request (10 tokens x 20 ms). The bisection over concurrency 1..8 lands on 3."""
    with fake_server(slots=3, token_s=0.02) as (url, _):
        record = _served(url, tmp_path, "--output-len", "10", "--num-prompts", "9", "--num-warmups", "0",
                         "--max-concurrency", "8", "--goodput", "ttft:120", "--sweep", "concurrency",
                         "--sweep-repeats", "1")
    sweep = record["sweep"]
    assert sweep["over"] == "max_concurrency" and sweep["best"] == 3
    assert [p["value"] for p in sweep["probes"]][:2] == [8, 1] and len(record["levels"]) == len(sweep["probes"])


def _queue_probe(capacity: float, seed: int) -> object:
    """A simulated server of `capacity` requests/s (one at a time, fixed service time) fed by vLLM's gamma
    arrivals: TTFT = wait in the queue + one service time (Lindley's recursion); the objective is 5 service times."""
    rng = np.random.default_rng(seed)
    service = 1 / capacity

    def probe(rate: float) -> float:
        arrivals = arrival_delays(400, rate, 1.0, rng)
        free, met = 0.0, 0
        for t in arrivals:
            start = max(t, free)
            free = start + service
            met += Slo(ttft=5000 * service).met(free - t, 0.0, free - t)
        return met / len(arrivals)

    return probe


@pytest.mark.parametrize("capacity", [2.0, 25.0])
def test_the_rate_sweep_lands_near_a_known_capacity(capacity: float) -> None:
    """Below capacity an M/D/1 queue's waits stay short; above it they grow without bound: the highest rate with 90%
    of requests within 5 service times sits just under the capacity (about 84% of it for Poisson arrivals)."""
    result = bisect(_queue_probe(capacity, 0), "request_rate", capacity / 8, 2 * capacity, "ttft:x", target=0.9,
                    repeats=3, steps=8)
    assert result.best is not None and 0.75 * capacity <= result.best <= 1.0 * capacity
    assert result.probes[0].value == 2 * capacity and not result.probes[0].met and result.probes[1].met
    assert all(len(p.attainment) == 3 for p in result.probes)


def test_sweep_bounds() -> None:
    assert bisect(lambda v: 1.0, "max_concurrency", 1, 64, "ttft:1").best == 64  # met at the top: at least that
    assert bisect(lambda v: 0.0, "max_concurrency", 1, 64, "ttft:1").best is None  # not even one in flight
    stepped = bisect(lambda v: 1.0 if v <= 5 else 0.0, "max_concurrency", 1, 64, "ttft:1", repeats=1, steps=10)
    assert stepped.best == 5 and all(float(p.value).is_integer() for p in stepped.probes)


def _measured(ttft: float, e2el: float, n: int, error: str = "") -> Measured:
    gaps = [] if error or n < 2 else [(e2el - ttft) / (n - 1)] * (n - 1)
    return Measured(4, 0 if error else n, "usage", None if error else ttft, None, gaps, None if error else e2el, 0.0,
                    0.0, error)


def test_level_arithmetic_failures_and_goodput() -> None:
    """Failed requests stay in the arrays and the duration, out of every statistic; goodput counts completed
    requests meeting every objective over the duration."""
    requests = [_measured(0.1, 0.5, 5), _measured(0.3, 0.7, 5), _measured(0.1, 0.1, 1), _measured(0, 0, 0, "HTTP 500")]
    spec = LevelSpec("load", LoadShape(max_concurrency=2), "client", (50, 99.5), Slo(ttft=200))
    level = level_record(spec, requests, duration=2.0)
    assert (level.completed, level.failed, level.total_output_tokens, level.total_input_tokens) == (3, 1, 11, 12)
    assert level.request_throughput == 1.5 and level.output_throughput == 5.5 and level.request_goodput == 1.0
    assert level.stat("mean_ttft_ms") == pytest.approx(500 / 3) and level.stat("p99.5_ttft_ms") is not None
    assert level.stat("median_tpot_ms") == pytest.approx(100)  # one-token outputs have no TPOT
    assert level.stat("median_itl_ms") == pytest.approx(100) and level.errors == ["", "", "", "HTTP 500"]
    assert attainment(level, Slo(ttft=200)) == 0.5  # 2 of 4 sent
    assert Latency(0.1, 0.5, 5).tpot_s == pytest.approx(0.1)


@pytest.mark.slow
def test_level_arithmetic_is_vllms_calculate_metrics() -> None:
    """The same per-request outputs through vLLM's own calculate_metrics give the same aggregates and statistics."""
    pytest.importorskip("vllm")
    from vllm.benchmarks.lib.endpoint_request_func import RequestFuncOutput
    from vllm.benchmarks.serve import calculate_metrics

    rng = np.random.default_rng(3)
    requests, outputs = [], []
    for i in range(40):
        n, ttft = int(rng.integers(1, 30)), float(rng.uniform(0.01, 0.5))
        itl = [float(x) for x in rng.uniform(0.001, 0.02, n - 1)]
        failed = i % 13 == 0
        requests.append(Measured(64, 0 if failed else n, "usage", None if failed else ttft, None, [] if failed else itl,
                                 None if failed else ttft + sum(itl), 0.0, 0.0, "x" if failed else ""))
        outputs.append(RequestFuncOutput(success=not failed, output_tokens=n, ttft=ttft, itl=itl,
                                         latency=ttft + sum(itl), prompt_len=64, start_time=float(i)))
    spec = LevelSpec("load", LoadShape(), "client", (50, 90, 99), Slo(ttft=300, tpot=15))
    ours = level_record(spec, requests, 10.0)
    theirs, _ = calculate_metrics([], outputs, 10.0, None, [50, 90, 99], {"ttft": 300, "tpot": 15})
    for key in ("completed", "failed", "request_throughput", "request_goodput", "output_throughput",
                "total_token_throughput"):
        assert getattr(ours, key) == pytest.approx(getattr(theirs, key)), key
    assert ours.total_output_tokens == theirs.total_output
    for metric in ("ttft", "tpot", "itl", "e2el"):
        for stat in ("mean", "median", "std"):
            assert ours.stat(f"{stat}_{metric}_ms") == pytest.approx(getattr(theirs, f"{stat}_{metric}_ms"))
        for p, value in getattr(theirs, f"percentiles_{metric}_ms"):
            assert ours.stat(f"p{int(p)}_{metric}_ms") == pytest.approx(value)


def test_bench_through_an_in_process_engine_runs_waves(fake_backend: type[FakeBackend], tmp_path: Path) -> None:
    path = run_cli("--model", "tiny-qwen2", "--backend", "fake", "--input-len", "6", "--output-len", "4",
                   "--max-concurrency", "1,2", "--num-prompts", "4", "--gpu-hourly-usd", "3.6", "--output",
                   str(tmp_path), command="bench")
    record = check_bench(path, 6, 4, [1, 2], 4)
    assert {lvl["mode"] for lvl in record["levels"]} == {"waves"} and record["prefix_caching"] is False
    assert record["levels"][0]["scope"] == "engine" and fake_backend.opened[-1].batch_size == 2
    cost = record["cost"]
    assert cost["gpus"] == 1 and cost["startup_usd"] == pytest.approx(cost["startup_s"] / 3600 * 3.6)
    assert record["levels"][0]["usd"] == pytest.approx(record["levels"][0]["duration"] / 3600 * 3.6)


def test_bench_errors_exit_2(tmp_path: Path) -> None:
    result = run_main("bench", "--model", "tiny-qwen2", "--random-weights", "--output", str(tmp_path))
    assert result.returncode == 2 and "has no `shape`" in result.stderr
    for flags, message in ((("--concurrency", "1,x"), "--max-concurrency takes"),
                           (("--request-rate", "2"), "need a served model"),
                           (("--sweep", "rate"), "give --goodput"),
                           (("--goodput", "ttft=5"), "--goodput: goodput takes KEY:MS"),
                           (("--waves", "--request-rate", "3"), "--waves runs batches")):
        result = run_main("bench", "--model", "tiny-qwen2", *flags, "--output", str(tmp_path))
        assert result.returncode == 2 and message in result.stderr, (flags, result.stderr)


@pytest.mark.slow
def test_bench_through_transformers(tmp_path: Path) -> None:
    result = owb("bench", "--model", "tiny-qwen2", "--backend", "hf", "--input-len", "24", "--output-len", "12",
                 "--concurrency", "1,4", "--num-prompts", "8", "--output", str(tmp_path))
    assert result.returncode == 0, result.stderr
    record = check_bench(next(tmp_path.glob("*/bench.json")), 24, 12, [1, 4], 8)
    assert record["backend"]["name"] == "hf" and record["params"]["ignore_eos"] is True
    assert "waves of 4" in result.stdout and "batch-1 decode limit" in result.stdout
    assert record["roofline"]["weight_bytes_source"] == "checkpoint" and record["roofline"]["tensor_parallel_size"] == 1


@pytest.mark.slow
def test_bench_through_the_transformers_fast_path(tmp_path: Path) -> None:
    """Batch 1 by the compiled decode loop, 4 in flight by continuous batching: per-request timings."""
    result = owb("bench", "--model", "tiny-qwen2", "--backend", "hf", "--fast-path", "continuous", "--input-len", "20",
                 "--output-len", "10", "--concurrency", "1,4", "--num-prompts", "8", "--output", str(tmp_path))
    assert result.returncode == 0, result.stderr
    record = check_bench(next(tmp_path.glob("*/bench.json")), 20, 10, [1, 4], 8)
    assert "continuous batching" in record["backend"]["args"]["fast_path"]
    one, four = record["levels"]
    assert one["scope"] == four["scope"] == "engine"
    assert four["median_itl_ms"] is not None and 0 < four["median_itl_ms"] <= four["median_e2el_ms"]
    assert four["mean_ttft_ms"] < four["mean_e2el_ms"]


@pytest.mark.slow
def test_random_weights_of_a_card_shape(tmp_path: Path) -> None:
    card = tmp_path / "small-shape.yaml"
    card.write_text(SMALL_SHAPE)
    result = owb("bench", "--model", str(card), "--backend", "hf", "--random-weights", "--input-len", "16",
                 "--output-len", "8", "--concurrency", "2", "--num-prompts", "4", "--output", str(tmp_path / "b"))
    assert result.returncode == 0, result.stderr
    record = check_bench(next((tmp_path / "b").glob("*/bench.json")), 16, 8, [2], 4)
    assert record["model"]["random_weights"] is True and "/shapes/small-shape-" in record["model"]["path"]
    # 2 layers of (4 attention + 3 MLP matrices + norms) and an untied LM head; the input embedding is not read.
    assert record["roofline"]["decode_weight_bytes"] < 5000 * 128 * 4 * 2
