"""lm-eval's hf backend (HFLM generate_until: length-sorted left-padded batches of `batch`, plain `generate` with its
stop-sequence criteria) on a random-weight model of the shape, the same prompts and lengths."""

from __future__ import annotations

from benchmarks.gpu_suite.profile import Ctx
from benchmarks.gpu_suite.record import Lmeval, LmevalResult, Recorder, merge
from benchmarks.gpu_suite.steps.common import model_dir, on_device, torch_dtype
from benchmarks.gpu_suite.steps.lmeval import count_outputs, lm_eval_version, lmeval_generate
from benchmarks.gpu_suite.timing import measure

NAME = "lmeval-hf"
TIME_S: tuple[float, float] = (60, 180)
PER_MODEL = False


def run(ctx: Ctx, rec: Recorder, label: str) -> None:
    """Build a random-weight model of `label`'s shape (the run model) into HFLM, then time `generate_until`."""
    from lm_eval.models.huggingface import HFLM
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    card = ctx.card(label)
    path = model_dir(ctx, card, weights=False)
    with on_device(ctx.device):
        model = AutoModelForCausalLM.from_config(AutoConfig.from_pretrained(path),
                                                 dtype=torch_dtype(card.dtype, ctx.device))
    lm = HFLM(pretrained=model.to(ctx.device).eval(), tokenizer=AutoTokenizer.from_pretrained(path),
              batch_size=ctx.batch, device=ctx.device)
    result = LmevalResult(lm_eval=lm_eval_version(), batch=ctx.batch,
                          prompt_tokens_match=[lm.tok_encode(t) for t in ctx.prompt_texts] == ctx.prompt_ids)
    rec.data.lmeval = Lmeval(hf=result)
    rec.save()
    produced = count_outputs(model, lambda out, kwargs: (out.shape[1] - kwargs["input_ids"].shape[1]) * out.shape[0])
    exact = {"min_new_tokens": ctx.output_len}  # passed through to generate: EOS masked until the length
    merge(result, measure(lambda: lmeval_generate(lm, produced, ctx.prompt_texts, ctx.output_len, exact),
                          lambda: lmeval_generate(lm, produced, ctx.prompt_texts[: ctx.batch], 8,
                                                  {"min_new_tokens": 8})))
    rec.save()
