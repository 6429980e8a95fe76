"""The parallel-aware roofline against its closed form: weight bytes from a checkpoint's real dtypes (bf16, f32,
packed int, routed experts at top-k), the KV cache at its own dtype, one tensor-parallel rank's share, the slowest
GPU's bandwidth; a measured decode above the limit is refused."""

from __future__ import annotations

import json
import math
import struct
from pathlib import Path

import pytest

from harness.engines.load import LoadShape
from harness.measure.load import LevelSpec, Measured, level_record
from harness.measure.roofline import RooflineError, decode_bytes, decode_read, rank_bytes, roofline
from harness.records.base import BackendInfo
from harness.records.bench import BenchLevel

CONFIG = {"model_type": "qwen2", "architectures": ["Qwen2ForCausalLM"], "hidden_size": 64, "num_hidden_layers": 2,
          "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 16, "intermediate_size": 128,
          "vocab_size": 100, "tie_word_embeddings": False, "num_experts": 8, "num_experts_per_tok": 2}
TENSORS = {  # name: (dtype, shape, bytes per element)
    "model.embed_tokens.weight": ("BF16", [100, 64], 2),  # untied input embedding: one row read per token
    "lm_head.weight": ("BF16", [100, 64], 2),
    "model.layers.0.self_attn.q_proj.weight": ("BF16", [64, 64], 2),
    "model.layers.0.self_attn.k_proj.qweight": ("I32", [8, 32], 4),  # a packed 4-bit tensor: its real bytes
    "model.layers.0.mlp.experts.gate_up_proj": ("BF16", [8, 64, 32], 2),  # 8 routed experts, 2 per token
    "model.norm.weight": ("F32", [64], 4),
}
EMBED_ROW = 64 * 2
WEIGHTS = EMBED_ROW + 100 * 64 * 2 + 64 * 64 * 2 + 8 * 32 * 4 + 8 * 64 * 32 * 2 * 2 // 8 + 64 * 4
KV_PER_TOKEN_FP8 = 2 * 2 * 2 * 16 * 1  # layers x (K, V) x KV heads x head dim x 1 byte


def _checkpoint(root: Path) -> Path:
    """config.json and a safetensors file (header + zero bytes) holding TENSORS."""
    header, offset = {}, 0
    for name, (dtype, shape, size) in TENSORS.items():
        end = offset + math.prod(shape) * size
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, end]}
        offset = end
    blob = json.dumps(header).encode()
    (root / "model.safetensors").write_bytes(struct.pack("<Q", len(blob)) + blob + bytes(offset))
    (root / "config.json").write_text(json.dumps(CONFIG))
    return root


def test_decode_bytes_read_the_checkpoints_dtypes(tmp_path: Path) -> None:
    read = decode_read(_checkpoint(tmp_path), dtype_bytes=2, kv_dtype_bytes=1)
    assert read.source == "checkpoint" and read.weights == WEIGHTS
    assert read.by_dtype == {"BF16": WEIGHTS - 8 * 32 * 4 - 64 * 4, "I32": 8 * 32 * 4, "F32": 64 * 4}
    assert read.kv_per_token == KV_PER_TOKEN_FP8 and read.kv_heads == 2
    assert decode_bytes(tmp_path, 2, 10) == (WEIGHTS, KV_PER_TOKEN_FP8 * 2 * 10)  # one device, KV at the weights' dtype


@pytest.mark.parametrize(("tp", "kv_heads_per_rank"), [(1, 2), (2, 1), (4, 1)])
def test_a_rank_reads_its_share(tmp_path: Path, tp: int, kv_heads_per_rank: int) -> None:
    """1/tp of the weights; KV heads split over ranks, one whole head per rank when there are fewer heads."""
    read = decode_read(_checkpoint(tmp_path), 2, 1)
    weights, kv = rank_bytes(read, tp, context=100)
    assert weights == math.ceil(WEIGHTS / tp)
    assert kv == KV_PER_TOKEN_FP8 // 2 * kv_heads_per_rank * 100


def _batch1(tpot_ms: float) -> BenchLevel:
    n = 11
    request = Measured(64, n, "engine", 0.01, None, [tpot_ms / 1000] * (n - 1), 0.01 + (n - 1) * tpot_ms / 1000)
    return level_record(LevelSpec("waves", LoadShape(max_concurrency=1), "engine", (50,), None), [request], 1.0)


def test_tensor_parallel_roofline_against_closed_form(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """TP = 2 with an fp8 KV cache at 100 tokens of context: limit = slowest bandwidth / (W/2 + KV/2 x context), the
    bandwidth of both GPUs measured, the share of the measured decode recorded."""
    speeds = {"cuda:0": 3.0e12, "cuda:1": 2.0e12}
    monkeypatch.setattr("harness.measure.roofline.memory_bandwidth", lambda device: speeds[device])
    monkeypatch.setattr("torch.cuda.is_available", lambda: True)
    described = BackendInfo(name="vllm", version="x", args={"dtype": "bfloat16", "kv_cache_dtype": "fp8",
                                                            "tensor_parallel_size": 2, "pipeline_parallel_size": 1})
    limit = 2.0e12 / (math.ceil(WEIGHTS / 2) + KV_PER_TOKEN_FP8 // 2 * 100)
    tpot_ms = 1000 / (limit / 2)  # half the limit
    roof = roofline(described, _checkpoint(tmp_path), [_batch1(tpot_ms)], context=100)
    assert roof.batch1_decode_limit_tok_s == pytest.approx(limit)
    assert roof.batch1_share_of_limit == pytest.approx(0.5)
    assert roof.tensor_parallel_size == 2 and roof.kv_dtype_bytes == 1 and roof.weight_bytes_source == "checkpoint"
    assert [(b.device, b.gb_s) for b in roof.bandwidths] == [("cuda:0", 3000.0), ("cuda:1", 2000.0)]
    assert roof.memory_bandwidth_gb_s == 2000.0 and roof.weight_dtype_bytes == 2
    assert roof.decode_weight_bytes == WEIGHTS and roof.rank_weight_bytes == math.ceil(WEIGHTS / 2)
    with pytest.raises(RooflineError, match="above the memory-bandwidth limit"):
        roofline(described, tmp_path, [_batch1(1000 / (1.1 * limit))], context=100)
