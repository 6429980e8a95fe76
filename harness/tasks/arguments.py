"""Task arguments: `livecodebench@window=2024-08..2025-01` is the LiveCodeBench task over that window. An argument sets
the spec field its YAML names (`arguments: {window: window.span}`); the task's name carries every argument given, in
canonical form, so a run, its samples, resume, rescore and merge all name one task by one string."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from harness.config.cards import ModelCard
from harness.config.taskspec import TaskSpec
from harness.core.errors import ConfigError, first_error
from harness.records.sample import budget_name, split_name

SEPARATOR = "@"


def split_arguments(name: str) -> tuple[str, dict[str, str]]:
    """A task name's base and its arguments: ("livecodebench", {"window": "2024-08..2025-01"})."""
    base, *parts = name.split(SEPARATOR)
    args = {}
    for part in parts:
        key, sep, value = part.partition("=")
        if not sep or not key:
            raise ConfigError(f"task {name}: an argument is NAME=VALUE after '{SEPARATOR}', not '{part}'")
        args[key] = value
    return base, args


def join_arguments(base: str, args: Mapping[str, str]) -> str:
    """The task name of `base` under `args` (arguments in name order)."""
    return base + "".join(f"{SEPARATOR}{key}={args[key]}" for key in sorted(args))


def _get(data: Any, path: list[str]) -> Any:
    for key in path:
        data = data.get(key) if isinstance(data, dict) else None
    return data


def _set(data: dict[str, Any], path: list[str], value: str) -> None:
    for key in path[:-1]:
        data = data[key]
    data[path[-1]] = value


def argument_values(spec: TaskSpec, args: Mapping[str, str]) -> dict[str, str]:
    """Each argument's value as the spec holds it once applied (a window as whole days, a number as a number); the
    task's defaults for arguments not given."""
    applied = with_arguments(spec, args).model_dump(mode="json")
    return {key: str(_get(applied, path.split("."))) for key, path in spec.arguments.items()}


def with_arguments(spec: TaskSpec, args: Mapping[str, str]) -> TaskSpec:
    """The spec with its arguments set, named for them; an unknown argument or a bad value is one error."""
    if not args:
        return spec
    unknown = sorted(set(args) - set(spec.arguments))
    if unknown:
        known = ", ".join(spec.arguments) or "none"
        raise ConfigError(f"task {spec.name} has no argument '{unknown[0]}' (its arguments: {known})")
    data = spec.model_dump(mode="json")
    for key, value in args.items():
        path = spec.arguments[key].split(".")
        if _get(data, path[:-1]) is None:
            raise ConfigError(f"task {spec.name}: argument {key} sets {spec.arguments[key]}, which the task lacks")
        _set(data, path, value)
    try:
        applied = TaskSpec.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(f"task {spec.name}: invalid argument ({first_error(exc)})") from None
    canonical = {key: str(_get(applied.model_dump(mode="json"), spec.arguments[key].split("."))) for key in args}
    return applied.model_copy(update={"name": join_arguments(spec.name, canonical)})


def with_card_arguments(name: str, card: ModelCard) -> str:
    """A task name with the card's arguments for that task added (those the name gives itself win); a thinking
    budget's suffix stays last."""
    task, budget = split_name(name)
    base, args = split_arguments(task)
    family = card.task_args.get(base, {})
    if not family:
        return name
    named = join_arguments(base, {**family, **args})
    return named + budget_name("", budget) if budget is not None else named
