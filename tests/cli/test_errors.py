"""Errors a user can cause end with one clear line on stderr and exit code 2, never a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import Ended, owb, run_main


@pytest.fixture
def cli():  # noqa: ANN201
    """The real console entry point, in-process."""
    return run_main


def _fails_cleanly(result: Ended | object, needle: str) -> None:
    assert result.returncode == 2, (result.returncode, result.stderr)  # type: ignore[attr-defined]
    stderr: str = result.stderr  # type: ignore[attr-defined]
    assert "Traceback" not in stderr
    lines = [x for x in stderr.splitlines() if x.strip()]
    assert len(lines) == 1, stderr
    assert lines[0].startswith("error: ") and needle in lines[0], lines[0]


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--model", "no-such-model"], "unknown model 'no-such-model'"),
        (["--model", "tiny-qwen2", "--tasks", "gsm9k"], "unknown task 'gsm9k'"),
        (["--model", "tiny-qwen2", "--data-dir", "/nonexistent/data"], "data directory not found"),
        (["--model", "tiny-qwen2", "--backend", "tgi"], "unknown backend 'tgi'"),
        (["--model", "tiny-qwen2", "--thinking", "maybe"], "Invalid value for '--thinking'"),
        (["--model", "tiny-qwen2", "--thinking", "on", "--data", "fixture"], "has no thinking mode"),
        (["--model", "tiny-llama", "--thinking", "off", "--data", "fixture"], "always thinks"),
        (["--model", "tiny-qwen2", "--backend", "replay", "--data", "fixture"], "needs --replay"),
        (["--resume", "/nonexistent/run"], "not a run directory"),
        pytest.param(["--model", "tiny-qwen2", "--backend", "vllm", "--device", "cpu", "--data", "fixture"],
                     "backend vllm: unknown option 'device'", marks=pytest.mark.slow),
        (["--model", "tiny-qwen2", "--engine-arg", "tensor_parallel_size=2", "--data", "fixture"], "backend hf: unknown option 'tensor_parallel_size'"),
        (["--model", "tiny-qwen2", "--engine-arg", "novalue", "--data", "fixture"], "--backend-arg takes KEY=VALUE"),
        (["--model", "tiny-qwen2", "--limit", "0", "--data", "fixture"], "Invalid value for '--limit': Input should be greater than or equal to 1"),
        (["--model", "tiny-qwen2", "--samples", "-2", "--data", "fixture"], "Invalid value for '--samples'"),
    ],
)
def test_bad_arguments_exit_2_with_one_line(cli, args: list[str], needle: str, tmp_path: Path) -> None:  # noqa: ANN001
    _fails_cleanly(cli("run", *args, "--output", str(tmp_path)), needle)


def test_missing_file_in_data_dir(cli, tmp_path: Path) -> None:  # noqa: ANN001
    (tmp_path / "data").mkdir()
    _fails_cleanly(cli("run", "--model", "tiny-qwen2", "--tasks", "math500", "--data-dir", str(tmp_path / "data"),
                       "--output", str(tmp_path)), "math500/test.jsonl not found in data directory")


def test_malformed_card_yaml(cli, tmp_path: Path) -> None:  # noqa: ANN001
    card = tmp_path / "bad.yaml"
    card.write_text("id: bad\nfamily: [unclosed\n")
    _fails_cleanly(cli("run", "--model", str(card), "--output", str(tmp_path)), "malformed YAML")


def test_card_with_unknown_field_is_rejected(cli, tmp_path: Path) -> None:  # noqa: ANN001
    card = tmp_path / "extra.yaml"
    card.write_text("id: x\nfamily: qwen2.5\narchitecture: qwen2\ntiny: qwen2\ntemprature: 0.7\n")
    _fails_cleanly(cli("run", "--model", str(card), "--output", str(tmp_path)), "temprature")


def test_bad_replay_line(cli, tmp_path: Path) -> None:  # noqa: ANN001
    replay = tmp_path / "r.jsonl"
    replay.write_text('{"task": "gsm8k", "doc_id": "0"}\n')
    _fails_cleanly(cli("run", "--model", "tiny-qwen2", "--backend", "replay", "--replay", str(replay),
                       "--tasks", "gsm8k", "--data", "fixture", "--output", str(tmp_path)), "bad replay line 1")


@pytest.mark.slow
def test_hub_unreachable_is_a_clear_error(cli, tmp_path: Path) -> None:  # noqa: ANN001
    result = owb("run", "--model", "tiny-qwen2", "--tasks", "gsm8k", "--data", "hf", "--output", str(tmp_path))
    _fails_cleanly(result, "cannot load openai/gsm8k")


def test_unknown_list_target(cli, tmp_path: Path) -> None:  # noqa: ANN001
    _fails_cleanly(cli("list", "widgets"), "'widgets' is not one of 'models', 'tasks'")


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["run", "--no-such-flag"], "No such option: --no-such-flag"),
        (["run", "--limit"], "Option '--limit' requires an argument"),
        (["run", "--limit", "many"], "Invalid value for '--limit'"),
        (["check", "--baseline", "x"], "Missing option '--candidate'"),
        (["frobnicate"], "No such command 'frobnicate'"),
    ],
)
def test_usage_errors_are_one_line(cli, args: list[str], needle: str) -> None:  # noqa: ANN001
    _fails_cleanly(cli(*args), needle)


def test_the_console_script_prints_one_line_too(tmp_path: Path) -> None:
    """The installed `owb` script, as a user runs it: a usage error and a user error."""
    for args, needle in ((["run", "--no-such-flag"], "No such option"), (["list", "widgets"], "is not one of")):
        result = owb(*args)
        _fails_cleanly(result, needle)
