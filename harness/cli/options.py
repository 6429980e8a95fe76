"""Option types shared by the commands (lighteval's `cli_args.py` pattern: each option declared once, with its help
and its panel), and the parsers of the options typer cannot read by itself."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, Optional, TypeVar

import typer
from pydantic import BaseModel, ValidationError

from harness.core.errors import ConfigError

WHAT = "What to run"
DATA = "Data"
ENGINE = "Engine"
FILES = "Files and cost"

BACKEND_ARG_HELP = "a backend option KEY=VALUE (value parsed as JSON where it parses); repeatable"

ModelOption = Annotated[str, typer.Option(help="model card id or YAML path")]
Seed = Annotated[int, typer.Option(help="base seed; each sample derives its own", rich_help_panel=WHAT)]
Dtype = Annotated[Optional[str], typer.Option(help="override the card's dtype (float32, bfloat16, ...)",
                                              rich_help_panel=ENGINE)]
BackendArg = Annotated[Optional[list[str]], typer.Option(help=BACKEND_ARG_HELP, rich_help_panel=ENGINE)]
EngineArg = Annotated[Optional[list[str]], typer.Option(help="same as --backend-arg", rich_help_panel=ENGINE)]
BaseUrl = Annotated[Optional[str], typer.Option(help="openai: the server(s) (= --backend-arg base_url=URL)",
                                                rich_help_panel=ENGINE)]
Device = Annotated[Optional[str], typer.Option(help="hf: cpu | cuda (= --backend-arg device=...)",
                                               rich_help_panel=ENGINE)]
FastPath = Annotated[Optional[str], typer.Option(help="hf: auto | static | continuous | off", rich_help_panel=ENGINE)]
RunDirs = Annotated[list[Path], typer.Argument(help="run directories")]


def backend_args(pairs: list[str], **named: object) -> dict[str, Any]:
    """Backend options from KEY=VALUE pairs (values parsed as JSON where they parse) and named convenience flags."""
    args: dict[str, Any] = {k: v for k, v in named.items() if v is not None}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key:
            raise ConfigError(f"--backend-arg takes KEY=VALUE, not '{pair}'")
        try:
            args[key] = json.loads(raw)
        except json.JSONDecodeError:
            args[key] = raw
    return args


def integers(text: str | None, flag: str) -> tuple[int, ...]:
    """Comma-separated integers of a flag (none: empty)."""
    try:
        return tuple(int(x) for x in (text or "").split(",") if x.strip())
    except ValueError:
        raise ConfigError(f"{flag} takes comma-separated integers, not '{text}'") from None


def shard(text: str | None) -> tuple[int, int] | None:
    """--shard I/N as (I, N)."""
    if text is None:
        return None
    index, _, count = text.partition("/")
    if not (index.isdigit() and count.isdigit()):
        raise ConfigError(f"--shard takes I/N (e.g. 2/8), not '{text}'")
    return int(index), int(count)


M = TypeVar("M", bound=BaseModel)


def validated(model: type[M], values: dict[str, Any]) -> M:
    """Options checked by their pydantic model; a problem is one ConfigError naming the flag."""
    try:
        return model.model_validate(values)
    except ValidationError as exc:
        err = exc.errors()[0]
        flag = "--" + "-".join(str(p) for p in err["loc"][:1]).replace("_", "-")
        raise ConfigError(f"{flag}: {err['msg']}") from None
