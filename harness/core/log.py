"""One channel for warnings: the CLI routes it above its progress bars; library callers may route it anywhere."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager

Sink = Callable[[str], None]


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


_sink: Sink = _stderr


def warn(message: str) -> None:
    """Report a warning (one line, prefixed 'warning: ')."""
    _sink(f"warning: {message}")


@contextmanager
def warnings_to(sink: Sink) -> Iterator[None]:
    """Send warnings to `sink` while the block runs."""
    global _sink
    previous, _sink = _sink, sink
    try:
        yield
    finally:
        _sink = previous
