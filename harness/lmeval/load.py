"""Finding and loading lm-eval tasks for the bridge (harness.lmeval): the task index (--lmeval-include directories
first), refusals of what owb cannot run, and the dataset load with clear errors."""

from __future__ import annotations

import difflib
import functools
import importlib.metadata
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from harness.core.errors import ConfigError, DataError, first_line
from harness.core.hub import hub_reachable
from harness.lmeval import PREFIX

INSTALL = "pip install 'owb[lmeval]'"
# datasets builders that read local files (anything else named by dataset_path comes from the Hub)
LOCAL_BUILDERS = frozenset({"json", "csv", "parquet", "text", "arrow", "pandas"})


def lm_eval_version() -> str:
    """The installed lm-eval's version (its logging quietened to errors); without it, an error naming the extra."""
    try:
        import lm_eval  # noqa: F401
    except ImportError:
        raise ConfigError(f"lm-evaluation-harness is not installed; lmeval: tasks need it: {INSTALL}") from None
    logging.getLogger("lm_eval").setLevel(logging.ERROR)
    return importlib.metadata.version("lm_eval")


@functools.cache
def _manager(paths: tuple[str, ...]) -> Any:
    """A task index of the given directories, or of lm-eval's own tasks when none (indexing those takes seconds,
    so each is built once per process)."""
    from lm_eval.tasks import TaskManager

    return TaskManager(include_path=list(paths) or None, include_defaults=not paths)


def find_task(name: str, include: list[Path]) -> tuple[Any, Any]:
    """The task manager and index entry of `lmeval:NAME`: the include directories win over lm-eval's own tasks;
    groups, tags and unknown names are refused."""
    short = name.removeprefix(PREFIX)
    missing = [str(p) for p in include if not p.is_dir()]
    if missing:
        raise ConfigError(f"--lmeval-include directory not found: {missing[0]}")
    managers = [_manager(tuple(str(p.resolve()) for p in include))] if include else []
    for manager in [*managers, _manager(())]:
        entry = manager.task_index.get(short)
        if entry is not None:
            _check_kind(name, entry)
            return manager, entry
    known = sorted({n for m in managers + [_manager(())] for n in m.all_tasks})
    close = difflib.get_close_matches(short, known, n=3)
    hint = f"; did you mean {', '.join(PREFIX + c for c in close)}?" if close else ""
    raise ConfigError(f"unknown lm-eval task '{short}' (not in lm-eval {lm_eval_version()} or --lmeval-include){hint}")


def _check_kind(name: str, entry: Any) -> None:
    """Groups and tags are refused, naming their tasks: each owb task name is one task with one samples file."""
    from lm_eval.tasks._index import Kind

    if entry.kind not in (Kind.GROUP, Kind.TAG):
        return
    kind = "group" if entry.kind == Kind.GROUP else "tag"
    members = sorted(entry.tags) if entry.kind == Kind.TAG else [
        t if isinstance(t, str) else t.get("task", "?") for t in (entry.cfg or {}).get("task", [])]
    shown = ",".join(PREFIX + m for m in members[:12]) + (",…" if len(members) > 12 else "")
    raise ConfigError(f"{name} is an lm-eval {kind} of {len(members)} tasks; owb runs single tasks, "
                      f"so name them: --tasks {shown}")


def check_config(name: str, cfg: dict[str, Any]) -> None:
    """Refuses what owb cannot run as lm-eval defines it: only generate_until tasks (owb measures generation), no
    code execution (owb runs code only in its own sandbox), one generation per request."""
    output = cfg.get("output_type", "generate_until")
    if output != "generate_until":
        raise ConfigError(f"{name} is an lm-eval {output} task, scored from log-likelihoods, not generated text; "
                          "owb measures generation, so only generate_until tasks run through lmeval:")
    if cfg.get("unsafe_code"):
        raise ConfigError(f"{name} executes model-written code outside owb's sandbox; use owb's own code tasks "
                          "(humaneval, mbpp)")
    if (cfg.get("repeats") or 1) > 1:
        raise ConfigError(f"{name} filters {cfg['repeats']} repeated generations together (e.g. a majority vote), "
                          "which owb scores one sample at a time; use a single-generation variant with --samples K")


def load_task(manager: Any, name: str, cfg: dict[str, Any]) -> Any:
    """The built lm-eval task with its dataset loaded; the Hub is checked first so an offline machine fails fast."""
    short = name.removeprefix(PREFIX)
    path = cfg.get("dataset_path")
    if (isinstance(path, str) and path not in LOCAL_BUILDERS and not Path(path).exists()
            and "custom_dataset" not in cfg and not hub_reachable()):
        raise DataError(f"{name} loads {path} from the Hugging Face Hub, which cannot be reached; point a task YAML "
                        "at local files (dataset_path: json, dataset_kwargs.data_files) and pass --lmeval-include DIR")
    try:
        with _quiet_datasets():
            tasks = manager.load([short])["tasks"]
    except OSError as exc:
        raise DataError(f"cannot load the data of {name}: {first_line(exc)}") from None
    except Exception as exc:  # lm-eval raises many kinds for a task it cannot build (YAML, functions, imports)
        raise ConfigError(f"cannot build lm-eval task {name}: {first_line(exc)}") from None
    if len(tasks) != 1:
        raise ConfigError(f"{name} expands to {len(tasks)} lm-eval tasks; name one: {', '.join(sorted(tasks))}")
    return next(iter(tasks.values()))


@contextmanager
def _quiet_datasets() -> Iterator[None]:
    """No `datasets` progress bars while lm-eval loads data (they would tear owb's own)."""
    import datasets

    was_disabled = datasets.are_progress_bars_disabled()
    datasets.disable_progress_bars()
    try:
        yield
    finally:
        if not was_disabled:
            datasets.enable_progress_bars()
