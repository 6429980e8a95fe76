"""Helpers shared by the test modules: the owb CLI (in a subprocess or in-process), backends built through the
registry as owb builds them, replay files, and an in-process fake backend for the fast tier."""

from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from typer.testing import CliRunner

from harness.config.cards import ModelCard, load_card
from harness.engines.base import Backend, BackendOptions, EngineRequest, Generation, GenRequest, NoReport
from harness.engines.registry import make_backend
from harness.records.base import BackendInfo
from harness.records.sample import Timings
from harness.records.store import RunDir

REPO = Path(__file__).resolve().parent.parent
SHARED_DATA = Path(os.environ.get("OWB_DATA_DIR") or REPO.parent / "shared" / "data")
FIXTURES = REPO / "tasks" / "fixtures"


def owb(*args: str, cwd: Path | None = None, timeout: float = 600,
        env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run the real `owb` console script in a subprocess."""
    exe = Path(sys.executable).with_name("owb")
    return subprocess.run([str(exe), *args], capture_output=True, text=True, cwd=cwd, timeout=timeout,
                          env={**os.environ, "COLUMNS": "160", **(env or {})})


@dataclass(frozen=True)
class Ended:
    """How the console entry point ended, in-process: its exit code and what it printed."""

    returncode: int
    stdout: str
    stderr: str


def run_main(*args: str) -> Ended:
    """The real console entry point (`harness.cli:main`) in this process: argv in; exit code, stdout, stderr out."""
    from harness.cli import main

    out, err = io.StringIO(), io.StringIO()
    argv = sys.argv
    sys.argv = ["owb", *args]
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                main()
                code = 0
            except SystemExit as exc:
                code = int(exc.code or 0)
    finally:
        sys.argv = argv
    return Ended(code, out.getvalue(), err.getvalue())


def run_cli(*args: str, command: str = "run") -> Path:
    """Invoke `owb run` (or bench) in-process and return the directory or file it printed after 'results: '."""
    from harness.cli import app

    result = CliRunner().invoke(app, [command, *args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    line = next(x for x in result.output.splitlines() if x.startswith("results: "))
    return Path(line.removeprefix("results: ").strip())


def build_backend(name: str, card: str | ModelCard, request: EngineRequest | None = None, **args: Any) -> Backend:
    """A backend built through the registry, as `owb run` builds it."""
    card = load_card(card) if isinstance(card, str) else card
    return make_backend(name, card, request or EngineRequest(), args)


def attention_params(shape: dict[str, Any], q_bias: bool, qk_norm: bool) -> int:
    """Closed form of one attention block's parameters from config values: q/k/v/o projections (biased q/k/v for
    Qwen2), and per-head-dim q/k norms (Qwen3, Hunyuan)."""
    h, heads, kv = shape["hidden_size"], shape["num_attention_heads"], shape["num_key_value_heads"]
    hd = shape.get("head_dim") or h // heads
    params = h * heads * hd + 2 * h * kv * hd + heads * hd * h
    params += (heads * hd + 2 * kv * hd) if q_bias else 0
    return params + (2 * hd if qk_norm else 0)


def write_replay(path: Path, lines: Sequence[dict[str, Any]]) -> Path:
    """A replay file of {"task", "doc_id", "sample_idx", "output"} lines."""
    path.write_text("\n".join(json.dumps(x) for x in lines) + "\n")
    return path


def fixture_rows(task: str) -> list[dict[str, Any]]:
    """The rows of a task's fixture file."""
    return [json.loads(x) for x in (FIXTURES / f"{task}.jsonl").read_text().splitlines()]


def samples(run_dir: Path, task: str) -> list[dict[str, Any]]:
    """A run's samples of a task as owb reads them (any layout, any compression): every field, the prompt resolved
    and the reasoning and answer as texts."""
    return [{**record.model_dump(mode="json"), "reasoning": record.reasoning, "answer": record.answer}
            for record in RunDir(run_dir).samples(task).records()]


class FakeOptions(BackendOptions):
    """The fake backend's options: what every answer says, and requests in flight."""

    answer: str = "The answer is \\boxed{42}.\n#### 42"
    batch_size: int = 4
    random_weights: bool = False


class FakeBackend(NoReport):
    """An in-process engine without a model: each request gets `answer`, one output token per word, with request
    timings, so the whole pipeline runs in milliseconds."""

    name: ClassVar[str] = "fake"
    Options: ClassVar[type[BackendOptions]] = FakeOptions
    measures_speed: ClassVar[bool] = True
    needs_card: ClassVar[bool] = True
    generates_in_background: ClassVar[bool] = False
    opened: ClassVar[list[FakeOptions]] = []

    def __init__(self, card: ModelCard, options: FakeOptions) -> None:
        self.card, self.options = card, options
        FakeBackend.opened.append(options)

    def describe(self) -> BackendInfo:
        """Name and options."""
        return BackendInfo(name=self.name, version="0", args=self.options.model_dump())

    def render_chat(self, messages: list[dict[str, str]], template_kwargs: dict[str, Any]) -> str:
        """Roles and contents, one per line."""
        return "".join(f"<{m['role']}>{m['content']}\n" for m in messages) + "<assistant>"

    def count_tokens(self, text: str) -> int:
        """Words."""
        return len(text.split())

    def vocab(self) -> tuple[int, frozenset[int]]:
        """A 100-token vocabulary, token 0 special."""
        return 100, frozenset({0})

    def generate(self, requests: Sequence[GenRequest]) -> Iterator[Generation]:
        """The configured answer (or exactly min_new_tokens words for fixed-length requests)."""
        for r in requests:
            words = self.options.answer.split() if not r.min_new_tokens else ["w"] * r.min_new_tokens
            n = min(len(words), r.max_new_tokens)
            prompt = len(r.prompt_ids) if r.prompt_ids is not None else len(r.prompt.split())
            yield Generation(r.key, " ".join(words[:n]), prompt, n, "length" if n >= r.max_new_tokens else "stop",
                             Timings.measured("request", n, 0.001, 0.001 + 0.0005 * (n - 1)))

    def close(self) -> None:
        """Nothing to free."""
