"""The Hugging Face Hub as owb sees it: the local cache, the commit a revision resolves to, and whether the Hub can
be reached at all (so an offline machine fails in seconds)."""

from __future__ import annotations

import os
import re
import socket
from pathlib import Path
from typing import Literal
from urllib.parse import urlparse

from harness.core.errors import DataError, first_line


def hub_reachable() -> bool:
    """A quick TCP check of the Hub endpoint, so an offline machine fails in seconds, not after retries."""
    if os.environ.get("HF_HUB_OFFLINE") == "1":
        return True  # datasets will use its local cache
    url = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co"))
    try:
        socket.create_connection((url.hostname or "huggingface.co", url.port or 443), timeout=3).close()
    except OSError:
        return False
    return True


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
        raise DataError(f"cannot resolve {repo_type} {repo_id}@{revision} on the Hub: {first_line(exc)}") from None
    if not sha:
        raise DataError(f"the Hub gave no commit for {repo_type} {repo_id}@{revision}")
    return str(sha)
