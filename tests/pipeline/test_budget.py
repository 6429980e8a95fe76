"""The thinking budget: thinking cut at N tokens with the closing phrase once, then an answer; every budget of a
run is its own task (task@thinkN), so compare can draw accuracy against tokens."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from harness.config.cards import Sampling, load_card
from harness.engines.base import Generation, GenRequest
from harness.pipeline.budget import generate_within_budget
from harness.records.sample import Timings, split_name
from harness.tasks.budget import PHRASE
from tests.contract import check_run
from tests.helpers import run_cli, samples


class Thinker:
    """A backend double that thinks `think` words, closes with </think> and answers `answer` words."""

    def __init__(self, think: int, answer: int = 3) -> None:
        self.think, self.answer = think, answer
        self.prompts: list[str] = []

    def generate(self, requests: Sequence[GenRequest]) -> Iterator[Generation]:
        for r in requests:
            self.prompts.append(r.prompt)
            words = (["hmm"] * self.think + ["</think>"] if "</think>" not in r.prompt else []) + ["42"] * self.answer
            n = min(len(words), r.max_new_tokens)
            yield Generation(r.key, " ".join(words[:n]), 5, n, "length" if n < len(words) else "stop",
                             Timings.measured("request", n, 0.1, 0.1 + 0.01 * n))


def _request(max_new: int = 50) -> GenRequest:
    return GenRequest("t/0/0", "<think>\n", Sampling(), max_new, 1)


def test_thinking_past_the_budget_is_closed_once_and_answered() -> None:
    card = load_card("tiny-llama")
    [gen] = generate_within_budget(Thinker(think=30), [_request()], 10, card)  # type: ignore[arg-type]
    assert gen.text.count(PHRASE) == 1 and gen.text.count("</think>") == 1
    assert gen.text.startswith("hmm " * 9 + "hmm" + PHRASE) and gen.text.endswith("42 42 42")
    assert (gen.reasoning_tokens, gen.output_tokens, gen.finish_reason) == (10, 13, "stop")
    assert gen.timings.ttft_s == 0.1 and gen.timings.e2e_s == pytest.approx(0.1 + 0.1 + 0.1 + 0.03)


def test_thinking_within_the_budget_is_left_alone() -> None:
    thinker = Thinker(think=4)
    [gen] = generate_within_budget(thinker, [_request()], 10, load_card("tiny-llama"))  # type: ignore[arg-type]
    assert PHRASE not in gen.text and gen.text.endswith("</think> 42 42 42") and len(thinker.prompts) == 1
    still_answering = Thinker(think=4, answer=20)
    [gen] = generate_within_budget(still_answering, [_request()], 10, load_card("tiny-llama"))  # type: ignore[arg-type]
    assert PHRASE not in gen.text and gen.text.count("</think>") == 1 and gen.output_tokens == 10 + 20, "it goes on"
    assert gen.reasoning_tokens is None


def test_budget_names() -> None:
    assert split_name("aime24@think512") == ("aime24", 512) and split_name("aime24") == ("aime24", None)
    assert split_name("lmeval:gsm8k@think64") == ("lmeval:gsm8k", 64)


@pytest.mark.slow
def test_owb_run_with_budgets_through_transformers(tmp_path: Path) -> None:
    """The tiny R1 model (its template opens <think>) never closes its thinking: at each budget it is cut after
    exactly N tokens, the phrase appears once, and an answer follows; the budgets are tasks of one run."""
    run_dir = run_cli("--model", "tiny-llama", "--tasks", "math500", "--data", "fixture", "--limit", "3",
                      "--thinking-budget", "8,16", "--max-new-tokens", "32", "--output", str(tmp_path))
    record = check_run(run_dir)
    for budget in (8, 16):
        task = f"math500@think{budget}"
        assert record["tasks"][task]["config"]["generation"]["thinking_budget"] == budget
        for s in samples(run_dir, task):
            assert s["raw_output"].count(PHRASE) == 1 and s["reasoning_tokens"] == budget
            assert s["answer_tokens"] == s["output_tokens"] - budget > 0 and s["answer"]


def test_a_budget_needs_a_thinking_model(tmp_path: Path) -> None:
    from harness.core.errors import ConfigError

    with pytest.raises(ConfigError, match="needs thinking on"):
        run_cli("--model", "tiny-qwen2", "--tasks", "gsm8k", "--data", "fixture", "--thinking-budget", "8",
                "--output", str(tmp_path))
