"""The errors a user can cause: each ends a command with one clear line and exit code 2.

Library callers can tell them apart by class; the CLI treats every `UserError` alike."""

from __future__ import annotations

import difflib
from collections.abc import Iterable

from pydantic import ValidationError


class UserError(Exception):
    """Bad input or environment (unknown model, malformed YAML, missing data, no GPU, server down)."""


class ConfigError(UserError):
    """A card, task spec, option or run directory that is malformed or does not fit together."""


class DataError(UserError):
    """Task data that is missing, unreadable or unreachable."""


class EngineError(UserError):
    """An inference engine that is missing, cannot load the model or failed while generating."""


class ServerError(UserError):
    """An OpenAI-compatible server that is down or answered with an error."""


class Interrupted(Exception):
    """The user stopped a run (Ctrl-C); finished samples are on disk and `owb run --resume` finishes it."""

    def __init__(self, run_dir: str) -> None:
        super().__init__(f"interrupted: finished samples are saved; finish with `owb run --resume {run_dir}`")
        self.run_dir = run_dir


class StorageError(UserError):
    """The disk refused a write (full, over quota): what was written before is intact."""


def first_error(exc: ValidationError) -> str:
    """A pydantic validation error's first problem in one line: where it is and what is wrong."""
    err = exc.errors()[0]
    loc = ".".join(str(p) for p in err["loc"]) or "(top level)"
    return f"{loc}: {err['msg']}"


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message (its class name when it has none), for one-line errors."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def did_you_mean(name: str, known: Iterable[str]) -> str:
    """"; did you mean X?" for the known names closest to a mistyped one ("" when none is close)."""
    close = difflib.get_close_matches(name, list(known), n=3)
    return f"; did you mean {' or '.join(close)}?" if close else ""
