"""`owb make-tiny`: deterministic random-weight checkpoints with a trained byte-level tokenizer per family.

Each recipe gets its family's special tokens and a chat template in that family's real format, so template
rendering and reasoning splits are exercised per family. head_dim is 64 (vLLM's CPU attention needs it).
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.core.errors import ConfigError
from harness.core.paths import owb_home

CHATML_QWEN25 = (
    "{%- if messages[0]['role'] != 'system' %}"
    "{{- '<|im_start|>system\\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\\n' }}"
    "{%- endif %}"
    "{%- for m in messages %}{{- '<|im_start|>' + m['role'] + '\\n' + m['content'] + '<|im_end|>\\n' }}{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}"
)
CHATML_QWEN3 = (
    "{%- for m in messages %}{{- '<|im_start|>' + m['role'] + '\\n' + m['content'] + '<|im_end|>\\n' }}{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}"
    "{%- if enable_thinking is defined and enable_thinking is false %}{{- '<think>\\n\\n</think>\\n\\n' }}{%- endif %}"
    "{%- endif %}"
)
R1_DISTILL = (
    "{{- bos_token }}"
    "{%- for m in messages %}"
    "{%- if m['role'] == 'system' %}{{- m['content'] }}"
    "{%- elif m['role'] == 'user' %}{{- '<｜User｜>' + m['content'] }}"
    "{%- elif m['role'] == 'assistant' %}"
    "{{- '<｜Assistant｜>' + m['content'].split('</think>')[-1] + '<｜end▁of▁sentence｜>' }}"
    "{%- endif %}{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<｜Assistant｜><think>\\n' }}{%- endif %}"
)
HUNYUAN = (
    "{{- '<|startoftext|>' }}"
    "{%- for m in messages %}"
    "{%- if m['role'] == 'system' %}{{- m['content'] + '<|extra_4|>' }}"
    "{%- elif m['role'] == 'user' %}{{- m['content'] + '<|extra_0|>' }}"
    "{%- elif m['role'] == 'assistant' %}{{- m['content'] + '<|eos|>' }}"
    "{%- endif %}{%- endfor %}"
    "{%- if add_generation_prompt and enable_thinking is defined and enable_thinking is false %}"
    "{{- '<think>\\n\\n</think>\\n' }}{%- endif %}"
)
ERNIE = (
    "{{- bos_token }}"
    "{%- for m in messages %}"
    "{%- if m['role'] == 'system' %}{{- m['content'] + '\\n' }}"
    "{%- elif m['role'] == 'user' %}{{- 'User: ' + m['content'] + '\\n' }}"
    "{%- elif m['role'] == 'assistant' %}{{- 'Assistant: ' + m['content'] + '<|end_of_sentence|>' }}"
    "{%- endif %}{%- endfor %}"
    "{%- if add_generation_prompt %}{{- 'Assistant: ' }}{%- endif %}"
)


@dataclass(frozen=True)
class TokenSet:
    """A family's special tokens and chat template."""

    bos: str | None
    eos: str
    pad: str
    extra_eos: tuple[str, ...]
    others: tuple[str, ...]
    template: str


QWEN_TOKENS = ("<|im_start|>", "<think>", "</think>")
TOKEN_SETS = {
    "qwen25": TokenSet(None, "<|im_end|>", "<|endoftext|>", ("<|endoftext|>",), QWEN_TOKENS, CHATML_QWEN25),
    "qwen3": TokenSet(None, "<|im_end|>", "<|endoftext|>", ("<|endoftext|>",), QWEN_TOKENS, CHATML_QWEN3),
    "r1": TokenSet(
        "<｜begin▁of▁sentence｜>", "<｜end▁of▁sentence｜>", "<｜▁pad▁｜>", (),
        ("<｜User｜>", "<｜Assistant｜>", "<think>", "</think>"), R1_DISTILL,
    ),
    "hunyuan": TokenSet(
        "<|startoftext|>", "<|eos|>", "<|pad|>", (),
        ("<|extra_0|>", "<|extra_4|>", "<think>", "</think>", "<answer>", "</answer>"), HUNYUAN,
    ),
    "ernie": TokenSet("<s>", "</s>", "<pad>", ("<|end_of_sentence|>",), ("<|end_of_sentence|>",), ERNIE),
}

# recipe -> (transformers model_type, token set)
RECIPES: dict[str, tuple[str, str]] = {
    "qwen2": ("qwen2", "qwen25"),
    "qwen3": ("qwen3", "qwen3"),
    "qwen3_moe": ("qwen3_moe", "qwen3"),
    "hunyuan_v1_dense": ("hunyuan_v1_dense", "hunyuan"),
    "hunyuan_v1_moe": ("hunyuan_v1_moe", "hunyuan"),
    "ernie4_5": ("ernie4_5", "ernie"),
    "llama": ("llama", "r1"),
}

SHAPE: dict[str, Any] = {
    "hidden_size": 128,
    "intermediate_size": 256,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "num_key_value_heads": 1,
    "head_dim": 64,
    "max_position_embeddings": 4096,
    "tie_word_embeddings": False,
}
MOE_SHAPE: dict[str, dict[str, Any]] = {
    "qwen3_moe": {"num_experts": 4, "num_experts_per_tok": 2, "moe_intermediate_size": 64, "decoder_sparse_step": 1},
    "hunyuan_v1_moe": {"num_experts": 4, "moe_topk": 2},
}

CORPUS = """\
Question: A farmer has 12 cows and buys 7 more. Each cow gives 9 litres of milk a day. How much milk is that?
Answer: 12 + 7 = 19 cows. 19 * 9 = 171 litres. #### 171
Problem: Solve for $x$: $3x + 5 = 20$. Solution: $3x = 15$, so $x = 5$. The answer is $\\boxed{5}$.
Compute $\\frac{1}{2} + \\frac{1}{3}$. We get $\\frac{5}{6}$, so the final answer is \\boxed{\\frac{5}{6}}.
The area of a circle of radius $r$ is $\\pi r^2$; with $r = 4$ it is $16\\pi$. \\sqrt{2}, \\cdot, \\le, \\ge.
def add(a: int, b: int) -> int:
    \"\"\"Return the sum of a and b.\"\"\"
    return a + b

def is_palindrome(text):
    return text == text[::-1]

for i in range(10):
    if i % 2 == 0:
        print(i, "is even")
```python
import math
assert math.gcd(12, 18) == 6
```
Summarize the following abstract in one sentence. We propose a new method for training neural networks that
reduces memory use while keeping accuracy. Experiments on image and language benchmarks show the approach works.
TLDR: A memory-efficient training method that keeps accuracy.
Please reason step by step, and put your final answer within \\boxed{}.
The quick brown fox jumps over the lazy dog. 0 1 2 3 4 5 6 7 8 9 10 100 1000 3.14 -7 $2,500 50% 
User: Hello! Assistant: Hi, how can I help you today? You are a helpful assistant.
"""


def model_dir(recipe: str, root: Path | None = None) -> Path:
    """Where a tiny recipe's checkpoint lives: <root or $OWB_HOME/tiny>/<recipe>."""
    return (root or owb_home() / "tiny") / recipe


def _train_tokenizer(tokens: TokenSet) -> Any:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import AddedToken, PreTrainedTokenizerFast

    specials = [t for t in dict.fromkeys([tokens.pad, tokens.eos, *tokens.extra_eos, tokens.bos]) if t]
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=1024,
        special_tokens=specials,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(CORPUS.splitlines(), trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token=tokens.bos,
        eos_token=tokens.eos,
        pad_token=tokens.pad,
        model_max_length=SHAPE["max_position_embeddings"],
    )
    fast.add_tokens([AddedToken(t, normalized=False, special=False) for t in tokens.others if t not in specials])
    fast.chat_template = tokens.template
    return fast


def make_tiny(recipe: str, out: Path) -> Path:
    """Write the tiny checkpoint and tokenizer of a recipe to `out` (same bytes every time)."""
    if recipe not in RECIPES:
        raise ConfigError(f"unknown tiny family '{recipe}'; choose from {', '.join(RECIPES)} or all")
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, GenerationConfig

    model_type, token_set = RECIPES[recipe]
    tokens = TOKEN_SETS[token_set]
    tokenizer = _train_tokenizer(tokens)
    eos_ids = [tokenizer.convert_tokens_to_ids(t) for t in (tokens.eos, *tokens.extra_eos)]
    config = AutoConfig.for_model(
        model_type,
        vocab_size=len(tokenizer),
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=eos_ids[0],
        pad_token_id=tokenizer.pad_token_id,
        **SHAPE,
        **MOE_SHAPE.get(model_type, {}),
    )
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    GenerationConfig(
        bos_token_id=tokenizer.bos_token_id, eos_token_id=eos_ids, pad_token_id=tokenizer.pad_token_id
    ).save_pretrained(tmp)
    shutil.rmtree(out, ignore_errors=True)
    tmp.rename(out)
    return out
