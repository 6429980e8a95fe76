"""Replay backend: feeds stored completions (from owb, another harness or a served endpoint) back through the same
split and scoring."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from harness.config.cards import ModelCard
from harness.core.errors import ConfigError, DataError, first_error
from harness.engines.base import BackendOptions, Generation, GenRequest, NoReport
from harness.records.base import BackendInfo
from harness.records.sample import sample_key


class ReplayLine(BaseModel):
    """A line of a replay file: which sample, its stored output and, where the source knows them, how it ended and
    how many tokens it had (outputs from another harness or a served endpoint keep their truncation)."""

    model_config = ConfigDict(extra="ignore")

    task: str
    doc_id: str | int
    sample_idx: int = 0
    output: str
    finish_reason: Literal["stop", "length"] = "stop"
    output_tokens: int = 0

    @property
    def key(self) -> str:
        """The sample key this output answers."""
        return sample_key(self.task, str(self.doc_id), self.sample_idx)


class ReplayFile:
    """A replay JSONL file indexed by sample key (byte offsets); lines are read when their sample is generated, so
    the outputs are never all in memory."""

    def __init__(self, path: Path) -> None:
        if not path.is_file():
            raise DataError(f"replay file not found: {path}")
        self.path = path
        self.offsets: dict[str, int] = {}
        with path.open("rb") as handle:
            offset = 0
            for lineno, line in enumerate(handle, 1):
                if line.strip():
                    self.offsets[self._parsed(line, lineno).key] = offset
                offset += len(line)

    def _parsed(self, line: bytes, lineno: int) -> ReplayLine:
        try:
            return ReplayLine.model_validate_json(line)
        except ValidationError as exc:
            raise DataError(f"bad replay line {lineno} in {self.path}: {first_error(exc)}") from None

    def __contains__(self, key: object) -> bool:
        return key in self.offsets

    def get(self, key: str) -> ReplayLine:
        """The stored line of a sample."""
        with self.path.open("rb") as handle:
            handle.seek(self.offsets[key])
            return self._parsed(handle.readline(), 0)


class ReplayOptions(BackendOptions):
    """The replayed file (`--replay FILE`)."""

    replay: str | None = None


class ReplayBackend(NoReport):
    """Returns the stored output for each request key; a key with no stored output is an error."""

    name = "replay"
    Options = ReplayOptions
    measures_speed = False
    needs_card = False
    generates_in_background = False

    def __init__(self, card: ModelCard, options: ReplayOptions) -> None:
        if options.replay is None:
            raise ConfigError("--backend replay needs --replay FILE.jsonl")
        self.outputs = ReplayFile(Path(options.replay))
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
        """The stored output for every request, in order; a request with none is an error before any is returned."""
        missing = [r.key for r in requests if r.key not in self.outputs]
        if missing:
            raise DataError(f"replay has no output for {len(missing)} request(s), first: {missing[0]}")
        return self._stored(requests)

    def _stored(self, requests: Sequence[GenRequest]) -> Iterator[Generation]:
        for request in requests:
            stored = self.outputs.get(request.key)
            yield Generation(key=request.key, text=stored.output, prompt_tokens=0,
                             output_tokens=stored.output_tokens, finish_reason=stored.finish_reason)

    def close(self) -> None:
        """Nothing to free."""
