"""EvalPlus's MBPP+ special cases (evalplus/eval/_special_oracle.py): the oracles some problems compare with, and the
input fixes its release files need."""

from __future__ import annotations

from typing import Any

from harness.core.errors import DataError

# EvalPlus's special oracles (evalplus/eval/_special_oracle.py and unsafe_execute).
MBPP_ORACLES = {"are_equivalent": "are_equivalent", "sum_div": "sum_div", "surface_Area": "surface_area",
                "digit_distance_nums": "digit_distance"}
MBPP_OUTPUT_SET_EQ = frozenset({"similar_elements", "find_char_long", "common_in_nested_lists", "extract_singly",
                                "larg_nnum", "intersection_array", "find_dissimilar", "Diff"})
MBPP_OUTPUT_NOT_NONE = frozenset({"check_str", "text_match_three", "text_starta_endb"})


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
