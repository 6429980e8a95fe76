"""`owb bench`: exact lengths with EOS ignored, a concurrency sweep, random weights of a card's shape."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.contract import check_bench
from tests.helpers import owb

pytestmark = pytest.mark.slow  # real engines or subprocesses: `make test` runs these, `make test-fast` does not

SMALL_SHAPE = """id: small-shape
family: qwen2.5
architecture: qwen2
hf_repo: example/not-downloaded
dtype: float32
shape: {hidden_size: 128, num_hidden_layers: 2, num_attention_heads: 2, num_key_value_heads: 1,
        intermediate_size: 256, vocab_size: 5000, max_position_embeddings: 1024, tie_word_embeddings: false}
"""


def test_bench_through_transformers(tmp_path: Path) -> None:
    result = owb("bench", "--model", "tiny-qwen2", "--backend", "hf", "--input-len", "24", "--output-len", "12",
                 "--concurrency", "1,4", "--num-prompts", "8", "--output", str(tmp_path))
    assert result.returncode == 0, result.stderr
    record = check_bench(next(tmp_path.glob("*/bench.json")), 24, 12, [1, 4], 8)
    assert record["backend"]["name"] == "hf" and record["params"]["ignore_eos"] is True
    assert "concurrency" in result.stdout and "batch-1 decode limit" in result.stdout


def test_bench_through_the_transformers_fast_path(tmp_path: Path) -> None:
    """Batch 1 by the compiled decode loop, 4 in flight by continuous batching: per-request timings."""
    result = owb("bench", "--model", "tiny-qwen2", "--backend", "hf", "--fast-path", "continuous", "--input-len", "20",
                 "--output-len", "10", "--concurrency", "1,4", "--num-prompts", "8", "--output", str(tmp_path))
    assert result.returncode == 0, result.stderr
    record = check_bench(next(tmp_path.glob("*/bench.json")), 20, 10, [1, 4], 8)
    assert "continuous batching" in record["backend"]["args"]["fast_path"]
    one, four = record["levels"]
    assert one["timing_scope"] == four["timing_scope"] == "request"
    assert four["itl_s"] is not None and 0 < four["itl_s"]["p50"] <= four["e2e_s"]["p50"]
    assert four["ttft_s"]["mean"] < four["e2e_s"]["mean"]


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


def test_bench_errors_exit_2(tmp_path: Path) -> None:
    result = owb("bench", "--model", "tiny-qwen2", "--random-weights", "--output", str(tmp_path))
    assert result.returncode == 2 and "has no `shape`" in result.stderr
    result = owb("bench", "--model", "tiny-qwen2", "--concurrency", "1,x", "--output", str(tmp_path))
    assert result.returncode == 2 and "--concurrency takes" in result.stderr
