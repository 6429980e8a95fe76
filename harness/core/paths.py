"""Where owb finds its own files (cards, tasks) and keeps what it makes ($OWB_HOME)."""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
CARDS_DIR = REPO_ROOT / "model_cards"
TASKS_DIR = REPO_ROOT / "tasks"


def owb_home() -> Path:
    """Where owb keeps made things (tiny models): $OWB_HOME or ~/.cache/owb."""
    return Path(os.environ.get("OWB_HOME", Path.home() / ".cache" / "owb"))
