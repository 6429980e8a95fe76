"""`owb fit`: whether a card's model, its KV cache at a context and batch, and what vLLM reserves beside them fit in
a GPU's memory, budgeted as vLLM's start-up memory profile would, from the card's config alone (no weights, no GPU)."""

from __future__ import annotations

import math
import re
from typing import Any

from pydantic import BaseModel

from harness.config.cards import ModelCard
from harness.core.errors import ConfigError
from harness.measure.sizes import EXPERTS_PER_TOKEN_KEYS

WEIGHT_DTYPE_BYTES = {"float32": 4, "bfloat16": 2, "float16": 2}
KV_DTYPE_BYTES = {"float32": 4, "bfloat16": 2, "float16": 2, "fp8": 1}
UNITS = {"b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12,
         "kib": 1 << 10, "mib": 1 << 20, "gib": 1 << 30, "tib": 1 << 40}
GIB = 1 << 30
BLOCK_TOKENS = 16  # vLLM's default KV-cache block (page) size
CUDA_CONTEXT_BYTES = 512 << 20  # CUDA context and driver, taken before vLLM's first snapshot (0.4-0.55 GiB in its logs)
NON_TORCH_BYTES = 384 << 20  # allocations outside torch's pool and buffers beside the parameters (0.1-0.5 GiB in logs)
SAMPLER_BYTES_PER_LOGIT = 40  # the profile's dummy sampler run (top-k/top-p by sorting): ~39 B/logit in vLLM's logs
GRAPH_BUFFERS_PER_LAYER = 5  # hidden-sized buffers per layer the CUDA-graph pool keeps at the largest capture size
MAX_CAPTURE_TOKENS = 512  # vLLM captures graphs up to min(2 * max_num_seqs, 512) tokens
EXPERTS_KEYS = ("num_experts", "num_local_experts", "moe_num_experts", "n_routed_experts")


class FitReport(BaseModel):
    """The figures behind `owb fit`'s verdict, in bytes (what `--json` prints)."""

    model: str
    dtype: str
    kv_dtype: str
    context: int
    batch: int
    gpu_memory_bytes: int
    gpu_memory_utilization: float
    budget_bytes: int  # vLLM's requested memory: ceil(total * gpu_memory_utilization)
    max_num_batched_tokens: int
    max_num_seqs: int
    weights_bytes: int
    kv_bytes_per_token: int
    kv_bytes: int  # kv_bytes_per_token * context * batch
    forward_activation_bytes: int  # one profile forward pass of max_num_batched_tokens tokens
    sampler_activation_bytes: int  # the profile's dummy sampler run over min(max_num_seqs, tokens) rows
    activation_bytes: int  # the larger of the two: vLLM's "peak activation"
    cudagraph_bytes: int
    non_torch_bytes: int
    cuda_context_bytes: int  # outside the budget: it must fit in the (1 - utilization) share
    kv_available_bytes: int  # budget - weights - activation - CUDA graphs - non-torch: vLLM's "Available KV cache"
    naive_bytes: int  # weights + KV cache, what a sum that ignores vLLM's reserves would compare with the GPU
    fits: bool
    reason: str  # why it does not fit ("" when it fits)
    max_batch: int  # sequences of `context` tokens the KV cache holds
    max_context: int  # tokens each of `batch` sequences can have
    model_context_length: int  # the card's context_length


def parse_bytes(text: str) -> int:
    """Bytes from a size such as '24GB' (10^9), '80GiB' (2^30) or '512MiB'; a number needs its unit."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]+)\s*", text)
    unit = UNITS.get(match.group(2).lower()) if match else None
    if match is None or unit is None:
        raise ConfigError(f"--gpu-mem takes a size with its unit, such as 24GB or 80GiB, not '{text}'")
    return int(float(match.group(1)) * unit)


def model_config(card: ModelCard) -> Any:
    """The card's architecture config from its `shape` (config.json values), without weights."""
    if not card.shape:
        raise ConfigError(f"model '{card.id}' has no `shape` in its card, so owb fit cannot size it")
    from transformers import AutoConfig

    return AutoConfig.for_model(card.architecture, **card.shape)


def _first(config: Any, keys: tuple[str, ...]) -> int:
    value = next((getattr(config, k) for k in keys if getattr(config, k, None)), 0)
    return int(value[0] if isinstance(value, (list, tuple)) else value)


def forward_activation_bytes(config: Any, dtype_bytes: int, tokens: int) -> int:
    """Peak transient bytes of one forward pass over `tokens` tokens: the residual stream and layer input, plus the
    larger of the attention stage (q, k, v, attention and projection outputs) and the MLP stage (gate+up, the
    activated half and the output; for a mixture of experts the fused-MoE workspaces of top-k experts per token and
    the float32 router logits)."""
    hidden = int(config.hidden_size)
    heads = int(config.num_attention_heads)
    kv_heads = int(getattr(config, "num_key_value_heads", None) or heads)
    head_dim = int(getattr(config, "head_dim", None) or hidden // heads)
    attention = (heads + 2 * kv_heads) * head_dim + heads * head_dim + hidden
    experts, top_k = _first(config, EXPERTS_KEYS), _first(config, EXPERTS_PER_TOKEN_KEYS)
    if experts and top_k:
        expert_width = _first(config, ("moe_intermediate_size", "intermediate_size"))
        mlp = top_k * (3 * expert_width + hidden) + hidden
        router = 4 * experts
    else:
        mlp, router = 3 * _first(config, ("intermediate_size",)) + hidden, 0
    return tokens * ((2 * hidden + max(attention, mlp)) * dtype_bytes + router)


def sampler_activation_bytes(config: Any, dtype_bytes: int, tokens: int, max_num_seqs: int) -> int:
    """Peak bytes of the profile's dummy sampler run: min(max_num_seqs, tokens) rows of logits over the vocabulary
    (model-dtype logits, a float32 copy, top-k/top-p by sorting with its indices, softmax and noise), while the
    forward pass's hidden states are still held."""
    rows = min(max_num_seqs, tokens)
    return rows * int(config.vocab_size) * SAMPLER_BYTES_PER_LOGIT + tokens * int(config.hidden_size) * dtype_bytes


def cudagraph_bytes(config: Any, dtype_bytes: int, max_num_seqs: int) -> int:
    """The CUDA-graph pool vLLM reserves before sizing the KV cache (it measures it by capturing two graphs): a few
    hidden-sized buffers per layer at the largest capture size, min(2 * max_num_seqs, 512) tokens."""
    capture = min(2 * max_num_seqs, MAX_CAPTURE_TOKENS)
    layers, hidden = int(config.num_hidden_layers), int(config.hidden_size)
    return GRAPH_BUFFERS_PER_LAYER * capture * hidden * layers * dtype_bytes


def estimate_fit(card: ModelCard, gpu_memory: int, context: int | None = None, batch: int = 1,
                 dtype: str | None = None, kv_dtype: str = "auto", gpu_memory_utilization: float = 0.9,
                 max_num_batched_tokens: int | None = None, max_num_seqs: int = 256) -> FitReport:
    """vLLM's start-up memory budget for the card on a GPU of `gpu_memory` bytes, and whether `batch` sequences of
    `context` tokens (default: the card's context_length) fit, with the largest batch and context that do."""
    from harness.measure.sizes import kv_bytes_per_token, weight_bytes

    context = context or card.context_length
    dtype = dtype or ("bfloat16" if card.dtype == "auto" else card.dtype)
    if dtype not in WEIGHT_DTYPE_BYTES:
        raise ConfigError(f"--dtype must be one of {', '.join(WEIGHT_DTYPE_BYTES)}, not '{dtype}'")
    kv_dtype = dtype if kv_dtype == "auto" else kv_dtype
    if kv_dtype not in KV_DTYPE_BYTES:
        raise ConfigError(f"--kv-dtype must be auto or one of {', '.join(KV_DTYPE_BYTES)}, not '{kv_dtype}'")
    if not 0 < gpu_memory_utilization <= 1:
        raise ConfigError(f"--gpu-memory-utilization must be in (0, 1], not {gpu_memory_utilization}")
    if min(context, batch, max_num_seqs, max_num_batched_tokens or 1, gpu_memory) < 1:
        raise ConfigError("--gpu-mem, --context, --batch, --max-num-seqs and --max-num-batched-tokens must be positive")
    # vLLM's offline (LLM class) default: 8192 below 70 GiB of GPU memory, 16384 on H100/H200-class GPUs.
    tokens = max_num_batched_tokens or (16384 if gpu_memory >= 70 * GIB else 8192)
    config = model_config(card)
    width = WEIGHT_DTYPE_BYTES[dtype]
    per_token = kv_bytes_per_token(config, KV_DTYPE_BYTES[kv_dtype])
    weights = weight_bytes(config, dtype).total
    forward = forward_activation_bytes(config, width, tokens)
    sampler = sampler_activation_bytes(config, width, tokens, max_num_seqs)
    graphs = cudagraph_bytes(config, width, max_num_seqs)
    budget = math.ceil(gpu_memory * gpu_memory_utilization)
    kv = per_token * context * batch
    available = budget - weights - max(forward, sampler) - graphs - NON_TORCH_BYTES
    blocks = max(available // (per_token * BLOCK_TOKENS) - 1, 0)  # vLLM's block pool holds one null block back
    max_batch = blocks // math.ceil(context / BLOCK_TOKENS)
    if gpu_memory - budget < CUDA_CONTEXT_BYTES:
        reason = (f"vLLM would not start: {1 - gpu_memory_utilization:.2f} of the GPU does not hold the CUDA context "
                  f"({CUDA_CONTEXT_BYTES / GIB:.1f} GiB); lower --gpu-memory-utilization")
    elif available <= 0:
        reason = "no memory is left for the KV cache after the weights and vLLM's reserves"
    elif max_batch < batch:
        reason = f"the KV cache holds {max_batch} sequence(s) of {context} tokens, not {batch}"
    else:
        reason = ""
    return FitReport(
        model=card.id, dtype=dtype, kv_dtype=kv_dtype, context=context, batch=batch, gpu_memory_bytes=gpu_memory,
        gpu_memory_utilization=gpu_memory_utilization, budget_bytes=budget, max_num_batched_tokens=tokens,
        max_num_seqs=max_num_seqs, weights_bytes=weights, kv_bytes_per_token=per_token,
        kv_bytes=kv, forward_activation_bytes=forward, sampler_activation_bytes=sampler,
        activation_bytes=max(forward, sampler), cudagraph_bytes=graphs, non_torch_bytes=NON_TORCH_BYTES,
        cuda_context_bytes=CUDA_CONTEXT_BYTES, kv_available_bytes=available, naive_bytes=weights + kv,
        fits=not reason, reason=reason, max_batch=max_batch, max_context=blocks // batch * BLOCK_TOKENS,
        model_context_length=card.context_length)


def _gib(n: int) -> str:
    return f"{n / GIB:7.2f} GiB"


def describe(r: FitReport) -> str:
    """The report as text: vLLM's budget line by line, then the verdict."""
    lines = [
        f"{r.model}: {r.dtype} weights, {r.kv_dtype} KV cache, {r.batch} x {r.context} tokens on a "
        f"{r.gpu_memory_bytes / GIB:.2f} GiB GPU",
        f"  vLLM budget       {_gib(r.budget_bytes)}  ({r.gpu_memory_utilization:g} of the GPU)",
        f"  weights           {_gib(r.weights_bytes)}",
        f"  peak activation   {_gib(r.activation_bytes)}  (profile run: {r.max_num_batched_tokens} tokens, "
        f"sampler over {min(r.max_num_seqs, r.max_num_batched_tokens)} rows)",
        f"  CUDA graphs       {_gib(r.cudagraph_bytes)}",
        f"  non-torch         {_gib(r.non_torch_bytes)}",
        f"  KV cache space    {_gib(r.kv_available_bytes)}",
        f"  KV cache needed   {_gib(r.kv_bytes)}  ({r.kv_bytes_per_token:,} bytes per token)",
        f"  weights + KV      {_gib(r.naive_bytes)}  (the sum without vLLM's reserves)",
        f"fits: {'yes' if r.fits else 'no, ' + r.reason}",
        f"largest batch at {r.context} tokens: {r.max_batch}; largest context at batch {r.batch}: {r.max_context} "
        "tokens",
    ]
    if max(r.context, r.max_context) > r.model_context_length:
        lines.append(f"note: the card's context_length is {r.model_context_length} tokens")
    return "\n".join(lines)

