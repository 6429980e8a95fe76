"""The token-identity smoke: tiny-qwen2 (float32) on this device through owb's decode loop, static batch, continuous
batching and vLLM backend, greedy, each token for token against plain `generate` run on one prompt at a time."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from benchmarks.gpu_suite.profile import Ctx
from benchmarks.gpu_suite.record import FirstDifference, Recorder, SmokeCheck, SmokeResult
from benchmarks.gpu_suite.steps.common import requests, use_fast_path
from benchmarks.gpu_suite.timing import failure
from harness.engines.base import GenRequest

NAME = "smoke"
TIME_S: tuple[float, float] = (60, 240)
PER_MODEL = False
TOKENS = 24  # tokens per request


def run(ctx: Ctx, rec: Recorder, label: str) -> None:
    """Each owb path's tokens against the reference, on the first four questions (`label` unused: tiny-qwen2)."""
    from harness.config.cards import load_card
    from harness.engines.base import EngineRequest
    from harness.engines.registry import make_backend

    card = load_card("tiny-qwen2")
    hf: Any = make_backend("hf", card, EngineRequest(batch_size=4), {"fast_path": "static", "device": ctx.device})
    texts = [hf.render_chat([{"role": "user", "content": q}], {}) for q in ctx.questions[:4]]
    every = requests([hf.tokenizer.encode(t, add_special_tokens=False) for t in texts], TOKENS, "s")
    reference = plain_reference(hf, every)
    eos = set(hf.eos_ids)
    result = rec.data.smoke = SmokeResult(model=card.id, device=ctx.device, dtype=card.dtype, prompts=len(every),
                                          tokens=TOKENS, reference="plain transformers generate, one prompt at a time")
    rec.save()

    def add(name: str, path: Callable[[], list[Any]], kept: Callable[[], bool]) -> None:
        """Check one path and save."""
        result.add(name, check(path, kept, reference, eos))
        rec.save()

    use_fast_path(hf, "static")
    add("owb hf decode loop, batch 1", lambda: [g for r in every for g in hf.generate([r])], lambda: hf.lean)
    use_fast_path(hf, "static")
    add(f"owb hf static batch of {len(every)}", lambda: list(hf.generate(every)), lambda: hf.static)
    use_fast_path(hf, "continuous")
    add("owb hf continuous batching", lambda: list(hf.generate(every)), lambda: hf.continuous)
    hf.close()
    vllm: Any = make_backend("vllm", card, EngineRequest(batch_size=len(every), max_model_len=512),
                             {**ctx.vllm_args, "enforce_eager": True})
    add("owb vLLM backend (eager)", lambda: list(vllm.generate(every)), lambda: True)
    vllm.close()


def plain_reference(hf: Any, every: list[GenRequest]) -> dict[str, list[int]]:
    """Each request's tokens from plain greedy `generate` on the backend's model, one prompt at a time."""
    import torch

    reference: dict[str, list[int]] = {}
    for r in every:
        ids = torch.tensor([r.prompt_ids], device=hf.model.device)
        with torch.inference_mode():
            out = hf.model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=TOKENS,
                                    min_new_tokens=TOKENS, do_sample=False, pad_token_id=hf.tokenizer.pad_token_id)
        reference[r.key] = out[0, ids.shape[1] :].tolist()
    return reference


def check(path: Callable[[], list[Any]], kept: Callable[[], bool], reference: dict[str, list[int]], eos: set[int]
          ) -> SmokeCheck:
    """A path's tokens against the reference: identical or where they first differ; an error instead of raised."""
    from harness.core.log import warnings_to

    said: list[str] = []
    try:
        with warnings_to(said.append):
            got = {g.key: list(g.token_ids) for g in path()}
    except Exception as exc:  # noqa: BLE001 - one failed path must not lose the others
        return SmokeCheck(error=failure(exc))
    wrong = sorted(k for k in reference if got.get(k) != reference[k])
    result = SmokeCheck(identical=not wrong, mismatched=wrong, fast_path_kept=kept(), warnings=said)
    if wrong:
        ours, want = got.get(wrong[0], []), reference[wrong[0]]
        at = next((i for i, (a, b) in enumerate(zip(ours, want, strict=False)) if a != b), min(len(ours), len(want)))
        result.first_difference = FirstDifference(request=wrong[0], position=at, got=ours[at : at + 1],
                                                  want=want[at : at + 1], got_eos=bool(set(ours[at : at + 1]) & eos))
    return result
