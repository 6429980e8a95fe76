"""What a model's weights and KV cache weigh, from its config: every parameter, the ones batch-1 decode reads per
token (for a mixture of experts: the shared parts and `top-k` of the routed experts), and the KV cache per token
(MLA's compressed latent where the architecture has one). Counted on a meta-device model, so nothing is
allocated and the counts follow the architecture's real code."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

EXPERTS_PER_TOKEN_KEYS = ("num_experts_per_tok", "moe_topk", "moe_k")


@dataclass(frozen=True)
class WeightBytes:
    """Bytes of a model's parameters at a dtype: all of them, and what one decode step reads."""

    total: int  # every parameter (what the GPU must hold)
    decode: int  # read per generated token at batch 1: all but the untied input embedding and unrouted experts
    routed_experts: int  # every routed expert's parameters (a dense model: 0)


def meta_model(config: Any, dtype: str) -> Any:
    """The architecture's model built on the meta device at `dtype` (no memory used)."""
    import torch
    from transformers import AutoModelForCausalLM

    with torch.device("meta"):
        return AutoModelForCausalLM.from_config(config, dtype=getattr(torch, dtype))


def _experts_per_token(config: Any, layer: int) -> int:
    for key in EXPERTS_PER_TOKEN_KEYS:
        value = getattr(config, key, None)
        if value is not None:
            return int(value[layer] if isinstance(value, (list, tuple)) else value)
    raise ValueError(f"{config.model_type}: routed experts but no experts-per-token setting")


def weight_bytes(config: Any, dtype: str = "bfloat16") -> WeightBytes:
    """Parameter bytes of the config's architecture at `dtype` (parameters the code keeps in float32 count 4)."""
    model = meta_model(config, dtype)
    total = decode = routed = 0
    for name, param in model.named_parameters():
        size = param.numel() * param.element_size()
        total += size
        if ".experts." in name:  # fused routed experts: [num_experts, ...]; a token reads top-k of them
            layer = int(match.group(1)) if (match := re.search(r"layers\.(\d+)\.", name)) else 0
            routed += size
            decode += size // param.shape[0] * _experts_per_token(config, layer)
        else:
            decode += size
    if not getattr(config, "tie_word_embeddings", False):  # one row of the input embedding is read, not all of it
        embedding = model.get_input_embeddings().weight
        decode -= embedding.numel() * embedding.element_size()
    return WeightBytes(total=total, decode=decode, routed_experts=routed)


def kv_bytes_per_token(config: Any, kv_dtype_bytes: int) -> int:
    """KV-cache bytes one token of context takes across all layers: keys and values of every KV head, or for MLA
    (DeepSeek-V3) the compressed latent plus the decoupled RoPE key, as vLLM stores it."""
    layers = int(config.num_hidden_layers)
    if getattr(config, "kv_lora_rank", None):
        return layers * (int(config.kv_lora_rank) + int(config.qk_rope_head_dim)) * kv_dtype_bytes
    heads = int(getattr(config, "num_key_value_heads", None) or config.num_attention_heads)
    head_dim = int(getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads)
    return layers * 2 * heads * head_dim * kv_dtype_bytes
