"""Replay backend: feeds stored completions back through the same split and scoring (rescore, tests)."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from harness.config.cards import ModelCard
from harness.core.errors import ConfigError, DataError
from harness.engines.base import BackendOptions, Generation, GenRequest, NoReport
from harness.records.base import BackendInfo
from harness.records.sample import sample_key


def read_replay(path: Path) -> dict[str, str]:
    """Outputs by key from a JSONL file of {"task", "doc_id", "sample_idx", "output"} lines."""
    if not path.is_file():
        raise DataError(f"replay file not found: {path}")
    outputs: dict[str, str] = {}
    for lineno, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            key = sample_key(row["task"], str(row["doc_id"]), int(row.get("sample_idx", 0)))
            outputs[key] = str(row["output"])
        except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            raise DataError(f"bad replay line {lineno} in {path}: {exc}") from None
    return outputs


class ReplayOptions(BackendOptions):
    """The replayed file (`--replay FILE`)."""

    replay: str | None = None


class ReplayBackend(NoReport):
    """Returns the stored output for each request key; a key with no stored output is an error."""

    name = "replay"
    Options = ReplayOptions
    measures_speed = False
    generates_in_background = False

    def __init__(self, card: ModelCard, options: ReplayOptions, outputs: dict[str, str] | None = None) -> None:
        if outputs is None:
            if options.replay is None:
                raise ConfigError("--backend replay needs --replay FILE.jsonl")
            outputs = read_replay(Path(options.replay))
        self.outputs = outputs
        self.source = options.replay

    def describe(self) -> BackendInfo:
        """Name and the replayed file."""
        return BackendInfo(name=self.name, version=None, args={"replay": self.source})
    def render_chat(self, messages: list[dict[str, str]], template_kwargs: dict[str, Any]) -> str:
        """No template: the messages' contents, one after another."""
        return "\n\n".join(m["content"] for m in messages)

    def count_tokens(self, text: str) -> int:
        """No tokenizer: 0."""
        return 0

    def vocab(self) -> tuple[int, frozenset[int]]:
        """No tokenizer: an empty vocabulary."""
        return 0, frozenset()

    def generate(self, requests: Sequence[GenRequest]) -> Iterator[Generation]:
        """The stored output for every request, in order."""
        missing = [r.key for r in requests if r.key not in self.outputs]
        if missing:
            raise DataError(f"replay has no output for {len(missing)} request(s), first: {missing[0]}")
        for request in requests:
            yield Generation(
                key=request.key,
                text=self.outputs[request.key],
                prompt_tokens=0,
                output_tokens=0,
                finish_reason="stop",
            )

    def close(self) -> None:
        """Nothing to free."""
