"""Errors a user can cause end with one clear line on stderr and exit code 2, never a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import owb


def _fails_cleanly(result, needle: str) -> None:
    assert result.returncode == 2, (result.returncode, result.stderr)
    assert "Traceback" not in result.stderr
    lines = [x for x in result.stderr.splitlines() if x.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ") and needle in lines[0], lines[0]


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--model", "no-such-model"], "unknown model 'no-such-model'"),
        (["--model", "tiny-qwen2", "--tasks", "gsm9k"], "unknown task 'gsm9k'"),
        (["--model", "tiny-qwen2", "--data-dir", "/nonexistent/data"], "data directory not found"),
        (["--model", "tiny-qwen2", "--backend", "tgi"], "unknown backend 'tgi'"),
        (["--model", "tiny-qwen2", "--thinking", "maybe"], "--thinking must be on or off"),
        (["--model", "tiny-qwen2", "--thinking", "on", "--data", "fixture"], "has no thinking mode"),
        (["--model", "tiny-llama", "--thinking", "off", "--data", "fixture"], "always thinks"),
        (["--model", "tiny-qwen2", "--backend", "replay", "--data", "fixture"], "needs --replay"),
        (["--resume", "/nonexistent/run"], "not a run directory"),
        (["--model", "tiny-qwen2", "--backend", "vllm", "--device", "cpu", "--data", "fixture"], "backend vllm: unknown option 'device'"),
        (["--model", "tiny-qwen2", "--engine-arg", "tensor_parallel_size=2", "--data", "fixture"], "backend hf: unknown option 'tensor_parallel_size'"),
        (["--model", "tiny-qwen2", "--engine-arg", "novalue", "--data", "fixture"], "--backend-arg takes KEY=VALUE"),
    ],
)
def test_bad_arguments_exit_2_with_one_line(args: list[str], needle: str, tmp_path: Path) -> None:
    _fails_cleanly(owb("run", *args, "--output", str(tmp_path)), needle)


def test_missing_file_in_data_dir(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    _fails_cleanly(owb("run", "--model", "tiny-qwen2", "--tasks", "math500", "--data-dir", str(tmp_path / "data"),
                       "--output", str(tmp_path)), "math500/test.jsonl not found in data directory")


def test_malformed_card_yaml(tmp_path: Path) -> None:
    card = tmp_path / "bad.yaml"
    card.write_text("id: bad\nfamily: [unclosed\n")
    _fails_cleanly(owb("run", "--model", str(card), "--output", str(tmp_path)), "malformed YAML")


def test_card_with_unknown_field_is_rejected(tmp_path: Path) -> None:
    card = tmp_path / "extra.yaml"
    card.write_text("id: x\nfamily: qwen2.5\narchitecture: qwen2\ntiny: qwen2\ntemprature: 0.7\n")
    _fails_cleanly(owb("run", "--model", str(card), "--output", str(tmp_path)), "temprature")


def test_bad_replay_line(tmp_path: Path) -> None:
    replay = tmp_path / "r.jsonl"
    replay.write_text('{"task": "gsm8k", "doc_id": "0"}\n')
    _fails_cleanly(owb("run", "--model", "tiny-qwen2", "--backend", "replay", "--replay", str(replay),
                       "--tasks", "gsm8k", "--data", "fixture", "--output", str(tmp_path)), "bad replay line 1")


def test_hub_unreachable_is_a_clear_error(tmp_path: Path) -> None:
    result = owb("run", "--model", "tiny-qwen2", "--tasks", "gsm8k", "--data", "hf", "--output", str(tmp_path))
    _fails_cleanly(result, "cannot load openai/gsm8k")


def test_unknown_list_target(tmp_path: Path) -> None:
    _fails_cleanly(owb("list", "widgets"), "owb list takes")
