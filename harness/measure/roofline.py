"""The batch-1 decode limit: measured copy bandwidth of the slowest GPU used over the bytes one tensor-parallel rank
reads per decode step (its share of the weights, at the checkpoint's real dtypes, and of the KV cache so far, at the
KV cache's dtype), beside the measured batch-1 decode. A measured rate above the limit is an error, not a result:
the bytes or the bandwidth would be wrong."""

from __future__ import annotations

import json
import math
import statistics
import struct
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.core.errors import EngineError
from harness.records.base import BackendInfo
from harness.records.bench import BenchLevel, GPUBandwidth, Roofline

# safetensors dtype -> bytes per element (packed 4-bit weights arrive as I32/U8 tensors: their real bytes)
SAFETENSORS_BYTES = {"F64": 8, "I64": 8, "U64": 8, "F32": 4, "I32": 4, "U32": 4, "F16": 2, "BF16": 2, "I16": 2,
                     "U16": 2, "F8_E4M3": 1, "F8_E5M2": 1, "F8_E8M0": 1, "I8": 1, "U8": 1, "BOOL": 1}
KV_DTYPE_BYTES = {"fp8": 1, "fp8_e4m3": 1, "fp8_e5m2": 1, "fp8_inc": 1, "bfloat16": 2, "float16": 2, "half": 2,
                  "float32": 4, "float": 4}
INPUT_EMBEDDINGS = ("embed_tokens.weight", "wte.weight", "word_embeddings.weight", "tok_embeddings.weight",
                    "embed_in.weight")
EXPERT_COUNT_KEYS = ("num_experts", "num_local_experts", "n_routed_experts", "moe_num_experts")


class RooflineError(EngineError):
    """A measured batch-1 decode faster than the memory-bandwidth limit allows."""


@dataclass(frozen=True)
class DecodeBytes:
    """What one batch-1 decode step reads over all ranks: the weights (by dtype), and the KV cache per token."""

    weights: int
    by_dtype: dict[str, int]
    source: str  # "checkpoint" (the safetensors headers) or "config" (a meta model at one dtype)
    kv_per_token: int
    kv_heads: int | None  # heads the KV cache is split over across ranks (None: MLA's latent, kept whole per rank)


def _headers(model_dir: Path) -> list[dict[str, Any]]:
    """The JSON headers of every safetensors file of a checkpoint (8-byte little-endian length, then the JSON)."""
    headers = []
    for path in sorted(model_dir.glob("*.safetensors")):
        with path.open("rb") as handle:
            (length,) = struct.unpack("<Q", handle.read(8))
            headers.append(json.loads(handle.read(length)))
    return headers


def checkpoint_weight_bytes(model_dir: Path, config: Any) -> tuple[int, dict[str, int]] | None:
    """Weight bytes one batch-1 decode step reads, from the checkpoint's own dtypes: every tensor, an untied input
    embedding as one row, routed experts at top-k of the experts; None without safetensors files."""
    from harness.measure.sizes import EXPERTS_PER_TOKEN_KEYS

    headers = _headers(model_dir)
    if not headers:
        return None
    experts = next((int(getattr(config, k)) for k in EXPERT_COUNT_KEYS if getattr(config, k, None)), None)
    top_k = next((getattr(config, k) for k in EXPERTS_PER_TOKEN_KEYS if getattr(config, k, None)), None)
    tied = bool(getattr(config, "tie_word_embeddings", False))
    by_dtype: dict[str, int] = {}
    for header in headers:
        for name, meta in header.items():
            if name == "__metadata__":
                continue
            size = math.prod(meta["shape"]) * SAFETENSORS_BYTES[meta["dtype"]]
            if name.endswith(INPUT_EMBEDDINGS) and not tied and meta["shape"]:
                size //= meta["shape"][0]
            elif ".experts." in name and experts and top_k:
                size = size * int(top_k[0] if isinstance(top_k, (list, tuple)) else top_k) // experts
            by_dtype[meta["dtype"]] = by_dtype.get(meta["dtype"], 0) + size
    return sum(by_dtype.values()), by_dtype


def decode_bytes(model_dir: Path, dtype_bytes: int, context: int) -> tuple[int, int]:
    """(weights, KV cache) bytes one batch-1 decode step reads on one device at `context` tokens, the KV cache at the
    weights' dtype (the GPU suite's figure; `decode_read` has the parts)."""
    read = decode_read(model_dir, dtype_bytes, dtype_bytes)
    return read.weights, read.kv_per_token * context


def decode_read(model_dir: Path, dtype_bytes: int, kv_dtype_bytes: int) -> DecodeBytes:
    """Bytes per batch-1 decode step: the checkpoint's real weight bytes (the config at `dtype_bytes` where the
    weights are not on disk: random weights), and the KV cache per token at `kv_dtype_bytes`."""
    from transformers import AutoConfig

    from harness.measure.sizes import kv_bytes_per_token, weight_bytes

    config = AutoConfig.from_pretrained(model_dir)
    found = checkpoint_weight_bytes(model_dir, config)
    if found is not None:
        weights, by_dtype, source = found[0], found[1], "checkpoint"
    else:
        dtype = {2: "bfloat16", 4: "float32"}.get(dtype_bytes, "bfloat16")
        weights = weight_bytes(config, dtype).decode
        by_dtype, source = {dtype: weights}, "config"
    mla = bool(getattr(config, "kv_lora_rank", None))
    heads = None if mla else int(getattr(config, "num_key_value_heads", None) or config.num_attention_heads)
    return DecodeBytes(weights, by_dtype, source, kv_bytes_per_token(config, kv_dtype_bytes), heads)


def rank_bytes(read: DecodeBytes, tp: int, context: int) -> tuple[int, int]:
    """(weights, KV) one of `tp` tensor-parallel ranks reads per step at `context` tokens: 1/tp of the weights, and
    the KV heads it holds (a head is never split: with fewer KV heads than ranks each rank holds one; MLA's latent
    is whole on every rank)."""
    weights = math.ceil(read.weights / tp)
    if read.kv_heads is None:
        return weights, read.kv_per_token * context
    per_head = read.kv_per_token // read.kv_heads
    return weights, per_head * math.ceil(read.kv_heads / tp) * context


def memory_bandwidth(device: str) -> float:
    """Measured copy bandwidth in bytes/s (read + write), median of 5 copies of 1 GiB (GPU) or 256 MiB (CPU)."""
    import torch

    size = (1 << 30) if device.startswith("cuda") else (256 << 20)
    src = torch.empty(size, dtype=torch.uint8, device=device)
    dst = torch.empty_like(src)
    dst.copy_(src)
    times = []
    for _ in range(5):
        if device.startswith("cuda"):
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        dst.copy_(src)
        if device.startswith("cuda"):
            torch.cuda.synchronize(device)
        times.append(time.perf_counter() - start)
    del src, dst
    return 2 * size / statistics.median(times)


def _int(args: dict[str, Any], key: str) -> int:
    return int(args.get(key) or 1)


def _dtype_bytes(args: dict[str, Any], on_gpu: bool) -> tuple[int, int]:
    """(weights, KV cache) bytes per element the engine computes in: its dtype ("auto": 2 on a GPU, else 4) and
    its KV cache dtype ("auto": the weights')."""
    dtype = str(args.get("dtype", "auto"))
    weights = 2 if dtype in ("bfloat16", "float16", "half") or (dtype == "auto" and on_gpu) else 4
    return weights, KV_DTYPE_BYTES.get(str(args.get("kv_cache_dtype", "auto")), weights)


def roofline(described: BackendInfo, model_dir: Path, levels: list[BenchLevel], context: int) -> Roofline:
    """The batch-1 decode limit of the engine as described (its dtype, KV cache dtype and tensor/pipeline parallel
    sizes), with the copy bandwidth of every GPU it uses; RooflineError where the measured decode beats it."""
    import torch

    args = described.args
    on_gpu = str(args.get("device") or ("cuda" if torch.cuda.is_available() else "cpu")) != "cpu"
    tp, pp = _int(args, "tensor_parallel_size"), _int(args, "pipeline_parallel_size")
    dtype_bytes, kv_bytes = _dtype_bytes(args, on_gpu)
    devices = [f"cuda:{i}" for i in range(tp * pp)] if on_gpu else ["cpu"]
    bandwidths = [GPUBandwidth(device=d, gb_s=memory_bandwidth(d) / 1e9) for d in devices]
    read = decode_read(model_dir, dtype_bytes, kv_bytes)
    rank_w, rank_kv = rank_bytes(read, tp, context)
    slowest = min(b.gb_s for b in bandwidths) * 1e9
    limit = slowest / (rank_w + rank_kv)  # pipeline stages run one after another at batch 1: no gain from pp
    batch1 = next((lvl for lvl in levels if lvl.max_concurrency == 1), None)
    tpot_ms = batch1.stat("median_tpot_ms") if batch1 else None
    measured = 1000 / tpot_ms if tpot_ms else None
    if measured is not None and measured > limit:
        raise RooflineError(f"measured batch-1 decode {measured:.0f} tok/s is above the memory-bandwidth limit "
                            f"{limit:.0f} tok/s ({rank_w + rank_kv} bytes per step per rank at {slowest / 1e9:.0f} "
                            "GB/s): the bytes read or the bandwidth are wrong, so no roofline is recorded")
    return Roofline(
        memory="GPU HBM" if on_gpu else "CPU RAM", memory_bandwidth_gb_s=slowest / 1e9,
        weight_dtype_bytes=SAFETENSORS_BYTES.get(max(read.by_dtype, key=read.by_dtype.__getitem__), dtype_bytes)
        if read.source == "checkpoint" else dtype_bytes,
        decode_weight_bytes=read.weights, decode_kv_bytes=read.kv_per_token * context, context_tokens=context,
        batch1_decode_limit_tok_s=limit, batch1_decode_measured_tok_s=measured,
        batch1_share_of_limit=measured / limit if measured else None, tensor_parallel_size=tp,
        pipeline_parallel_size=pp, rank_weight_bytes=rank_w, rank_kv_bytes=rank_kv,
        weight_bytes_source=read.source, weight_dtypes=read.by_dtype, kv_dtype_bytes=kv_bytes, bandwidths=bandwidths)
