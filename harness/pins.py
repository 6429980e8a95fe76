"""Commits, not branch names: the commit the Hub cache resolved a revision to (recorded in run.json for the model
and the data), and `owb pin`, which rewrites cards' and tasks' branch names as commits."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Literal

import yaml

from harness.errors import DataError

RepoType = Literal["model", "dataset"]
COMMIT = re.compile(r"^[0-9a-f]{40}$")


def hub_cache() -> Path:
    """The Hugging Face Hub cache directory ($HF_HUB_CACHE, else $HF_HOME/hub, else ~/.cache/huggingface/hub)."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"])
    home = Path(os.environ.get("HF_HOME") or Path.home() / ".cache" / "huggingface")
    return home / "hub"


def cached_commit(repo_id: str, repo_type: RepoType, revision: str | None) -> str | None:
    """The commit the local Hub cache holds for `revision` (a commit is its own answer; None: not in the cache)."""
    if revision and COMMIT.match(revision):
        return revision
    folder = hub_cache() / f"{repo_type}s--{repo_id.replace('/', '--')}"
    ref = folder / "refs" / (revision or "main")
    if not ref.is_file():
        return None
    commit = ref.read_text().strip()
    return commit if (folder / "snapshots" / commit).is_dir() else None


def resolve_commit(repo_id: str, repo_type: RepoType, revision: str) -> str:
    """The commit a branch or tag names now: asked of the Hub, or read from the cache when HF_HUB_OFFLINE=1."""
    if COMMIT.match(revision):
        return revision
    if os.environ.get("HF_HUB_OFFLINE") == "1":
        commit = cached_commit(repo_id, repo_type, revision)
        if commit is None:
            raise DataError(f"{repo_type} {repo_id}@{revision} is not in the Hub cache {hub_cache()} (offline)")
        return commit
    try:
        from huggingface_hub import HfApi

        sha = HfApi().repo_info(repo_id, repo_type=repo_type, revision=revision).sha
    except Exception as exc:  # noqa: BLE001 - network, auth and not-found errors all end here
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise DataError(f"cannot resolve {repo_type} {repo_id}@{revision} on the Hub: {first}") from None
    if not sha:
        raise DataError(f"the Hub gave no commit for {repo_type} {repo_id}@{revision}")
    return str(sha)


@dataclass(frozen=True)
class Pin:
    """One revision written as a commit."""

    file: Path
    repo: str
    revision: str
    commit: str


def _pin_line(text: str, pattern: str, commit: str, revision: str) -> str:
    note = f"  # {revision}, pinned {date.today().isoformat()}"
    return re.sub(pattern, lambda m: f"{m.group(1)}{commit}{m.group(3)}{note}", text, count=1)


def pin_file(path: Path, dry_run: bool = False) -> list[Pin]:
    """Pin the Hub revisions a card (hf_repo + revision) or task (source.hf) YAML names by a branch or tag."""
    text = path.read_text()
    data = yaml.safe_load(text) or {}
    found: list[tuple[str, RepoType, str, str]] = []
    if data.get("hf_repo") and data.get("revision") and not COMMIT.match(str(data["revision"])):
        found.append((data["hf_repo"], "model", str(data["revision"]),
                      r"(?m)^(revision:\s*)(['\"]?[^'\"\s#]+['\"]?)()"))
    hf = (data.get("source") or {}).get("hf") or {}
    if hf.get("path") and hf.get("revision") and not COMMIT.match(str(hf["revision"])):
        found.append((hf["path"], "dataset", str(hf["revision"]),
                      r"(?m)^(\s*hf:.*\brevision:\s*)(['\"]?[^'\",}\s]+['\"]?)(.*)$"))
    pins = []
    for repo, kind, revision, pattern in found:
        commit = resolve_commit(repo, kind, revision)
        text = _pin_line(text, pattern, commit, revision)
        pins.append(Pin(path, repo, revision, commit))
    if pins and not dry_run:
        path.write_text(text)
    return pins
