"""A new user's first steps, as the CLI review took them: every command answers what was asked or ends with one
`error:` line and exit code 2, never a traceback, never a silent substitute (the demo only for a bare `owb run`)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import FIXTURES, REPO, run_main

V2 = REPO / "tests" / "fixtures" / "v2"


def _one_error(result: object, needle: str) -> None:
    code, stderr = result.returncode, result.stderr  # type: ignore[attr-defined]
    lines = [x for x in stderr.splitlines() if x.strip()]
    assert code == 2 and len(lines) == 1 and lines[0].startswith("error: ") and needle in lines[0], (code, stderr)


def test_the_readme_replay_line_scores_every_output_under_its_own_name(tmp_path: Path) -> None:
    """`owb run --backend replay --replay F --tasks gsm8k ...` (no --model) is not the demo: no demo banner, every
    replayed output scored, the run named by --label (or the backend), no 96-token cap."""
    result = run_main("run", "--backend", "replay", "--replay", str(V2 / "replayed.jsonl"), "--tasks", "gsm8k",
                      "--data", "fixture", "--samples", "3", "--label", "my-outputs", "--output", str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert "demo" not in result.stderr
    run_dir = next(tmp_path.iterdir())
    record = json.loads((run_dir / "run.json").read_text())
    assert record["model"]["id"] == "my-outputs" and "-my-outputs-replay-" in run_dir.name
    fixture_docs = len((FIXTURES / "gsm8k.jsonl").read_text().splitlines())
    assert record["tasks"]["gsm8k"]["n_samples"] == 3 * fixture_docs
    assert record["invocation"]["limit"] is None and record["invocation"]["max_new_tokens"] is None


def test_help_version_and_a_bare_owb(tmp_path: Path) -> None:
    bare = run_main()
    assert bare.returncode == 0 and "COMMAND" in bare.stdout and "error" not in bare.stderr
    assert run_main("--version").stdout.startswith("owb ")
    helped = run_main("run", "-h")
    assert helped.returncode == 0 and "What to run" in helped.stdout and "<str>" not in helped.stdout
    assert "hf|vllm|openai|replay" in helped.stdout and "none|gzip|zstd" in helped.stdout


@pytest.mark.slow
def test_a_mistyped_name_is_caught_before_any_engine_loads() -> None:
    """A typo in a model, task or backend name: one line with the closest names, and torch never imported."""
    probe = ("import sys\nfrom harness.cli import main\nsys.argv = ['owb', 'run', *sys.argv[1:]]\n"
             "try:\n    main()\nexcept SystemExit as exc:\n    print(exc.code, 'torch' in sys.modules)\n")
    for args, needle in ((["--model", "qwen2.5-1.5b-instrct"], "did you mean qwen2.5-1.5b-instruct"),
                         (["--model", "qwen2.5-1.5b-instruct", "--tasks", "gsm8kk"], "did you mean gsm8k"),
                         (["--model", "qwen2.5-1.5b-instruct", "--backend", "vlm"], "did you mean vllm")):
        out = subprocess.run([sys.executable, "-c", probe, *args], capture_output=True, text=True, cwd=REPO)
        assert out.stdout.split() == ["2", "False"], (args, out.stdout, out.stderr)
        assert needle in out.stderr, out.stderr


def test_missing_paths_and_wrong_files_are_one_line(tmp_path: Path) -> None:
    _one_error(run_main("rescore", str(tmp_path / "nowhere")), "not a run directory")
    _one_error(run_main("pin", "--dry-run", str(REPO / "README.md")), "malformed YAML")
    not_a_card = tmp_path / "x.yaml"
    not_a_card.write_text("colour: blue\n")
    _one_error(run_main("pin", "--dry-run", str(not_a_card)), "is not a model card or task spec")
    _one_error(run_main("run", "--tasks", "gsm8k"), "--model is required with --backend hf")


def test_a_failed_start_leaves_no_running_run(tmp_path: Path) -> None:
    """Replayed outputs that do not cover the requests: one error line, and no `running` run with nothing in it."""
    out = tmp_path / "runs"
    _one_error(run_main("run", "--backend", "replay", "--replay", str(V2 / "replayed.jsonl"), "--tasks", "gsm8k",
                        "--data", "fixture", "--samples", "5", "--output", str(out)), "replay has no output")
    assert not any(out.iterdir())


def test_ids_are_never_cut(tmp_path: Path) -> None:
    listed = run_main("list", "models")
    ids = [card["id"] for card in json.loads(run_main("list", "models", "--json").stdout)]
    assert len(ids) > 40 and all(card_id in listed.stdout for card_id in ids)
    assert "…" not in listed.stdout


def _replayed(tmp_path: Path, name: str, *args: str) -> Path:
    out = tmp_path / name
    result = run_main("run", "--backend", "replay", "--replay", str(V2 / "replayed.jsonl"), "--tasks", "gsm8k",
                      "--data", "fixture", "--samples", "3", "--output", str(out), *args)
    assert result.returncode == 0, result.stderr
    return next(out.iterdir())


def test_compare_and_check_refuse_what_cannot_be_done(tmp_path: Path) -> None:
    run = _replayed(tmp_path, "a")
    _one_error(run_main("compare", str(run), "--out", str(tmp_path / "no" / "such" / "x.html")), "does not exist")
    _one_error(run_main("check", "--baseline", str(run), "--candidate", str(run), "--alpha", "5"), "--alpha")
    negative = run_main("check", "--baseline", str(run), "--candidate", str(run), "--max-drop", "-3")
    assert negative.returncode == 2 and "--max-drop" in negative.stderr


def test_unknown_figures_are_shown_as_unknown_not_zero(tmp_path: Path) -> None:
    """Replayed outputs carry no token counts or timings: tokens per correct answer, dollars and speed are unknown
    (`-`), never 0, even with API prices given."""
    run = _replayed(tmp_path, "priced", "--price-in", "1", "--price-out", "2")
    cost = json.loads((run / "run.json").read_text())["tasks"]["gsm8k"]["cost"]
    assert cost["output_tokens_per_correct"] is None and cost["usd"] is None and "unknown" in cost["pricing"]
    table = run_main("compare", str(run), "--format", "md").stdout
    assert "tok/correct" not in table and "$/1k correct" not in table and "| - | - |" in table


def test_many_runs_turn_the_table_and_incomplete_runs_are_named(tmp_path: Path) -> None:
    runs = [_replayed(tmp_path, name) for name in "abcd"]
    record = json.loads((runs[3] / "run.json").read_text())
    record["status"] = "running"
    (runs[3] / "run.json").write_text(json.dumps(record))
    shown = run_main("compare", *map(str, runs))
    assert shown.returncode == 0 and "one column per run" in shown.stdout
    assert all(f"run {i}: {run.name}" in shown.stdout.replace("\n", "") for i, run in enumerate(runs, 1))
    assert f"run {runs[3]} is not complete" in shown.stderr
    directory = run_main("compare", "--format", "csv", str(tmp_path / "a"))  # a directory of runs
    assert directory.returncode == 0 and runs[0].name in directory.stdout
