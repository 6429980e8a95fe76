"""The batch-1 decode limit: measured memory bandwidth over the bytes one decode step reads (the weights it uses and
the KV cache so far), beside the measured batch-1 decode."""

from __future__ import annotations

import statistics
import time
from pathlib import Path

from harness.records.base import BackendInfo
from harness.records.bench import BenchLevel, Roofline


def decode_bytes(model_dir: Path, dtype_bytes: int, context: int) -> tuple[int, int]:
    """Bytes one batch-1 decode step reads at `context` tokens: the weights it uses (for a mixture of experts, top-k
    of the routed experts; an untied input embedding only a row) and the KV cache so far."""
    from transformers import AutoConfig

    from harness.measure.sizes import kv_bytes_per_token, weight_bytes

    config = AutoConfig.from_pretrained(model_dir)
    dtype = "bfloat16" if dtype_bytes == 2 else "float32"
    return weight_bytes(config, dtype).decode, kv_bytes_per_token(config, dtype_bytes) * context


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
            torch.cuda.synchronize()
        start = time.perf_counter()
        dst.copy_(src)
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return 2 * size / statistics.median(times)


def roofline(described: BackendInfo, model_dir: Path, levels: list[BenchLevel], context: int) -> Roofline:
    """Measured memory bandwidth, the batch-1 decode limit it implies at the mean decode context, and the measured
    batch-1 decode."""
    import torch

    on_gpu = str(described.args.get("device") or ("cuda" if torch.cuda.is_available() else "cpu")) != "cpu"
    dtype = str(described.args.get("dtype", "auto"))
    dtype_bytes = 2 if dtype in ("bfloat16", "float16") or (dtype == "auto" and on_gpu) else 4
    bandwidth = memory_bandwidth("cuda" if on_gpu else "cpu")
    weight_bytes, kv_bytes = decode_bytes(model_dir, dtype_bytes, context)
    limit = bandwidth / (weight_bytes + kv_bytes)
    batch1 = next((lvl for lvl in levels if lvl.concurrency == 1), None)
    measured = 1 / batch1.tpot_s.p50 if batch1 and batch1.tpot_s else None
    return Roofline(
        memory="GPU HBM" if on_gpu else "CPU RAM",
        memory_bandwidth_gb_s=bandwidth / 1e9,
        weight_dtype_bytes=dtype_bytes,
        decode_weight_bytes=weight_bytes,
        decode_kv_bytes=kv_bytes,
        context_tokens=context,
        batch1_decode_limit_tok_s=limit,
        batch1_decode_measured_tok_s=measured,
        batch1_share_of_limit=measured / limit if measured else None,
    )
