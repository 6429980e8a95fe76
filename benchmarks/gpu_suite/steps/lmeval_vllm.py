"""lm-eval's vLLM backend (batch_size auto: all requests in one LLM.generate) on the same prompts and lengths, with the
engine settings of the vllm step (dummy weights, prefix caching off, the same max_model_len)."""

from __future__ import annotations

import json
import time

from benchmarks.gpu_suite.profile import Ctx
from benchmarks.gpu_suite.record import Lmeval, LmevalResult, Recorder, merge
from benchmarks.gpu_suite.steps.common import model_dir
from benchmarks.gpu_suite.steps.lmeval import count_outputs, lm_eval_version, lmeval_generate, vllm_dist_alias
from benchmarks.gpu_suite.timing import measure, tokens_of

NAME = "lmeval-vllm"
TIME_S: tuple[float, float] = (100, 240)
PER_MODEL = False


def run(ctx: Ctx, rec: Recorder, label: str) -> None:
    """Start lm-eval's VLLM on `label`'s shape (the run model), then time `generate_until` over the prompts."""
    with vllm_dist_alias():
        from lm_eval.models.vllm_causallms import VLLM

    card = ctx.card(label)
    path = model_dir(ctx, card, weights=False)
    start = time.perf_counter()
    lm = VLLM(pretrained=str(path), dtype=card.dtype, batch_size="auto", max_model_len=ctx.max_model_len,
              max_num_seqs=len(ctx.prompt_texts), enable_prefix_caching=False, load_format="dummy",
              gpu_memory_utilization=0.3 if ctx.device == "cpu" else 0.85, **ctx.vllm_args)
    result = LmevalResult(lm_eval=lm_eval_version(), engine_start_s=time.perf_counter() - start,
                          # vLLM's defaults otherwise (stats logging off; owb's engine has it on)
                          engine_args=json.loads(json.dumps(lm.model_args, default=str)),
                          prompt_tokens_match=lm.tok_encode(list(ctx.prompt_texts)) == ctx.prompt_ids)
    rec.data.lmeval = Lmeval(vllm=result)
    rec.save()
    produced = count_outputs(lm.model, lambda outputs, _: tokens_of(outputs))
    exact = {"min_tokens": ctx.output_len}  # vLLM's SamplingParams: EOS masked until the length
    merge(result, measure(lambda: lmeval_generate(lm, produced, ctx.prompt_texts, ctx.output_len, exact),
                          lambda: lmeval_generate(lm, produced, ctx.prompt_texts[:8], ctx.output_len, exact)))
    rec.save()
