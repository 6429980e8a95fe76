"""Reasoning split per family's template, with and without a closing tag, and the thinking switch in prompts."""

from __future__ import annotations

from pathlib import Path

import pytest
from transformers import AutoTokenizer

from harness.config.cards import load_card
from harness.config.taskspec import load_task_spec
from harness.engines.weights import resolve_model_path
from harness.scoring.reasoning import split_output
from harness.tasks.data import Document
from harness.tasks.prompts import build_prompt, chat_messages, template_kwargs


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
    card = load_card(card_id)
    prompt = build_prompt(load_task_spec("math500"), card, mode, DOC, _Tokenizer(card_id)).text  # type: ignore[arg-type]
    split = split_output(output, card, prompt)
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
    card, spec, renderer = load_card(card_id), load_task_spec("math500"), _Tokenizer(card_id)
    on = build_prompt(spec, card, "on", DOC, renderer).text
    off = build_prompt(spec, card, "off", DOC, renderer).text
    assert on.endswith(on_suffix) and not on.endswith(off_suffix)
    assert off.endswith(off_suffix)


def test_prompt_flag_families_append_the_flag(tmp_path: Path) -> None:
    card = load_card("tiny-hunyuan_v1_dense").model_copy(
        update={"thinking": load_card("tiny-hunyuan_v1_dense").thinking.model_copy(update={"kind": "prompt_flag"})}
    )
    spec = load_task_spec("math500")
    assert chat_messages(spec, card, "off", DOC)[-1]["content"].endswith(" /no_think")
    assert chat_messages(spec, card, "on", DOC)[-1]["content"].endswith(" /think")
    assert "enable_thinking" not in template_kwargs(card, "off")


def test_r1_template_opens_think_and_has_no_system_prompt() -> None:
    prompt = build_prompt(load_task_spec("math500"), load_card("tiny-llama"), "on", DOC, _Tokenizer("tiny-llama")).text
    assert prompt == ("<｜begin▁of▁sentence｜><｜User｜>What is 1+1?\nPlease reason step by step, and put your final "
                      "answer within \\boxed{}.<｜Assistant｜><think>\n")


@pytest.mark.parametrize("template", ["first-published (no <think>)", "later (opens <think>)"])
def test_r1_think_block_is_read_from_the_rendered_prompt(template: str, shared_data: Path) -> None:
    """The same R1 card under both published templates: the real first-published tokenizer leaves <think> to the
    model, the tiny model's later template opens it. An output with no tags is a plain answer under the first and a
    cut-off think block under the second; with the end tag both split the same way."""
    card = load_card("tiny-llama")
    if template.startswith("first"):
        tokenizer = AutoTokenizer.from_pretrained(shared_data / "tokenizers" / "deepseek-r1-distill-qwen-7b")

        class Renderer:
            def render_chat(self, messages, kwargs):  # noqa: ANN001, ANN201
                return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True, **kwargs)

        renderer: object = Renderer()
    else:
        renderer = _Tokenizer("tiny-llama")
    prompt = build_prompt(load_task_spec("math500"), card, "on", DOC, renderer).text  # type: ignore[arg-type]
    opens = template.startswith("later")
    assert prompt.rstrip().endswith("<think>") == opens
    plain = split_output("So \\boxed{2}", card, prompt)
    assert (plain.answer, plain.unclosed) == (("", True) if opens else ("So \\boxed{2}", False))
    closed = split_output("add them\n</think>\nSo \\boxed{2}", card, prompt)
    assert (closed.reasoning, closed.answer, closed.unclosed) == ("add them", "So \\boxed{2}", False)
    own_tag = split_output("<think>\nadd them and never stop", card, prompt)
    assert own_tag.unclosed, "a think block the model opened itself and never closed is cut off"


def test_the_answer_keeps_its_indentation() -> None:
    """A bare function body (a base model's HumanEval completion) keeps its first line's indent."""
    split = split_output("\n\n    return a + b\n\n", load_card("tiny-qwen2"), "")
    assert split.answer == "    return a + b"
