"""The program each EvalPlus check runs inside the sandbox, shipped as source: standard library only, sealed (the
comparison helpers are captured before candidate code runs), and hashed (DRIVER_HASH) into the expected-output
cache key. EvalPlus's time limits are here too."""

from __future__ import annotations

import hashlib
import inspect
import io
import math
import pickle
import sys
from typing import Any

# EvalPlus's time limits (evalplus/config.py; evalplus/eval/__init__.py:untrusted_check): each input may take
# max(MIN_TIME_LIMIT, GT_TIME_LIMIT_FACTOR * the canonical solution's time), a phase (base or plus inputs)
# min(TIMEOUT_PER_TASK, the sum of those) + 1 s, and the process is joined 1 s later still.
GT_TIME_LIMIT_FACTOR = 4.0
MIN_TIME_LIMIT = 4.0
TIMEOUT_PER_TASK = 60.0
PHASE_SLACK_S = 2.0
STARTUP_S = 5.0  # interpreter start and unpacking the inputs, on top of the phases
REFERENCE_WALL_S = 600.0  # EvalPlus computes expected outputs without a limit; Mbpp/599 alone takes ~60 s
BIG_OUTPUT = 1 << 16  # pickled bytes above which an expected output is kept as a digest, not embedded
PHASES = ("base", "plus")


class _TimeLimit(Exception):
    """An input's (or a phase's) time limit passed (EvalPlus's TimeoutException)."""


def _plain(x: Any, scalars: frozenset[int] = frozenset(map(id, (type(None), bool, int, float, complex, str, bytes)))
           ) -> Any:
    """`x` rebuilt from Python's builtin types, read through their own methods, so that a subclass's __eq__,
    __iter__ or __len__ never runs; an object of any other type raises TypeError."""
    t = type(x)
    if id(t) in scalars:
        return x
    for base, read in ((list, list.__iter__), (tuple, tuple.__iter__), (set, set.__iter__),
                       (frozenset, frozenset.__iter__)):
        if issubclass(t, base):
            return x if t is base and {*map(id, map(type, x))} <= scalars else base(map(_plain, read(x)))
    if issubclass(t, dict):
        return dict(zip(map(_plain, dict.keys(x)), map(_plain, dict.values(x)), strict=True))
    for scalar, convert in ((int, int.__int__), (float, float.__float__), (complex, complex.__complex__),
                            (str, str.__str__), (bytes, bytes.__bytes__)):
        if issubclass(t, scalar):
            return convert(x)
    raise TypeError("the output is not built from Python's builtin types")


def _digest(x: Any, sha256: Any = hashlib.sha256, pickler: Any = pickle.Pickler, buffer: Any = io.BytesIO) -> str:
    """sha256 of a builtin value pickled without its memo (so shared and equal objects pickle alike), standing for
    an output too large to embed: equal digests mean equal values, different ones are checked on the values."""
    stream = buffer()
    dumper = pickler(stream, 4)
    dumper.fast = True
    dumper.dump(x)
    return str(sha256(stream.getbuffer()).hexdigest())


def _is_floats(x: Any) -> bool:
    """EvalPlus's is_floats: a float, or a non-empty list or tuple of floats."""
    if isinstance(x, float):
        return True
    return isinstance(x, (list, tuple)) and bool(x) and all(isinstance(i, float) for i in x)


def _flat(x: Any) -> tuple[tuple[int, ...], list[Any]]:
    """Shape and elements of a number or a nested list/tuple of numbers as numpy reads it (ValueError: ragged,
    TypeError: not numeric)."""
    if type(x) in (bool, int, float, complex):
        return (), [x]
    if type(x) not in (list, tuple):
        raise TypeError("not a number or a sequence of numbers")
    parts = [_flat(v) for v in x]
    shapes = {shape for shape, _ in parts}
    if len(shapes) > 1:
        raise ValueError("ragged sequence")
    return (len(x), *(shapes.pop() if shapes else ())), [e for _, elements in parts for e in elements]


def _allclose(a: Any, b: Any, atol: float, rtol: float = 1e-07) -> bool:
    """numpy.allclose(a, b, rtol=1e-07, atol=atol), for numbers and equally shaped nested lists/tuples of them."""
    shape_a, xs = _flat(a)
    shape_b, ys = _flat(b)
    return shape_a == shape_b and all(x == y or abs(x - y) <= atol + rtol * abs(y) for x, y in zip(xs, ys, strict=True))


def _poly(xs: list[float], x: float, power: Any = math.pow) -> float:
    """HumanEval/32's polynomial, EvalPlus's oracle for find_zero."""
    return float(sum(coeff * power(x, i) for i, coeff in enumerate(xs)))


def _surface_area(base_edge: float, height: float, sqrt: Any = math.sqrt) -> int:
    """EvalPlus's oracle for Mbpp/581 (the height taken as the pyramid's perpendicular height)."""
    slant_height = sqrt((base_edge / 2) ** 2 + height**2)
    return round(base_edge**2 + 4 * (base_edge * slant_height) / 2)


def _digit_distance(num1: int, num2: int) -> int:
    """EvalPlus's oracle for Mbpp/558 (the shorter number padded with zeros)."""
    a, b = str(num1), str(num2)
    width = max(len(a), len(b))
    return sum(abs(int(x) - int(y)) for x, y in zip(a.zfill(width), b.zfill(width), strict=True))


def _check(oracle: str, out: Any, out_type: type, exp: Any, inp: Any, atol: float) -> tuple[bool, float]:
    """EvalPlus's verdict on one output (unsafe_execute): equality or the task's special oracle, else numpy-allclose
    within `atol` for outputs of the expected type and length. Returns the verdict and the tolerance for the next
    inputs: as in EvalPlus, 1e-6 is enforced from the first float output on."""
    if oracle == "find_zero":
        return abs(_poly(inp[0], out)) <= atol, atol
    exact = out == exp
    if oracle == "are_equivalent":
        exact = True
    elif oracle == "sum_div":
        exact = exact or out == 0
    elif oracle == "surface_area":
        exact = exact or abs(out - _surface_area(*inp)) <= atol
    elif oracle == "digit_distance":
        exact = exact or out == _digit_distance(*inp)
    elif oracle == "set_eq":
        exact = set(out) == set(exp)
    if atol == 0 and _is_floats(exp):
        atol = 1e-6
    if not exact and atol != 0:
        shaped = out_type is type(exp) and (not isinstance(exp, (list, tuple)) or len(out) == len(exp))
        return shaped and _allclose(out, exp, atol), atol
    return bool(exact), atol


def _compare(raw: Any, want: tuple[Any, ...], blob: bytes, ref_fn: Any, job: dict[str, Any], atol: float,
             loads: Any = pickle.loads) -> tuple[bool, float]:
    """A candidate's output for the input pickled in `blob` against the expected one: `want` is ("v", pickled
    output) or, for an output too large to embed, ("h", digest, is_floats), and a digest that differs sends the
    comparison to an output the canonical solution `ref_fn` computes again on a fresh copy of the input."""
    if job["not_none"] and type(raw) is not bool:
        out, out_type = raw is not None, bool
    else:
        out, out_type = _plain(raw), type(raw)
    if want[0] == "h":
        if _digest(out) == want[1]:
            return True, 1e-6 if atol == 0 and want[2] else atol  # EvalPlus: the exact match passes
        exp = _plain(ref_fn(*loads(blob)))
    else:
        exp = _plain(loads(want[1]))
    inp = loads(blob) if job["oracle"] in ("find_zero", "surface_area", "digit_distance") else None
    return _check(job["oracle"], out, out_type, exp, inp, atol)


def _quiet() -> tuple[int, int]:
    """Point stdin, stdout and stderr at /dev/null (what the code prints is dropped, as EvalPlus's swallow_io drops
    it) and return private copies of the real stdout and stderr."""
    import os

    out, err = os.dup(1), os.dup(2)
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    os.close(null)
    return out, err


def _seal(objects: list[Any]) -> dict[str, Any]:
    """The driver's definitions re-made over a private namespace holding a snapshot of the builtins, so that code
    run later in the process cannot swap a function or builtin the driver calls."""
    import builtins
    import types

    env: dict[str, Any] = {"__builtins__": dict(vars(builtins))}
    for obj in objects:
        env[obj.__name__] = (types.FunctionType(obj.__code__, env, obj.__name__, obj.__defaults__)
                             if isinstance(obj, types.FunctionType) else obj)
    return env


def _candidate_main(job_blob: str, inputs_blob: str, expected_blob: str, nonce: str) -> None:
    """The driver: the candidate on the base inputs, then (all passed) on the plus inputs, each call under its time
    limit and each phase under its budget, every output compared here; one `<nonce> <phase> <verdict>` line per
    phase on the real stdout, the first failure on stderr."""
    import base64
    import builtins
    import os
    import pickle
    import signal
    import sys
    import time
    import zlib

    loads, clock, write, dup2 = pickle.loads, time.perf_counter, os.write, os.dup2
    setitimer, handle, alrm, real = signal.setitimer, signal.signal, signal.SIGALRM, signal.ITIMER_REAL
    blobs = (job_blob, inputs_blob, expected_blob)
    job, inputs, expected = (loads(zlib.decompress(base64.b64decode(b))) for b in blobs)
    stdout, stderr = sys.stdout, sys.stderr
    out_fd, err_fd = _quiet()
    reference: dict[str, Any] = {"__builtins__": dict(vars(builtins))}
    exec(job["ref_code"], reference)
    ref_fn = reference[job["entry"]]

    def alarm(signum: int, frame: object) -> None:
        raise _TimeLimit()

    for phase in ("base", "plus"):
        limits, atol, index, verdict, detail = job["limits"][phase], job["atol"], -1, "pass", ""
        deadline = clock() + job["budget"][phase]
        try:
            handle(alrm, alarm)
            setitimer(real, job["budget"][phase])
            try:
                env: dict[str, Any] = {"__name__": "__candidate__", "__builtins__": builtins}
                exec(job["code"], env)
                fn = env[job["entry"]]
            finally:
                setitimer(real, 0)
            for index, (blob, want) in enumerate(zip(inputs[phase], expected[phase], strict=True)):
                left = deadline - clock()
                if left <= 0:
                    raise _TimeLimit()
                handle(alrm, alarm)
                setitimer(real, min(limits[index], left))
                try:
                    raw = fn(*loads(blob))
                finally:
                    setitimer(real, 0)
                start = clock()
                ok, atol = _compare(raw, want, blob, ref_fn, job, atol)
                deadline += (clock() - start) if want[0] == "h" else 0.0  # re-computing an output is not its time
                if not ok:
                    verdict, detail = "fail", "wrong output"
                    break
        except _TimeLimit:
            verdict = "timeout"
            detail = f"the phase's {job['budget'][phase]:.2f} s" if clock() >= deadline or index < 0 \
                else f"the input's {limits[index]:.2f} s"
        except BaseException as exc:  # noqa: B036 - whatever the candidate raises fails the input, as in EvalPlus
            verdict, detail = "fail", f"{type(exc).__name__}: {exc}"[:300]
        write(out_fd, f"{nonce} {phase} {verdict}\n".encode())
        if verdict != "pass":
            where = f"input {index + 1} of {len(limits)}" if index >= 0 else "loading the code"
            write(err_fd, f"{phase} {verdict} at {where}: {detail}\n".encode("utf-8", "replace"))
            break
    try:
        stdout.flush()
    except BaseException:  # noqa: B036 - the candidate may have closed or replaced it
        pass
    dup2(out_fd, 1)
    dup2(err_fd, 2)
    sys.stdout, sys.stderr = stdout, stderr


def _reference_main(job_blob: str, inputs_blob: str, nonce: str) -> None:
    """The reference run: the canonical solution on a fresh copy of every input (EvalPlus deep-copies them), timed
    per call; one stdout line `<nonce> <times, digested outputs and digest time as JSON> <outputs, packed>`."""
    import base64
    import json
    import os
    import pickle
    import time
    import zlib

    job, inputs = (pickle.loads(zlib.decompress(base64.b64decode(b))) for b in (job_blob, inputs_blob))
    out_fd, err_fd = _quiet()
    expected: dict[str, tuple[Any, ...]] = {}
    meta: dict[str, Any] = {"times": {}, "big": {}, "digest_s": 0.0}
    try:
        for phase in ("base", "plus"):
            env: dict[str, Any] = {}
            exec(job["ref_code"], env)
            fn = env[job["entry"]]
            values: list[tuple[Any, ...]] = []
            times, big = [], []
            for index, blob in enumerate(inputs[phase]):
                inp = pickle.loads(blob)
                start = time.perf_counter()
                out = fn(*inp)
                times.append(time.perf_counter() - start)
                out = out is not None if job["not_none"] else out
                data = pickle.dumps(out, 4)
                if len(data) > job["big"]:
                    start = time.perf_counter()
                    values.append(("h", _digest(_plain(out)), _is_floats(out)))
                    big.append(index)
                    meta["digest_s"] += time.perf_counter() - start
                else:
                    values.append(("v", data))
            expected[phase], meta["times"][phase], meta["big"][phase] = tuple(values), times, big
    finally:
        os.dup2(out_fd, 1)
        os.dup2(err_fd, 2)
    packed = base64.b64encode(zlib.compress(pickle.dumps(expected, 4))).decode()
    line = f"{nonce} {json.dumps(meta, separators=(',', ':'))} {packed}\n".encode()
    while line:
        line = line[os.write(1, line):]

_SHIPPED: tuple[Any, ...] = (_TimeLimit, _plain, _digest, _is_floats, _flat, _allclose, _poly, _surface_area,
                             _digit_distance, _check, _compare, _quiet, _seal, _candidate_main, _reference_main)
SEALED_NAMES = ", ".join(o.__name__ for o in _SHIPPED if o not in (_seal, _reference_main))
SOURCE = ("import hashlib\nimport io\nimport math\nimport pickle\nfrom typing import Any\n\n\n"
           + "\n\n".join(inspect.getsource(o) for o in _SHIPPED))
DRIVER_HASH = hashlib.sha256(f"{SOURCE}\n{sys.version}\n{BIG_OUTPUT}".encode()).hexdigest()[:16]
