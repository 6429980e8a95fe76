"""The tests of a LiveCodeBench problem as plain data. The Hub file keeps private tests as base64 of zlib of a pickle
of a JSON string; they are unpickled by an unpickler that refuses every class and function, so a tampered file
cannot run code: only pickle's plain values (strings, numbers, lists, dicts, tuples) load."""

from __future__ import annotations

import base64
import binascii
import io
import json
import pickle
import zlib
from dataclasses import dataclass
from typing import Any

from harness.core.errors import DataError

MAX_DECOMPRESSED = 1 << 30  # a problem's private tests above 1 GiB are refused (a zlib bomb)


class PlainUnpickler(pickle.Unpickler):
    """Unpickles plain values only: any class or function a pickle names (the way a payload runs code) is refused."""

    def find_class(self, module: str, name: str) -> Any:
        """Refuse: a plain value never names a class."""
        raise pickle.UnpicklingError(f"refused to load {module}.{name}: the tests must be plain data")

    def persistent_load(self, pid: Any) -> Any:
        """Refuse persistent ids (they resolve to objects outside the pickle)."""
        raise pickle.UnpicklingError("refused a persistent id: the tests must be plain data")


def plain_unpickle(data: bytes) -> Any:
    """The value a pickle holds, when it holds only plain values."""
    return PlainUnpickler(io.BytesIO(data)).load()


def _inflate(data: bytes) -> bytes:
    inflater = zlib.decompressobj()
    out = inflater.decompress(data, MAX_DECOMPRESSED)
    if inflater.unconsumed_tail:
        raise DataError(f"private tests decompress to more than {MAX_DECOMPRESSED >> 20} MiB; refusing them")
    return out


def decode_private(field: str, problem: str) -> list[dict[str, Any]]:
    """The private tests of a problem: JSON as-is, else base64 -> zlib -> a pickled JSON string (as LiveCodeBench
    reads them), the pickle loaded as plain data only."""
    try:
        return list(json.loads(field))
    except json.JSONDecodeError:
        pass
    try:
        value = plain_unpickle(_inflate(base64.b64decode(field.encode(), validate=True)))
    except pickle.UnpicklingError as exc:
        raise DataError(f"livecodebench problem {problem}: private tests refused ({exc})") from None
    except (binascii.Error, zlib.error, ValueError, EOFError) as exc:
        raise DataError(f"livecodebench problem {problem}: private tests are not base64 zlib pickle ({exc})") from None
    if not isinstance(value, (str, bytes)):
        raise DataError(f"livecodebench problem {problem}: private tests hold a {type(value).__name__}, not JSON text")
    return list(json.loads(value))


@dataclass(frozen=True)
class Tests:
    """A problem's tests as LiveCodeBench grades them: public then private inputs and outputs, and the function a
    LeetCode-style (functional) problem calls (None: stdin/stdout)."""

    inputs: list[str]
    outputs: list[str]
    fn_name: str | None


def problem_tests(doc: dict[str, Any]) -> Tests:
    """The tests of a document in the Hub's schema (public_test_cases, private_test_cases, metadata as JSON text)."""
    problem = str(doc.get("question_id"))
    cases = [*json.loads(doc["public_test_cases"]), *decode_private(doc["private_test_cases"], problem)]
    metadata = json.loads(doc["metadata"]) if isinstance(doc["metadata"], str) else dict(doc["metadata"] or {})
    return Tests(inputs=[str(c["input"]) for c in cases], outputs=[str(c["output"]) for c in cases],
                 fn_name=metadata.get("func_name"))
