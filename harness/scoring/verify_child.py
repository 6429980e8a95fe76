"""The math-verify child process: math-verify imported and warmed up once in the forkserver, so each verifier child
(a fork of it) answers its first question at once."""

from __future__ import annotations

import signal
from multiprocessing.connection import Connection

from math_verify import parse, verify

verify(parse("\\boxed{1}"), parse("\\boxed{1/2}"))  # the parser's first call builds its tables: pay it here, once


def verify_loop(conn: Connection) -> None:
    """Answer (gold, prediction) pairs with math-verify's equivalence until the parent closes the pipe."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole process group; the parent handles it
    while True:
        try:
            gold, pred = conn.recv()
        except EOFError:
            return
        try:
            conn.send(bool(verify(parse(gold), parse(pred))))
        except Exception:  # noqa: BLE001 - any parser failure means "not equivalent"
            conn.send(False)
