"""The cards' published figures (model_families.md section 4): every model its tables name has a card, every figure
names the owb task and metric that measure it or says why none does, and the count of figures owb can check is
pinned, so a figure added without a task and a reason fails here."""

from __future__ import annotations

from collections import Counter

import pytest

from harness.config.cards import all_cards, load_card
from harness.config.taskspec import load_task_spec
from harness.pipeline.plan import resolve_task
from harness.tasks.arguments import join_arguments

# The open-weight models named in section 4's tables and lines, as owb cards.
SECTION_4_MODELS = [
    "qwen2.5-0.5b-instruct", "qwen2.5-1.5b-instruct", "qwen2.5-7b-instruct", "qwen2.5-0.5b", "qwen2.5-1.5b",
    "qwen2.5-7b", "qwen2.5-math-1.5b-instruct", "qwen2.5-math-7b-instruct", "qwen2.5-coder-1.5b-instruct",
    "qwen2.5-coder-7b-instruct", "qwen3-0.6b", "qwen3-1.7b", "qwen3-4b", "qwen3-8b", "qwen3-30b-a3b", "qwq-32b",
    "qwen3-0.6b-base", "qwen3-1.7b-base", "qwen3-4b-base", "qwen3-8b-base", "qwen3-30b-a3b-base",
    "deepseek-r1-distill-qwen-1.5b", "deepseek-r1-distill-qwen-7b", "deepseek-r1-distill-qwen-14b",
    "deepseek-r1-distill-qwen-32b", "deepseek-r1-distill-llama-8b", "deepseek-r1", "deepseek-v3", "deepseek-v3-base",
    "qwq-32b-preview", "hunyuan-a13b-instruct", "hunyuan-a13b-instruct-fp8", "hunyuan-a13b-instruct-gptq-int4",
    "hunyuan-a13b-pretrain", "hunyuan-0.5b-instruct", "hunyuan-1.8b-instruct", "hunyuan-4b-instruct",
    "hunyuan-7b-instruct", "hunyuan-0.5b-pretrain", "hunyuan-1.8b-pretrain", "hunyuan-4b-pretrain",
    "hunyuan-7b-pretrain",
]
# Figures owb checks (a task measures them) and figures it cannot, by reason. Before LiveCodeBench, GPQA-Diamond,
# full MATH and the few-shot base prompts: 114 figures on the cards, 87 with a task.
CHECKABLE, TOTAL = 215, 260
WITHOUT_TASK = {
    "a long-context benchmark": 15,      # PenguinScrolls, LongBench(-v2), FRAMES, RULER
    "the mean of four scores": 10,       # EvalPlus as one number: HumanEval, MBPP, HumanEval+, MBPP+ averaged
    "a CodeForces rating": 6,            # a closed service: Codeforces' judge
    "MultiPL-E": 3, "BIG-Bench Hard": 2, "DROP": 2, "tool-integrated reasoning": 2, "HumanEval-Mul": 1,
    "DeepSeek's 3-shot base-model LiveCodeBench": 1, "GaoKao": 1, "College Math": 1, "MMLU-STEM": 1,
}


def _claims() -> list[tuple[str, object]]:
    return [(card.id, claim) for card in all_cards() for claim in card.published]


def test_every_model_section_4_names_has_a_card_with_its_figures() -> None:
    for name in SECTION_4_MODELS:
        assert load_card(name).published, f"{name} has no published figures"


def test_every_figure_has_a_task_or_says_why_not() -> None:
    """The pinned counts: a figure added without a task fails here until it says why (its `no_task`) and the count
    below is updated with it (the README's task table gives the same numbers)."""
    claims = [c for _, c in _claims()]
    missing = [(card, c.benchmark) for card, c in _claims() if c.task is None and not c.no_task.strip()]
    assert missing == [], f"figures without an owb task must say why (no_task): {missing}"
    assert [c for c in claims if c.task is not None and c.no_task] == [], "a figure with a task has no no_task"
    reasons = Counter(next((key for key in WITHOUT_TASK if key in c.no_task), c.no_task) for c in claims
                      if c.task is None)
    assert dict(reasons) == WITHOUT_TASK
    assert (sum(c.task is not None for c in claims), len(claims)) == (CHECKABLE, TOTAL)


@pytest.mark.parametrize("card", sorted({card for card, _ in _claims()}))
def test_each_figure_names_a_metric_its_task_reports_and_valid_arguments(card: str) -> None:
    """A claim's task exists, reports its metric (pass@k and majority metrics at the claim's k), its arguments are
    the task's (and parse), its thinking mode is one the model has, and it cites a source."""
    model = load_card(card)
    for claim in model.published:
        assert claim.source, (card, claim.benchmark)
        assert claim.thinking in (None, "off") or model.thinking.kind != "none", (card, claim.benchmark)
        if claim.task is None:
            continue
        spec = load_task_spec(claim.task)
        k = claim.protocol.samples or 64
        reported = {name for metric in spec.metrics for name in metric.names(k)}
        assert claim.metric in reported, (card, claim.benchmark, claim.metric, sorted(reported))
        resolve_task(join_arguments(claim.task, claim.protocol.task_args))  # unknown arguments or bad values raise
        if claim.benchmark == "MATH":
            assert claim.task == "math", f"{card}: a full-MATH figure filed under {claim.task}"
    for task, args in model.task_args.items():
        resolve_task(join_arguments(task, args))
