"""Reasoning split per family's template, with and without a closing tag, and the thinking switch in prompts."""

from __future__ import annotations

from pathlib import Path

import pytest
from transformers import AutoTokenizer

from harness.config import load_card, load_task
from harness.data import Document
from harness.prompts import build_prompt, chat_messages, template_kwargs
from harness.reasoning import split_output
from harness.models import resolve_model_path


class _Tokenizer:
    """Renders through the tiny model's real tokenizer chat template."""

    def __init__(self, card_id: str) -> None:
        self.tok = AutoTokenizer.from_pretrained(resolve_model_path(load_card(card_id)))

    def render_chat(self, messages, kwargs):  # noqa: ANN001, ANN201
        return self.tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True, **kwargs)


DOC = Document("0", {"problem": "What is 1+1?"}, "2")


@pytest.mark.parametrize(
    ("card_id", "mode", "output", "reasoning", "answer", "unclosed"),
    [
        # Qwen3 thinking: the model writes both tags.
        ("tiny-qwen3", "on", "<think>\nadd them\n</think>\n\n\\boxed{2}", "add them", "\\boxed{2}", False),
        ("tiny-qwen3", "on", "<think>\nadd them and keep going", "add them and keep going", "", True),
        # Qwen3 non-thinking: the template closed an empty block, the output has no tags.
        ("tiny-qwen3", "off", "\\boxed{2}", "", "\\boxed{2}", False),
        # R1-distill: the template opens <think>, the model writes only the end tag.
        ("tiny-llama", "on", "add them\n</think>\nSo \\boxed{2}", "add them", "So \\boxed{2}", False),
        ("tiny-llama", "on", "add them and never stop", "add them and never stop", "", True),
        ("tiny-llama", "on", "a</think>b</think>\\boxed{2}", "a</think>b", "\\boxed{2}", False),  # the last tag wins
        # Hunyuan: <think> then <answer>; falls back to the text after </think> without answer tags.
        ("tiny-hunyuan_v1_dense", "on", "<think>\nadd\n</think>\n<answer>\n\\boxed{2}\n</answer>", "add", "\\boxed{2}", False),
        ("tiny-hunyuan_v1_dense", "on", "<think>add</think>\n\\boxed{2}", "add", "\\boxed{2}", False),
        ("tiny-hunyuan_v1_dense", "on", "<think>add and add", "add and add", "", True),
        ("tiny-hunyuan_v1_moe", "off", "<answer>\\boxed{2}</answer>", "", "\\boxed{2}", False),
        # No tags in the family: no split at all.
        ("tiny-qwen2", "off", "<think>not a tag here</think> \\boxed{2}", "", "<think>not a tag here</think> \\boxed{2}", False),
        ("tiny-ernie4_5", "off", "\\boxed{2}", "", "\\boxed{2}", False),
    ],
)
def test_split_per_family(card_id: str, mode: str, output: str, reasoning: str, answer: str, unclosed: bool) -> None:
    split = split_output(output, load_card(card_id), mode)  # type: ignore[arg-type]
    assert (split.reasoning, split.answer, split.unclosed) == (reasoning, answer, unclosed)


@pytest.mark.parametrize(
    ("card_id", "on_suffix", "off_suffix"),
    [
        ("tiny-qwen3", "<|im_start|>assistant\n", "<|im_start|>assistant\n<think>\n\n</think>\n\n"),
        ("tiny-qwen3_moe", "<|im_start|>assistant\n", "<|im_start|>assistant\n<think>\n\n</think>\n\n"),
        ("tiny-hunyuan_v1_dense", "<|extra_0|>", "<|extra_0|><think>\n\n</think>\n"),
        ("tiny-hunyuan_v1_moe", "<|extra_0|>", "<|extra_0|><think>\n\n</think>\n"),
    ],
)
def test_thinking_off_renders_the_non_thinking_prompt(card_id: str, on_suffix: str, off_suffix: str) -> None:
    card, spec, renderer = load_card(card_id), load_task("math500"), _Tokenizer(card_id)
    on = build_prompt(spec, card, "on", DOC, renderer).text
    off = build_prompt(spec, card, "off", DOC, renderer).text
    assert on.endswith(on_suffix) and not on.endswith(off_suffix)
    assert off.endswith(off_suffix)


def test_prompt_flag_families_append_the_flag(tmp_path: Path) -> None:
    card = load_card("tiny-hunyuan_v1_dense").model_copy(
        update={"thinking": load_card("tiny-hunyuan_v1_dense").thinking.model_copy(update={"kind": "prompt_flag"})}
    )
    spec = load_task("math500")
    assert chat_messages(spec, card, "off", DOC)[-1]["content"].endswith(" /no_think")
    assert chat_messages(spec, card, "on", DOC)[-1]["content"].endswith(" /think")
    assert "enable_thinking" not in template_kwargs(card, "off")


def test_r1_template_opens_think_and_has_no_system_prompt() -> None:
    prompt = build_prompt(load_task("math500"), load_card("tiny-llama"), "on", DOC, _Tokenizer("tiny-llama")).text
    assert prompt == ("<｜begin▁of▁sentence｜><｜User｜>What is 1+1?\nPlease reason step by step, and put your final "
                      "answer within \\boxed{}.<｜Assistant｜><think>\n")
