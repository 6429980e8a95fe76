"""The base of every config model (unknown fields rejected, values frozen), the shared literals, and YAML loading with
one-line errors."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from harness.core.errors import ConfigError, first_error

Mode = Literal["on", "off"]
DataSource = Literal["auto", "hf", "local", "fixture", "package"]
M = TypeVar("M", bound=BaseModel)


class Strict(BaseModel):
    """Base of every config model: unknown fields are an error, values are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def load_yaml(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        line = f" line {where.line + 1}" if where else ""
        raise ConfigError(f"malformed YAML in {path}{line}: {getattr(exc, 'problem', exc)}") from None
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"malformed YAML in {path}: expected a mapping at the top level")
    return data


def validated(model: type[M], data: dict[str, Any], path: Path) -> M:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(f"invalid {model.__name__} in {path}: {first_error(exc)}") from None


def yaml_stems(directory: Path) -> list[str]:
    return sorted(p.stem for p in directory.glob("*.yaml"))
