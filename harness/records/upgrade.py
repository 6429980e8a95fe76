"""Reading run.json and bench.json from text: the current schema, and the previous one (1) upgraded in memory."""

from __future__ import annotations

import json
from typing import Any

from pydantic import ValidationError

from harness.core.errors import ConfigError, first_error
from harness.records.base import SCHEMA_VERSION, Record
from harness.records.bench import BenchRecord
from harness.records.run import RunRecord


def _v1_metric(name: str, metric: dict[str, Any]) -> dict[str, Any]:
    """Schema 1 metrics carried no descriptor: derive it from the metric's name as schema 1's readers did."""
    if name == "pass@1":
        score: str | None = "passed"
    elif name.startswith(("pass@", "maj@")):
        score = None
    else:
        score = name
    higher = None if name == "output_words" else name != "empty_rate"
    return {**metric, "score": score, "higher_is_better": higher,
            "scale": "raw" if name == "output_words" else "percent"}


def _v1_options(invocation: dict[str, Any]) -> dict[str, Any]:
    """Schema 1 named each backend's options as `owb run` flags; schema 2 keeps them in `backend_args`."""
    opts = dict(invocation)
    args: dict[str, Any] = {}
    for key in ("replay", "base_url", "device"):
        if opts.get(key) is not None:
            args[key] = opts[key]
        opts.pop(key, None)
    fast_path = opts.pop("fast_path", "auto")
    if opts["backend"] == "hf" and fast_path != "auto":
        args["fast_path"] = fast_path
    args.update(opts.pop("engine_args", None) or {})
    return {**opts, "backend_args": args}

V1_BENCHMARKS = {"gsm8k": "GSM8K", "math500": "MATH-500", "humaneval": "HumanEval", "mbpp": "MBPP"}


def upgrade_card_v1(card: dict[str, Any]) -> dict[str, Any]:
    """A schema-1 card: flat (vLLM) engine_args become per-backend; whether the template opens the think block
    is read from each rendered prompt now, not declared."""
    engine_args = card.get("engine_args") or {}
    thinking = {k: v for k, v in (card.get("thinking") or {}).items() if k != "template_opens_think"}
    claims = []
    for c in card.get("published", []):
        full_math = "MATH (full)" in c.get("settings", "")  # schema-1 cards filed full-MATH scores under math500
        claims.append({"benchmark": "MATH" if full_math else V1_BENCHMARKS.get(c["task"], c["task"]),
                       "task": None if full_math else c["task"], "metric": None if full_math else c["metric"],
                       "value": c["value"], "thinking": c.get("thinking"), "notes": c.get("settings", ""),
                       "source": c.get("source", "")})
    return {**card, "engine_args": {"vllm": engine_args} if engine_args else {}, "thinking": thinking,
            "published": claims}


def _upgrade_run_v1(data: dict[str, Any]) -> dict[str, Any]:
    tasks = {}
    for name, task in data.get("tasks", {}).items():
        task = dict(task)
        task["metrics"] = {m: _v1_metric(m, v) for m, v in (task.get("metrics") or {}).items()}
        tasks[name] = task
    model = {**data["model"], "card": upgrade_card_v1(data["model"]["card"])}
    return {**data, "schema_version": SCHEMA_VERSION, "upgraded_from": 1, "invocation": _v1_options(data["invocation"]),
            "model": model, "tasks": tasks}


READABLE = (1, 2, SCHEMA_VERSION)


def _parse(text: str, what: str) -> dict[str, Any]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"unreadable {what}: {exc.msg} (line {exc.lineno})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"unreadable {what}: not a JSON object")
    version = data.get("schema_version")
    if version not in READABLE:
        raise ConfigError(f"{what} has schema version {version}; this owb reads {', '.join(map(str, READABLE))}")
    return data


def _validated(model: type[Record], data: dict[str, Any], what: str) -> Any:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(f"invalid {what}: {first_error(exc)}") from None


def read_run_record(text: str, what: str = "run.json") -> RunRecord:
    """A run record from run.json's text, upgraded from schemas 1 and 2 where needed (schema 2 differs only in its
    samples files, which are read line by line in either layout)."""
    data = _parse(text, what)
    if data["schema_version"] == 1:
        try:
            data = _upgrade_run_v1(data)
        except (KeyError, TypeError, AttributeError) as exc:
            raise ConfigError(f"invalid {what} (schema 1): {type(exc).__name__} {exc}") from None
    elif data["schema_version"] < SCHEMA_VERSION:
        data = {**data, "schema_version": SCHEMA_VERSION, "upgraded_from": data["schema_version"]}
    record: RunRecord = _validated(RunRecord, data, what)
    return record


def read_bench_record(text: str, what: str = "bench.json") -> BenchRecord:
    """A bench record from bench.json's text (schemas 1 and 2 have the same fields)."""
    data = _parse(text, what)
    if data["schema_version"] < SCHEMA_VERSION:
        data = {**data, "schema_version": SCHEMA_VERSION, "upgraded_from": data["schema_version"]}
    record: BenchRecord = _validated(BenchRecord, data, what)
    return record
