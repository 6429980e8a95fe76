"""The math-verify child process: math-verify imported and warmed up once in the forkserver, so each verifier child
(a fork of it) answers its first question at once."""

from __future__ import annotations

import signal
from functools import lru_cache
from multiprocessing.connection import Connection
from typing import Any

from math_verify import parse, verify

from harness.scoring.answer_region import parse_answer

verify(parse("\\boxed{1}"), parse("\\boxed{1/2}"))  # the parser's first call builds its tables: pay it here, once


@lru_cache(maxsize=256)
def _parsed_gold(gold: str) -> list[Any]:
    """A reference answer parsed once: a document's K samples share it."""
    return list(parse(gold))


def verify_loop(conn: Connection) -> None:
    """Answer (gold, prediction) pairs with math-verify's equivalence until the parent closes the pipe; the
    prediction is parsed where math-verify's extraction can find its answer (harness.scoring.answer_region)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole process group; the parent handles it
    while True:
        try:
            gold, pred = conn.recv()
        except EOFError:
            return
        try:
            conn.send(bool(verify(_parsed_gold(gold), parse_answer(pred))))
        except Exception:  # noqa: BLE001 - any parser failure means "not equivalent"
            conn.send(False)
