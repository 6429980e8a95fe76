"""Bytes a decode step reads, against closed forms derived here from each card's config values: the active
parameters of a mixture of experts (shared parts + top-k routed experts), and the KV cache at the context."""

from __future__ import annotations

import pytest

from harness.config.cards import load_card
from harness.engines.weights import shape_dir
from harness.measure.roofline import decode_bytes
from tests.helpers import attention_params

BF16 = 2


def qwen25_7b(s: dict) -> int:
    """Dense Qwen2: biased q/k/v, SwiGLU MLP, two norms per layer; untied, so the LM head and not the embedding."""
    h = s["hidden_size"]
    layer = attention_params(s, q_bias=True, qk_norm=False) + 3 * h * s["intermediate_size"] + 2 * h
    return BF16 * (s["num_hidden_layers"] * layer + h + s["vocab_size"] * h)


def qwen3_30b_a3b(s: dict) -> int:
    """Qwen3-MoE: QK-norm attention, a router and num_experts_per_tok of num_experts experts read per token."""
    h = s["hidden_size"]
    experts = s["num_experts_per_tok"] * 3 * s["moe_intermediate_size"] * h
    layer = attention_params(s, q_bias=False, qk_norm=True) + s["num_experts"] * h + experts + 2 * h
    return BF16 * (s["num_hidden_layers"] * layer + h + s["vocab_size"] * h)


def hunyuan_a13b(s: dict) -> int:
    """Hunyuan-MoE: QK-norm attention, a float32 router, moe_topk of num_experts experts plus the shared MLP;
    tied embeddings (read whole, as the LM head)."""
    h, inter = s["hidden_size"], s["intermediate_size"]
    layer_bf16 = attention_params(s, q_bias=False, qk_norm=True) + (s["moe_topk"] + 1) * 3 * inter * h + 2 * h
    router_fp32 = 4 * s["num_experts"] * h
    return s["num_hidden_layers"] * (BF16 * layer_bf16 + router_fp32) + BF16 * (h + s["vocab_size"] * h)


def kv_cache(s: dict, context: int) -> int:
    hd = s.get("head_dim") or s["hidden_size"] // s["num_attention_heads"]
    return s["num_hidden_layers"] * 2 * s["num_key_value_heads"] * hd * BF16 * context


@pytest.mark.parametrize("context_tokens", [512, 8192])
@pytest.mark.parametrize(("card_id", "closed_form"), [("qwen2.5-7b-instruct", qwen25_7b),
                                                      ("qwen3-30b-a3b", qwen3_30b_a3b),
                                                      ("hunyuan-a13b-instruct", hunyuan_a13b)])
def test_decode_reads_active_weights_and_the_kv_cache(card_id: str, closed_form, context_tokens: int) -> None:  # noqa: ANN001
    card = load_card(card_id)
    assert card.shape is not None
    weights, kv = decode_bytes(shape_dir(card), BF16, context_tokens)
    assert weights == closed_form(card.shape)
    assert kv == kv_cache(card.shape, context_tokens)


def test_active_parameters_of_the_moe_cards_match_their_names() -> None:
    """About 3.3B of Qwen3-30B-A3B's and 13B of Hunyuan-A13B's parameters are read per token (their model cards'
    'active' counts, which include the embedding)."""
    q3, a13 = (load_card(c).shape for c in ("qwen3-30b-a3b", "hunyuan-a13b-instruct"))
    assert q3 is not None and a13 is not None
    assert 3.0e9 < qwen3_30b_a3b(q3) / BF16 + q3["vocab_size"] * q3["hidden_size"] < 3.5e9
    assert 12.5e9 < hunyuan_a13b(a13) / BF16 < 14e9
