"""A backend is one class and one registry line: `owb run` and `owb bench` through an in-test backend."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.core.errors import UserError
from harness.pipeline.runner import run
from harness.records.run import RunOptions
from tests.contract import check_bench, check_run
from tests.helpers import REPO, FakeBackend, run_cli, samples


def test_a_new_backend_is_one_class_and_one_registry_line(fake_backend: type[FakeBackend], tmp_path: Path) -> None:
    """The fake backend (tests/helpers.py) registered at run time runs `owb run` and `owb bench` end to end; its own
    options model validates --backend-arg, and the card's engine_args for it apply."""
    run_dir = run_cli("--model", "tiny-qwen2", "--backend", "fake", "--tasks", "gsm8k,math500", "--data", "fixture",
                      "--limit", "3", "--backend-arg", "answer=\\boxed{7}", "--batch-size", "2",
                      "--output", str(tmp_path / "runs"))
    record = check_run(run_dir)
    assert record["backend"] == {"name": "fake", "version": "0",
                                 "args": {"answer": "\\boxed{7}", "batch_size": 2, "random_weights": False}}
    assert all(s["raw_output"] == "\\boxed{7}" and s["ttft_s"] == 0.001 for s in samples(run_dir, "math500"))
    bench = run_cli("--model", "tiny-qwen2", "--backend", "fake", "--input-len", "6", "--output-len", "4",
                    "--concurrency", "1,2", "--num-prompts", "4", "--output", str(tmp_path / "bench"), command="bench")
    check_bench(bench, 6, 4, [1, 2], 4)
    assert fake_backend.opened[-1].batch_size == 2  # the top concurrency level, mapped by the options model
    card = tmp_path / "card.yaml"
    card.write_text((REPO / "model_cards" / "tiny-qwen2.yaml").read_text()
                    + "engine_args: {fake: {answer: '#### 5', batch_size: 8}}\n")
    for flags, batch in (((), 8), (("--batch-size", "2"), 2), (("--batch-size", "2", "--backend-arg", "batch_size=3"), 3)):
        run_cli("--model", str(card), "--backend", "fake", "--tasks", "gsm8k", "--data", "fixture", "--limit", "1",
                "--output", str(tmp_path / "card"), *flags)  # the card, then owb's flags, then --backend-arg
        assert (fake_backend.opened[-1].answer, fake_backend.opened[-1].batch_size) == ("#### 5", batch), flags
    with pytest.raises(UserError, match=r"backend fake: unknown option 'temprature' \(it takes: answer, batch_size"):
        run(RunOptions(model="tiny-qwen2", backend="fake", backend_args={"temprature": 1}))
