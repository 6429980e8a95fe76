"""Error classes tell causes apart: config, data, engine, storage."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.config.taskspec import load_task_spec
from harness.core.errors import ConfigError, DataError
from harness.records.run import RunRecord


def test_error_classes_tell_causes_apart(tmp_path: Path) -> None:
    from harness.config.cards import load_card
    from harness.tasks.data import load_documents

    with pytest.raises(ConfigError):
        load_card("no-such-model")
    with pytest.raises(DataError):
        load_documents(load_task_spec("gsm8k"), "local", tmp_path, None)
    record = RunRecord.model_json_schema()
    assert "invocation" in record["properties"]
