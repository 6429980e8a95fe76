"""`owb pin`: rewrites the Hub branch names of cards and tasks as the commits they name now."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from harness.config.base import load_yaml
from harness.core.errors import ConfigError
from harness.core.hub import COMMIT, RepoType, resolve_commit


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
    data = load_yaml(path)  # a missing, unreadable or malformed file, or one that is not a mapping: one clear error
    if not (data.get("hf_repo") or data.get("id") or data.get("source")):
        raise ConfigError(f"{path} is not a model card or task spec (no hf_repo, id or source)")
    text = path.read_text()
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
