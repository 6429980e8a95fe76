"""Pydantic models of model cards and task specs, and their loading from YAML (unknown fields rejected)."""

from __future__ import annotations

import hashlib
import json
from typing import Any


def stable_hash(obj: Any) -> str:
    """sha256 (first 16 hex digits) of an object's canonical JSON."""
    blob = json.dumps(obj, sort_keys=True, ensure_ascii=False, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]
