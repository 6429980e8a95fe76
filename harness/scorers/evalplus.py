"""EvalPlus scoring (HumanEval+, MBPP+): an answer's function runs on the base and extra inputs in one sandboxed
process and each output is compared there with the canonical solution's, as EvalPlus compares them."""

from __future__ import annotations

import base64
import hashlib
import inspect
import io
import json
import math
import os
import pickle
import secrets
import sys
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict

from harness.config import owb_home
from harness.errors import DataError
from harness.records import SampleRecord
from harness.scorers.base import Scored, ScoreInfo, ToScore
from harness.scorers.code import extract_code, function_solution
from harness.scorers.sandbox import ExecResult, Limits, Sandbox

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

# EvalPlus's special oracles (evalplus/eval/_special_oracle.py and unsafe_execute).
MBPP_ORACLES = {"are_equivalent": "are_equivalent", "sum_div": "sum_div", "surface_Area": "surface_area",
                "digit_distance_nums": "digit_distance"}
MBPP_OUTPUT_SET_EQ = frozenset({"similar_elements", "find_char_long", "common_in_nested_lists", "extract_singly",
                                "larg_nnum", "intersection_array", "find_dissimilar", "Diff"})
MBPP_OUTPUT_NOT_NONE = frozenset({"check_str", "text_match_three", "text_starta_endb"})


# ---- Run inside the sandbox: the sources of these definitions are the programs' text (see _SHIPPED). ----------


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
_SEALED = ", ".join(o.__name__ for o in _SHIPPED if o not in (_seal, _reference_main))
_SOURCE = ("import hashlib\nimport io\nimport math\nimport pickle\nfrom typing import Any\n\n\n"
           + "\n\n".join(inspect.getsource(o) for o in _SHIPPED))
DRIVER_HASH = hashlib.sha256(f"{_SOURCE}\n{sys.version}\n{BIG_OUTPUT}".encode()).hexdigest()[:16]


# ---- On the host. ------------------------------------------------------------------------------------------------


def require_inputs(row: dict[str, Any]) -> dict[str, Any]:
    """A data row as it is; a DataError when it lacks EvalPlus's inputs (the release files HumanEvalPlus.jsonl.gz
    and MbppPlus.jsonl.gz have them, the Hub copies hold a generated test script instead)."""
    missing = [f for f in ("base_input", "plus_input", "entry_point", "canonical_solution", "atol") if f not in row]
    if missing:
        raise DataError(f"EvalPlus row {row.get('task_id', '?')} has no {', '.join(missing)}: the Hub copies lack "
                        "EvalPlus's inputs; use --data-dir with the release files (HumanEvalPlus.jsonl.gz, "
                        "MbppPlus.jsonl.gz) or --data fixture")
    return row


def _tuples(x: Any) -> Any:
    """Every list in `x`, nested ones too, as a tuple."""
    return tuple(_tuples(v) for v in x) if isinstance(x, list) else x


def mbpp_inputs(task_id: str, inputs: list[Any]) -> list[Any]:
    """MBPP+ inputs as the functions take them: EvalPlus's mbpp_deserialize_inputs (tuples, sets and complex
    numbers that JSON stores as lists and strings)."""
    n = int(task_id.split("/")[-1])
    if n in {2, 116, 132, 143, 222, 261, 273, 394, 399, 421, 424, 429, 470, 560, 579, 596, 616, 630, 726, 740, 744,
             809}:
        return [[tuple(x) for x in inp] for inp in inputs]
    if n in {63, 64, 70, 94, 120, 237, 272, 299, 400, 409, 417, 438, 473, 614, 780}:
        return [[[tuple(x) for x in arg] for arg in inp] for inp in inputs]
    if n in {75, 413, 444, 753}:
        return [[[tuple(x) for x in inp[0]], inp[1]] for inp in inputs]
    if n in {106, 750}:
        return [[inp[0], tuple(inp[1])] for inp in inputs]
    if n == 115:
        return [[[set(x) if isinstance(x, list) and len(x) else {} for x in inp[0]]] for inp in inputs]
    if n == 124:
        return [(float(inp[0]), complex(inp[1])) for inp in inputs]
    if n in {250, 405, 446, 617, 720, 763, 808}:
        return [[tuple(inp[0]), inp[1]] for inp in inputs]
    if n in {259, 401, 445}:
        return [[tuple(tuple(x) for x in arg) for arg in inp] for inp in inputs]
    if n == 278:
        return [[tuple(tuple(x) if isinstance(x, list) else x for x in inp[0])] for inp in inputs]
    if n == 307:
        return [[tuple(inp[0]), inp[1], inp[2]] for inp in inputs]
    if n == 722:
        return [[{k: tuple(v) for k, v in inp[0].items()}, *inp[1:]] for inp in inputs]
    if n == 252:
        return [[complex(inp[0])] for inp in inputs]
    if n in {580, 615, 791}:
        return [_tuples(inp) for inp in inputs]
    return inputs


def oracle_for(dataset: str, entry_point: str) -> str:
    """Which of EvalPlus's special oracles checks a task's outputs ("exact": equality, then the float tolerance)."""
    if dataset == "humaneval":
        return "find_zero" if entry_point == "find_zero" else "exact"
    if entry_point in MBPP_ORACLES:
        return MBPP_ORACLES[entry_point]
    return "set_eq" if entry_point in MBPP_OUTPUT_SET_EQ else "not_none" if entry_point in MBPP_OUTPUT_NOT_NONE \
        else "exact"


def solution(answer: str, doc: dict[str, Any], dataset: str) -> str:
    """The code to test: the answer's program (harness.scorers.code.extract_code); for HumanEval+ with the prompt's
    imports, or the prompt completed by the answer when it is only a body (as for HumanEval)."""
    entry = str(doc["entry_point"])
    if dataset == "mbpp":
        return extract_code(answer, entry)
    return function_solution(answer, str(doc["prompt"]), entry).lstrip("\n")


def _pack(obj: Any) -> str:
    return base64.b64encode(zlib.compress(pickle.dumps(obj, 4))).decode()


@dataclass(frozen=True)
class Problem:
    """One task's inputs, packed for the sandbox, and what its check needs; `key` names its cached outputs."""

    key: str
    task_id: str
    entry: str
    ref_code: str
    inputs: str
    counts: dict[str, int]
    oracle: str
    atol: float

    def job(self) -> dict[str, Any]:
        """What both drivers read besides the inputs."""
        return {"entry": self.entry, "ref_code": self.ref_code, "oracle": self.oracle, "atol": self.atol,
                "not_none": self.oracle == "not_none", "big": BIG_OUTPUT}


@dataclass(frozen=True)
class Expected:
    """The canonical solution's outputs (packed for the candidate program), its time per input, which outputs are
    kept as digests and the seconds their digests took."""

    packed: str
    times: dict[str, list[float]]
    big: dict[str, list[int]]
    digest_s: float


def _problem(doc: dict[str, Any], dataset: str) -> Problem:
    entry, ref_code = str(doc["entry_point"]), str(doc["prompt"]) + str(doc["canonical_solution"])
    raw = {phase: doc[f"{phase}_input"] for phase in PHASES}
    typed = {p: mbpp_inputs(str(doc["task_id"]), v) if dataset == "mbpp" else v for p, v in raw.items()}
    key = hashlib.sha256(json.dumps([DRIVER_HASH, dataset, doc["task_id"], entry, ref_code, raw], sort_keys=True,
                                    default=repr).encode()).hexdigest()[:32]
    inputs = _pack({p: tuple(pickle.dumps(i, 4) for i in v) for p, v in typed.items()})
    return Problem(key=key, task_id=str(doc["task_id"]), entry=entry, ref_code=ref_code, inputs=inputs,
                   counts={p: len(v) for p, v in typed.items()}, oracle=oracle_for(dataset, entry),
                   atol=float(doc.get("atol") or 0))


def _verdicts(result: ExecResult, nonce: str) -> dict[str, str] | None:
    """The phase verdicts the driver wrote; None when stdout holds anything else (its output was tampered with)."""
    found: dict[str, str] = {}
    for line in result.stdout.splitlines():
        parts = line.split(" ")
        if len(parts) != 3 or parts[0] != nonce or parts[1] not in PHASES or parts[1] in found \
                or parts[2] not in ("pass", "fail", "timeout"):
            return None
        found[parts[1]] = parts[2]
    return found


class EvalPlusArgs(BaseModel):
    """The evalplus scorer's arguments: the dataset's conventions, and EvalPlus's --min-time-limit and
    --gt-time-limit-factor."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    dataset: Literal["humaneval", "mbpp"]
    min_time_limit: float = MIN_TIME_LIMIT
    gt_time_limit_factor: float = GT_TIME_LIMIT_FACTOR


class EvalPlusScorer:
    """HumanEval+ / MBPP+: `base_passed` when every base input gives the canonical solution's output, `plus_passed`
    when the extra inputs do too (EvalPlus's base and base + extra tests)."""

    Args: ClassVar[type[BaseModel]] = EvalPlusArgs
    scores = (ScoreInfo("base_passed"), ScoreInfo("plus_passed"))

    def __init__(self, args: EvalPlusArgs) -> None:
        self.args = args
        self.sandbox = Sandbox(Limits(wall_s=REFERENCE_WALL_S, cpu_s=int(REFERENCE_WALL_S)))
        self.cache = owb_home() / "evalplus"
        self._problems: dict[str, Problem] = {}
        self._expected: dict[str, Expected | str] = {}  # by Problem.key: the outputs, or why the reference failed

    def score_batch(self, items: Sequence[ToScore]) -> list[Scored]:
        """Run every answer against its task's inputs in parallel (the expected outputs computed first if missing)."""
        live = [i for i in items if not i.unclosed]
        problems = [self._problem_of(i.doc) for i in live]
        self._ensure_expected(problems)
        codes = [solution(i.answer, i.doc, self.args.dataset) for i in live]
        runnable = [j for j, p in enumerate(problems) if isinstance(self._expected[p.key], Expected)]
        nonces = {j: secrets.token_hex(12) for j in runnable}
        plans = {j: self._candidate_plan(problems[j], codes[j], nonces[j]) for j in runnable}
        order = sorted(runnable, key=lambda j: -plans[j][1])  # longest first: the pool's tail is shorter
        results = dict(zip(order, self.sandbox.run_many([plans[j][0] for j in order], [plans[j][1] for j in order]),
                           strict=True))
        graded = iter([self._grade(codes[j], problems[j], results.get(j), nonces.get(j, "")) for j in range(len(live))])
        return [Scored(extracted=None, scores={"base_passed": 0.0, "plus_passed": 0.0},
                       extra={"status": "failed", "stderr": "reasoning never closed"}) if i.unclosed else next(graded)
                for i in items]

    def _problem_of(self, doc: dict[str, Any]) -> Problem:
        task_id = str(doc["task_id"])
        if task_id not in self._problems:
            self._problems[task_id] = _problem(doc, self.args.dataset)
        return self._problems[task_id]

    def _ensure_expected(self, problems: Sequence[Problem]) -> None:
        """Load or compute (in the sandbox, in parallel) the expected outputs of every problem not known yet."""
        todo = {p.key: p for p in problems if p.key not in self._expected}
        for key in list(todo):
            path = self.cache / f"{key}.json"
            if path.is_file():
                stored = json.loads(path.read_text())
                self._expected[key] = Expected(stored["packed"], stored["times"], stored["big"], stored["digest_s"])
                del todo[key]
        pending = sorted(todo.values(), key=lambda p: -sum(p.counts.values()))
        nonces = [secrets.token_hex(12) for _ in pending]
        programs = [f"{_SOURCE}\n\n_reference_main({_pack(p.job())!r}, {p.inputs!r}, {n!r})\n"
                    for p, n in zip(pending, nonces, strict=True)]
        for p, n, r in zip(pending, nonces, self.sandbox.run_many(programs, [REFERENCE_WALL_S] * len(programs)),
                           strict=True):
            self._expected[p.key] = found = self._parse_reference(p, r, n)
            if isinstance(found, Expected):
                self._store(p, found)

    @staticmethod
    def _parse_reference(problem: Problem, result: ExecResult, nonce: str) -> Expected | str:
        parts = result.stdout.strip().split(" ", 2)
        if result.status != "passed" or len(parts) != 3 or parts[0] != nonce:
            return (f"the canonical solution of {problem.task_id} did not run ({result.status}): "
                    f"{result.stderr_tail[-500:]}")
        meta = json.loads(parts[1])
        times = {p: [float(t) for t in meta["times"][p]] for p in PHASES}
        if any(len(times[p]) != problem.counts[p] for p in PHASES):
            return f"the reference run of {problem.task_id} returned the wrong number of outputs"
        return Expected(parts[2], times, {p: [int(i) for i in meta["big"][p]] for p in PHASES},
                        float(meta["digest_s"]))

    def _store(self, problem: Problem, expected: Expected) -> None:
        self.cache.mkdir(parents=True, exist_ok=True)
        tmp = self.cache / f".{problem.key}.{os.getpid()}.tmp"
        tmp.write_text(json.dumps({"task_id": problem.task_id, "packed": expected.packed, "times": expected.times,
                                   "big": expected.big, "digest_s": expected.digest_s}))
        tmp.replace(self.cache / f"{problem.key}.json")

    def _candidate_plan(self, problem: Problem, code: str, nonce: str) -> tuple[str, float]:
        """The candidate's program and its wall-clock limit: the phases' budgets, start-up, and twice what digested
        outputs cost the reference run (digesting, and re-computing them after a mismatch)."""
        expected = self._expected[problem.key]
        assert isinstance(expected, Expected)
        limits = {p: [max(self.args.min_time_limit, self.args.gt_time_limit_factor * t) for t in expected.times[p]]
                  for p in PHASES}
        budget = {p: min(TIMEOUT_PER_TASK, sum(limits[p])) + PHASE_SLACK_S for p in PHASES}
        recompute = expected.digest_s + sum(expected.times[p][i] for p in PHASES for i in expected.big[p])
        job = _pack({**problem.job(), "code": code, "limits": limits, "budget": budget})
        program = (f"{_SOURCE}\n\n_seal([{_SEALED}])['_candidate_main']({job!r}, {problem.inputs!r}, "
                   f"{expected.packed!r}, {nonce!r})\n")
        return program, sum(budget.values()) + STARTUP_S + 2 * recompute

    def _grade(self, code: str, problem: Problem, result: ExecResult | None, nonce: str) -> Scored:
        """Scores from the driver's verdict lines: base from its line alone, plus only after a clean exit."""
        expected = self._expected[problem.key]
        if result is None:
            return Scored(extracted=code, scores={"base_passed": 0.0, "plus_passed": 0.0},
                          extra={"status": "error", "stderr": str(expected)})
        verdicts = _verdicts(result, nonce)
        base = (verdicts or {}).get("base")
        plus = (verdicts or {}).get("plus") if result.status == "passed" else None
        passed = base == "pass" and plus == "pass"
        timed_out = result.status == "timeout" or "timeout" in (base, plus)
        status = "passed" if passed else "error" if result.status == "error" else "timeout" if timed_out else "failed"
        note = result.stderr_tail
        if verdicts is None:
            note = f"the program's stdout was not the driver's verdicts\n{note}"
        elif not passed and not note:
            note = f"the program ended ({result.status}, exit code {result.returncode}) without a verdict"
        return Scored(extracted=code, scores={"base_passed": float(base == "pass"), "plus_passed": float(passed)},
                      extra={"status": status, "stderr": note, "exec_s": round(result.seconds, 4)})

    def vote(self, sample: SampleRecord) -> str | None:
        """Programs do not vote."""
        return None

    def same_answer(self, a: str, b: str) -> bool:
        """Programs do not vote."""
        return a == b

    def describe(self) -> dict[str, Any]:
        """The sandbox, EvalPlus's time limits and how expected outputs are made."""
        return {"sandbox": self.sandbox.describe(),
                "evalplus": {"dataset": self.args.dataset, "min_time_limit": self.args.min_time_limit,
                             "gt_time_limit_factor": self.args.gt_time_limit_factor,
                             "timeout_per_task": TIMEOUT_PER_TASK, "phase_slack_s": PHASE_SLACK_S,
                             "expected_outputs": "canonical_solution run in the sandbox, cached per data hash",
                             "driver": DRIVER_HASH}}

    def close(self) -> None:
        """Remove the sandbox's scratch space."""
        self.sandbox.close()
