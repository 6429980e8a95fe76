"""What several steps share: owb requests of an exact length, plain `generate`, the hf fast-path switch, decode bytes,
and a loadable model directory of a card's shape."""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Any

from benchmarks.gpu_suite.profile import Ctx
from benchmarks.gpu_suite.record import DecodeBytes
from harness.config.cards import ModelCard, Sampling
from harness.engines.base import GenRequest


def requests(prompts: Sequence[Sequence[int]], tokens: int, tag: str = "r") -> list[GenRequest]:
    """Greedy owb requests of exactly `tokens` new tokens (EOS masked until then) on token-id prompts."""
    return [GenRequest(key=f"{tag}{i}", prompt="", sampling=Sampling(), max_new_tokens=tokens, seed=i,
                       min_new_tokens=tokens, prompt_ids=tuple(ids)) for i, ids in enumerate(prompts)]


def plain_generate(model: Any, prompts: Sequence[Sequence[int]], batch: int, tokens: int) -> int:
    """Plain transformers `generate` (dynamic cache, greedy): prompts sorted by length into left-padded batches,
    exactly `tokens` new tokens each; returns the tokens generated."""
    import torch

    done = 0
    ordered = sorted(prompts, key=len)
    for first in range(0, len(ordered), batch):
        rows = ordered[first : first + batch]
        width = max(len(r) for r in rows)
        ids = torch.tensor([[0] * (width - len(r)) + list(r) for r in rows], device=model.device)
        mask = torch.tensor([[0] * (width - len(r)) + [1] * len(r) for r in rows], device=model.device)
        with torch.inference_mode():
            out = model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=tokens, min_new_tokens=tokens,
                                 do_sample=False, pad_token_id=0)
        done += (out.shape[1] - width) * len(rows)
    return done


def use_fast_path(backend: Any, name: str) -> None:
    """Put a loaded hf backend on its static or continuous fast path (the flags HFBackend sets from `fast_path` and
    clears when a path fails), so both paths share one loaded model."""
    backend.static = backend.lean = True
    backend.continuous = name == "continuous"


def decode_info(model_dir: str, dtype: str, context: int) -> DecodeBytes:
    """Bytes one batch-1 decode step reads (harness.measure.roofline.decode_bytes) at a context length."""
    from harness.measure.roofline import decode_bytes

    weights, kv = decode_bytes(Path(model_dir), 4 if dtype == "float32" else 2, context)
    return DecodeBytes(weights=weights, kv=kv, context=context, dtype=dtype)


def torch_dtype(name: str, device: str) -> Any:
    """The torch dtype of a card's dtype name ("auto": bfloat16 on a GPU, float32 on a CPU)."""
    import torch

    if name == "auto":
        name = "float32" if device == "cpu" else "bfloat16"
    return {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[name]


def on_device(device: str) -> AbstractContextManager[Any]:
    """Create tensors on the GPU while a model is built (random initialisation there is fast), nothing on a CPU."""
    import torch

    return torch.device(device) if device.startswith("cuda") else nullcontext()


def model_dir(ctx: Ctx, card: ModelCard, weights: bool) -> Path:
    """A loadable directory of the card's shape with the real tokenizer and, with `weights`, random weights whose EOS
    logits are 0 (a random model's largest logit is well above 0, so greedy decoding never picks EOS)."""
    from transformers import AutoConfig, AutoTokenizer, GenerationConfig

    out = Path(ctx.work) / "models" / card.id
    tokenizer = AutoTokenizer.from_pretrained(ctx.tokenizer_dir)
    special = {"bos_token_id": tokenizer.bos_token_id, "eos_token_id": tokenizer.eos_token_id,
               "pad_token_id": tokenizer.pad_token_id}
    if not (out / "config.json").is_file():
        assert card.shape is not None
        AutoConfig.for_model(card.architecture, **card.shape, **special).save_pretrained(out)
        tokenizer.save_pretrained(out)
        GenerationConfig(**special).save_pretrained(out)
    if weights and not any(out.glob("*.safetensors")):
        import torch
        from transformers import AutoModelForCausalLM

        with on_device(ctx.device):
            model = AutoModelForCausalLM.from_config(AutoConfig.from_pretrained(out),
                                                     dtype=torch_dtype(card.dtype, ctx.device))
        with torch.no_grad():
            model.get_output_embeddings().weight[tokenizer.eos_token_id] = 0
        model.save_pretrained(out)
        del model
    return out
