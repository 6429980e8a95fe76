"""Short stable hashes of JSON-able objects: configs, prompts and documents are told apart by them."""

from __future__ import annotations

import hashlib
import json
from typing import Any


def stable_hash(obj: Any) -> str:
    """sha256 (first 16 hex digits) of an object's canonical JSON."""
    blob = json.dumps(obj, sort_keys=True, ensure_ascii=False, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]
