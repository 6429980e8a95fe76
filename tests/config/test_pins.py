"""Pinned revisions, offline: a real Hub cache layout (refs/<branch> -> snapshots/<commit>) built here, the commit
recorded for the model and the data a run loaded, and `owb pin` rewriting branch names as commits."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from harness.config.taskspec import load_task_spec
from harness.core.hub import cached_commit
from harness.engines.weights import resolve_model_path
from harness.tasks.data import load_documents
from tests.helpers import REPO, fixture_rows, owb

MODEL_COMMIT = "89abcdef0123456789abcdef0123456789abcdef"
DATA_COMMIT = "0123456789abcdef0123456789abcdef01234567"


def hub_repo(cache: Path, kind: str, repo: str, commit: str, branch: str = "main") -> Path:
    """A repository in the Hub cache's own layout; returns its snapshot directory."""
    folder = cache / f"{kind}s--{repo.replace('/', '--')}"
    snapshot = folder / "snapshots" / commit
    snapshot.mkdir(parents=True)
    (folder / "refs" / branch).parent.mkdir(parents=True, exist_ok=True)
    (folder / "refs" / branch).write_text(commit)
    return snapshot


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    hub = tmp_path / "hub"
    monkeypatch.setenv("HF_HUB_CACHE", str(hub))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return hub


def test_the_cache_resolves_branches_to_commits(cache: Path) -> None:
    hub_repo(cache, "dataset", "openai/gsm8k", DATA_COMMIT)
    hub_repo(cache, "dataset", "allenai/scitldr", MODEL_COMMIT, branch="refs/convert/parquet")
    assert cached_commit("openai/gsm8k", "dataset", "main") == DATA_COMMIT
    assert cached_commit("allenai/scitldr", "dataset", "refs/convert/parquet") == MODEL_COMMIT
    assert cached_commit("openai/gsm8k", "dataset", "dev") is None
    assert cached_commit("x/y", "model", DATA_COMMIT) == DATA_COMMIT


def test_a_run_records_the_data_commit_it_loaded(cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Hub data at a branch name: the cache's commit goes into the task's data provenance."""
    hub_repo(cache, "dataset", "acme/gsm", DATA_COMMIT)
    spec = load_task_spec("gsm8k")
    spec = spec.model_copy(update={"source": spec.source.model_copy(update={
        "hf": spec.source.hf.model_copy(update={"path": "acme/gsm", "revision": "main"})})})
    monkeypatch.setattr("harness.tasks.data.hub_reachable", lambda: True)
    monkeypatch.setattr("datasets.load_dataset", lambda *a, **k: fixture_rows("gsm8k"))
    data = load_documents(spec, "hf", None, 3)
    assert (data.provenance().revision, data.provenance().resolved_revision) == ("main", DATA_COMMIT)


@pytest.mark.slow
def test_a_run_records_the_model_commit_it_loaded(cache: Path, tmp_path: Path) -> None:
    """A card naming a Hub repo at `main`, loaded by transformers from the cache (offline): run.json holds the
    commit of the snapshot that was loaded."""
    from harness.config.cards import load_card

    snapshot = hub_repo(cache, "model", "acme/tiny-qwen2", MODEL_COMMIT)
    for f in Path(resolve_model_path(load_card("tiny-qwen2"))).iterdir():
        shutil.copy(f, snapshot / f.name)
    card = tmp_path / "hub-card.yaml"
    card.write_text((REPO / "model_cards" / "tiny-qwen2.yaml").read_text().replace("tiny: qwen2",
                                                                                    "hf_repo: acme/tiny-qwen2\nrevision: main"))
    result = owb("run", "--model", str(card), "--tasks", "gsm8k", "--data", "fixture", "--limit", "2",
                 "--output", str(tmp_path / "runs"), env={"HF_HUB_CACHE": str(cache), "HF_HUB_OFFLINE": "1"})
    assert result.returncode == 0, result.stderr
    record = json.loads(next((tmp_path / "runs").glob("*/run.json")).read_text())
    assert record["model"]["path"] == "acme/tiny-qwen2"
    assert (record["model"]["revision"], record["model"]["resolved_revision"]) == ("main", MODEL_COMMIT)


@pytest.mark.slow
def test_owb_pin_writes_commits_into_cards_and_tasks(cache: Path, tmp_path: Path) -> None:
    hub_repo(cache, "model", "Qwen/Qwen3-8B", MODEL_COMMIT)
    hub_repo(cache, "dataset", "openai/openai_humaneval", DATA_COMMIT)
    card, task = tmp_path / "qwen3-8b.yaml", tmp_path / "humaneval.yaml"
    shutil.copy(REPO / "model_cards" / "qwen3-8b.yaml", card)
    shutil.copy(REPO / "tasks" / "humaneval.yaml", task)
    result = owb("pin", str(card), str(task), env={"HF_HUB_CACHE": str(cache), "HF_HUB_OFFLINE": "1"})
    assert result.returncode == 0, result.stderr
    assert f"revision: {MODEL_COMMIT}  # main, pinned" in card.read_text()
    assert f"revision: {DATA_COMMIT}}}  # main, pinned" in task.read_text()
    from harness.config.cards import load_card
    from harness.config.taskspec import read_task_spec

    assert load_card(str(card)).revision == MODEL_COMMIT
    assert read_task_spec(task).source.hf.revision == DATA_COMMIT
    again = owb("pin", str(card), str(task), env={"HF_HUB_CACHE": str(cache), "HF_HUB_OFFLINE": "1"})
    assert "nothing to pin" in again.stdout
    missing = tmp_path / "qwen3-4b.yaml"
    shutil.copy(REPO / "model_cards" / "qwen3-4b.yaml", missing)
    failed = owb("pin", str(missing), env={"HF_HUB_CACHE": str(cache), "HF_HUB_OFFLINE": "1"})
    assert failed.returncode == 2 and "model Qwen/Qwen3-4B@main is not in the Hub cache" in failed.stderr
