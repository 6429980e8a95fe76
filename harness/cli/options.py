"""Option types shared by the commands (lighteval's `cli_args.py` pattern: each option declared once, with its help
and its panel), and the parsers of the options typer cannot read by itself."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, Literal, Optional, TypeVar

import typer
from pydantic import BaseModel, ValidationError

from harness.core.errors import ConfigError

WHAT = "What to run"
DATA = "Data"
ENGINE = "Engine"
FILES = "Files and cost"

BACKEND_ARG_HELP = "a backend option KEY=VALUE (value parsed as JSON where it parses); repeatable"

ModelOption = Annotated[str, typer.Option(help="model card id or YAML path", metavar="CARD")]
Seed = Annotated[int, typer.Option(help="base seed; each sample derives its own", rich_help_panel=WHAT, metavar="N")]
Dtype = Annotated[Optional[str], typer.Option(help="override the card's dtype (float32, bfloat16, ...)",
                                              rich_help_panel=ENGINE, metavar="DTYPE")]
BackendArg = Annotated[Optional[list[str]], typer.Option(help=BACKEND_ARG_HELP, rich_help_panel=ENGINE,
                                                         metavar="KEY=VALUE")]
EngineArg = Annotated[Optional[list[str]], typer.Option(help="same as --backend-arg", rich_help_panel=ENGINE,
                                                        metavar="KEY=VALUE")]
BaseUrl = Annotated[Optional[str], typer.Option(help="openai: the server(s) (= --backend-arg base_url=URL)",
                                                rich_help_panel=ENGINE, metavar="URL[,URL...]")]
Device = Annotated[Optional[str], typer.Option(help="hf: cpu | cuda (= --backend-arg device=...)",
                                               rich_help_panel=ENGINE, metavar="DEVICE")]
FastPath = Annotated[Optional[str], typer.Option(help="hf: auto | static | continuous | off", rich_help_panel=ENGINE,
                                                 metavar="PATH")]
RunDirs = Annotated[list[Path], typer.Argument(help="run directories", metavar="RUN_DIR...")]


def _opt(help: str, panel: str, metavar: str = "", **kwargs: Any) -> Any:
    """An option with its help, its panel and what its value looks like ("" for a flag)."""
    return typer.Option(help=help, rich_help_panel=panel, metavar=metavar, **kwargs)


# owb run
RunModel = Annotated[Optional[str], _opt("model card id or YAML path (replay: optional; it splits the reasoning)",
                                        WHAT, "CARD")]
Label = Annotated[Optional[str], _opt("name of the run when no --model is given (replayed outputs)", WHAT, "NAME")]
Tasks = Annotated[Optional[str], _opt("comma-separated task names (default gsm8k,math500)", WHAT, "TASK[,TASK...]")]
Suite = Annotated[Optional[str], _opt("a task suite under its protocol: reasoning", WHAT, "SUITE")]
Protocol = Annotated[Optional[str], _opt("evaluation protocol: r1 (k samples, thinking)", WHAT, "PROTOCOL")]
Limit = Annotated[Optional[int], _opt("first N documents per task", WHAT, "N", min=1)]
Samples = Annotated[Optional[int], _opt("samples per document (default 1, or the protocol's)", WHAT, "K", min=1)]
Thinking = Annotated[Optional[Literal["on", "off"]], _opt("thinking mode (default: the card's)", WHAT, "on|off")]
Greedy = Annotated[bool, _opt("greedy decoding instead of the card's sampling", WHAT)]
MaxNewTokens = Annotated[Optional[int], _opt("override the card's budget", WHAT, "N")]
ThinkingBudget = Annotated[Optional[str], _opt("cut thinking at N tokens, then answer; N1,N2,... runs each budget "
                                               "(task@thinkN)", WHAT, "N[,N...]")]
DataFrom = Annotated[Literal["auto", "hf", "local", "fixture", "package"], _opt("where documents come from", DATA,
                                                                                            "auto|hf|local|fixture|package")]
DataDir = Annotated[Optional[Path], _opt("local data directory (or OWB_DATA_DIR)", DATA, "DIR")]
LmevalInclude = Annotated[Optional[list[Path]], _opt("directory of lm-eval task YAMLs", DATA, "DIR")]
BackendName = Annotated[str, _opt("the engine (backend)", ENGINE, "hf|vllm|openai|replay")]
BatchSize = Annotated[Optional[int], _opt("requests in flight (hf 16, vllm 256, openai 64)", ENGINE, "N")]
Tp = Annotated[Optional[int], _opt("tensor parallel size", ENGINE, "N")]
Pp = Annotated[Optional[int], _opt("pipeline parallel size", ENGINE, "N")]
Dp = Annotated[Optional[int], _opt("data parallel size", ENGINE, "N")]
DistributedBackend = Annotated[Optional[str], _opt("parallel workers", ENGINE, "mp|ray")]
Replay = Annotated[Optional[Path], _opt("replay: JSONL of stored outputs (= backend arg)", ENGINE, "FILE")]
GpuMemoryUtilization = Annotated[Optional[float], _opt("vllm: memory share", ENGINE, "FRACTION")]
MaxModelLen = Annotated[Optional[int], _opt("vllm: max_model_len", ENGINE, "N")]
Output = Annotated[Path, _opt("directory for run directories", FILES, "DIR")]
Resume = Annotated[Optional[Path], _opt("finish an interrupted run directory", FILES, "RUN_DIR")]
Compress = Annotated[Literal["none", "gzip", "zstd"], _opt("compress samples files (read transparently everywhere)",
                                                           FILES, "none|gzip|zstd")]
Shard = Annotated[Optional[str], typer.Option("--shard", help="shard I of N of each task (owb merge joins them)",
                                              rich_help_panel=FILES, metavar="I/N")]
UnsafeExec = Annotated[bool, _opt("run model-written code without a sandbox where none isolates (bubblewrap and "
                                  "user namespaces missing)", FILES)]
GpuHourlyUsd = Annotated[Optional[float], _opt("GPU price per hour: $ per 1M tokens and per 1,000 correct answers",
                                               FILES, "USD")]
PriceIn = Annotated[Optional[float], _opt("API price, USD per 1M prompt tokens", FILES, "USD")]
PriceOut = Annotated[Optional[float], _opt("API price, USD per 1M output tokens", FILES, "USD")]
MaxConcurrency = Annotated[Optional[int], _opt("openai: requests in flight (= --backend-arg batch_size)", ENGINE,
                                               "N", min=1)]
RequestRate = Annotated[Optional[float], _opt("openai: requests per second, gamma arrivals as vllm bench serve "
                                              "(= --backend-arg request_rate; burstiness=B and goodput='ttft:MS "
                                              "tpot:MS' too)", ENGINE, "R")]
EnergyGpus = Annotated[Optional[str], _opt("openai: the server's GPUs on this machine to meter, NVML indices or "
                                           "UUIDs (= --backend-arg energy_gpus); none: no energy", ENGINE,
                                           "GPU[,GPU...]")]


def numbers(text: str | None, flag: str, inf: bool = False) -> tuple[float | None, ...]:
    """Comma-separated numbers of a flag; `inf` (where allowed) is None: no limit."""
    values: list[float | None] = []
    for part in (p.strip() for p in (text or "").split(",") if p.strip()):
        if inf and part.lower() in ("inf", "none"):
            values.append(None)
            continue
        try:
            values.append(float(part))
        except ValueError:
            raise ConfigError(f"{flag} takes comma-separated numbers{' or inf' if inf else ''}, not '{text}'") from None
    return tuple(values)


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
