"""The program each LiveCodeBench check runs inside the sandbox, shipped as source (standard library only): it grades
one candidate against a problem's tests the way LiveCodeBench's `run_test` does, and prints one verdict line.

LiveCodeBench's rules, reimplemented: its guard (destructive `os`, `shutil` and `subprocess` functions set to None,
`quit` and `help` removed), its import prelude and recursion limit; functional problems exec the code, take
`Solution()` when the code defines it, call the method with each JSON-decoded input line as an argument and compare
with `==` (a tuple counted as a list); stdin problems lift an `if __name__ == '__main__':` block, wrap the program in a
function, feed the input through patched `sys.stdin` and `open`, capture stdout and compare line by line after
stripping, then element-wise as Decimals. Each test has a SIGALRM of `timeout` seconds; the first failing test ends
the run. A test's result: True, False or -2 wrong answer (functional, stdin), -3 time limit, -4 runtime error."""

from __future__ import annotations

import ast
import base64
import hashlib
import inspect
import json
import sys
import zlib
from typing import Any

TIMEOUT_S = 6  # LiveCodeBench's --evaluation_timeout default: seconds per test
STARTUP_S = 3.0  # unpacking the tests inside the sandbox, on top of LiveCodeBench's process limit
INT_DIGITS = 50000  # sys.set_int_max_str_digits in LiveCodeBench's evaluator process

# LiveCodeBench's prelude, put before every program (the names solutions use without importing them).
PRELUDE_MODULES = ("string", "re", "datetime", "collections", "heapq", "bisect", "copy", "math", "random",
                   "statistics", "itertools", "functools", "operator", "io", "sys", "json")
PRELUDE = ("".join(f"from {m} import *\n" for m in (*PRELUDE_MODULES, "builtins", "typing"))
           + "".join(f"import {m}\n" for m in PRELUDE_MODULES) + "sys.setrecursionlimit(50000)\n")


def process_wall_s(tests: int, timeout: int) -> float:
    """LiveCodeBench's limit on the whole grading process, (timeout + 1) per test + 5 s, plus unpacking."""
    return (timeout + 1) * tests + 5 + STARTUP_S


class TimeoutException(Exception):  # noqa: N818 - LiveCodeBench's name: a timeout is told by it in the repr
    """A test ran past its alarm."""


def _alarm(signum: int, frame: Any) -> None:
    raise TimeoutException


def _guard() -> None:
    """LiveCodeBench's reliability_guard without a memory limit: what it disables, disabled the same way."""
    import builtins
    import os
    import shutil
    import subprocess

    builtins.quit = None  # type: ignore[assignment]
    os.environ["OMP_NUM_THREADS"] = "1"
    for name in ("kill", "system", "putenv", "remove", "removedirs", "rmdir", "fchdir", "setuid", "fork", "forkpty",
                 "killpg", "rename", "renames", "truncate", "replace", "unlink", "fchmod", "fchown", "chmod", "chown",
                 "chroot", "lchflags", "lchmod", "lchown", "getcwd", "chdir"):
        setattr(os, name, None)
    shutil.rmtree = shutil.move = shutil.chown = None  # type: ignore[assignment]
    subprocess.Popen = None  # type: ignore[assignment, misc]
    builtins.help = None  # type: ignore[assignment]
    for name in ("ipdb", "joblib", "resource", "psutil", "tkinter"):
        sys.modules[name] = None  # type: ignore[assignment]


def _compile(code: str, timeout: int) -> Any:
    """The code's module (or its `Solution()` for LeetCode-style code), built under the alarm."""
    import signal
    import types

    signal.alarm(timeout)
    try:
        module = types.ModuleType("tmp_sol", "")
        exec(code, module.__dict__)
        return module.Solution() if "class Solution" in code else module
    finally:
        signal.alarm(0)


def _lift_main(code: str) -> str:
    """An `if __name__ == '__main__':` block at the end becomes top-level code (LiveCodeBench's clean_if_name)."""
    try:
        tree = ast.parse(code)
        last = tree.body[-1]
        if isinstance(last, ast.If) and ast.unparse(last.test).strip() == "__name__ == '__main__'":
            code = ast.unparse(tree.body[:-1]) + "\n" + ast.unparse(last.body)  # type: ignore[arg-type]
    except Exception:  # noqa: BLE001 - a program that does not parse is left as it is
        pass
    return code


def _as_function(code: str) -> str:
    """The prelude, the program's imports, and the rest of it as `wrapped_function` (LiveCodeBench's make_function)."""
    try:
        tree = ast.parse(code)
        imports = [s for s in tree.body if isinstance(s, (ast.Import, ast.ImportFrom))]
        rest = [s for s in tree.body if not isinstance(s, (ast.Import, ast.ImportFrom))]
        function = ast.FunctionDef(name="wrapped_function", args=ast.arguments(
            posonlyargs=[], args=[], kwonlyargs=[], kw_defaults=[], defaults=[]), body=rest, decorator_list=[],
            lineno=-1)
        return PRELUDE + "\n" + ast.unparse(imports) + "\n" + ast.unparse(function)  # type: ignore[arg-type]
    except Exception:  # noqa: BLE001 - as LiveCodeBench: the program as it is
        return code


def _with_stdin(method: Any, text: str) -> None:
    """Call `method` with `text` as its standard input and as any file it opens; SystemExit ends it quietly."""
    from io import StringIO
    from unittest.mock import mock_open, patch

    lines = iter(text.split("\n"))

    @patch("builtins.open", mock_open(read_data=text))
    @patch("sys.stdin", StringIO(text))
    @patch("sys.stdin.readline", lambda *args: next(lines))
    @patch("sys.stdin.readlines", lambda *args: text.split("\n"))
    @patch("sys.stdin.read", lambda *args: text)
    def call(inner: Any) -> Any:
        try:
            return inner()
        except SystemExit:
            pass

    call(method)


def _stdout_of(method: Any, text: str) -> str:
    """What `method` prints with `text` as its input, stdout captured as LiveCodeBench's Capturing does."""
    from io import StringIO

    saved, sys.stdout = sys.stdout, StringIO()
    sys.stdout.close = lambda x: 1  # type: ignore[assignment, method-assign, misc]
    try:
        _with_stdin(method, text)
        return str(sys.stdout.getvalue())
    finally:
        sys.stdout = saved


def _same_lines(got: str, want: str) -> bool:
    """LiveCodeBench's stdout check: the same number of stripped lines, each equal or equal as Decimals."""
    from decimal import Decimal

    got_lines = [line.strip() for line in got.strip().split("\n")]
    want_lines = [line.strip() for line in want.strip().split("\n")]
    if len(got_lines) != len(want_lines):
        return False
    for a, b in zip(got_lines, want_lines, strict=True):
        if a == b:
            continue
        try:
            if [Decimal(x) for x in a.split()] != [Decimal(x) for x in b.split()]:
                return False
        except Exception:  # noqa: BLE001 - as LiveCodeBench: a line that is not numbers is a wrong answer
            return False
    return True


def _failure(exc: BaseException) -> int:
    return -3 if "timeoutexception" in repr(exc).lower() else -4


def _grade_functional(code: str, job: dict[str, Any]) -> list[Any]:
    import signal

    solution = _compile(PRELUDE + "\n\n" + code, job["timeout"])
    method = getattr(solution, job["fn_name"])
    inputs = [[json.loads(line) for line in text.split("\n")] for text in job["inputs"]]
    outputs = [json.loads(text) for text in job["outputs"]]
    results: list[Any] = []
    for args, want in zip(inputs, outputs, strict=True):
        signal.alarm(job["timeout"])
        try:
            got = method(*args)
            signal.alarm(0)
            ok = (list(got) if isinstance(got, tuple) else got) == want
        except Exception as exc:  # noqa: BLE001 - the candidate's error is its result
            signal.alarm(0)
            return [*results, _failure(exc)]
        finally:
            signal.alarm(0)
        results.append(ok)  # LiveCodeBench records the comparison itself here: False for a wrong answer
        if not ok:
            return results
    return results


def _grade_stdin(code: str, job: dict[str, Any]) -> list[Any]:
    import signal

    solution = _compile(_as_function(_lift_main(code)), job["timeout"])
    method = solution.wrapped_function
    results: list[Any] = []
    for text, want in zip(job["inputs"], job["outputs"], strict=True):
        signal.alarm(job["timeout"])
        try:
            got = _stdout_of(method, text)
            signal.alarm(0)
        except Exception as exc:  # noqa: BLE001 - the candidate's error is its result
            signal.alarm(0)
            return [*results, _failure(exc)]
        finally:
            signal.alarm(0)
        ok = _same_lines(got, want)
        results.append(True if ok else -2)
        if not ok:
            return results
    return results


def _lcb_main(packed_job: str, packed_tests: str, nonce: str) -> None:
    """Grade the candidate (`packed_job`: code, fn_name, timeout) on the tests (`packed_tests`: inputs, outputs) and
    print `nonce` and the per-test results as one JSON line."""
    import os
    import signal

    unpack = lambda text: json.loads(zlib.decompress(base64.b64decode(text)))  # noqa: E731
    job = {**unpack(packed_job), **unpack(packed_tests)}
    write, out = os.write, sys.__stdout__.fileno() if sys.__stdout__ else 1
    sys.set_int_max_str_digits(INT_DIGITS)
    signal.signal(signal.SIGALRM, _alarm)
    _guard()
    grade = _grade_functional if job["fn_name"] else _grade_stdin
    try:
        results = grade(job["code"], job)
    except Exception as exc:  # noqa: BLE001 - LiveCodeBench: an error while testing fails the whole candidate
        results = [-4]
        sys.stderr.write(f"error during testing: {exc!r}\n")
    sys.stdout.flush()
    write(out, f"\n{nonce} {json.dumps(results)}\n".encode())


_SHIPPED = (TimeoutException, _alarm, _guard, _compile, _lift_main, _as_function, _with_stdin, _stdout_of, _same_lines,
            _failure, _grade_functional, _grade_stdin, _lcb_main)
SOURCE = (f"import ast\nimport base64\nimport json\nimport sys\nimport zlib\nfrom typing import Any\n\n"
          f"PRELUDE = {PRELUDE!r}\nINT_DIGITS = {INT_DIGITS}\n\n\n"
          + "\n\n\n".join(inspect.getsource(o) for o in _SHIPPED))
DRIVER_HASH = hashlib.sha256(f"{SOURCE}\n{sys.version}".encode()).hexdigest()[:16]
