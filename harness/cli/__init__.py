"""The `owb` command line: one module per command group (`run`, `measure`, `compare`, `catalog`) on one typer app;
user errors, usage errors and interrupts each end with one clear line and their own exit code."""

from __future__ import annotations

import importlib
import logging
import os
import sys

from harness.cli import catalog, compare, diagnose, measure, run, view
from harness.cli.app import app, err
from harness.core.errors import Interrupted, UserError
from harness.core.log import warnings_to

app.command("run")(run.run)
app.command("bench")(measure.bench_cmd)
app.command("compare")(compare.compare)
app.command("check")(compare.check_cmd)
app.command("diagnose")(diagnose.diagnose)
app.command("diff")(diagnose.diff)
app.command("merge")(run.merge)
app.command("rescore")(run.rescore)
app.command("list")(catalog.list_)
app.command("pin")(catalog.pin)
app.command("fit")(measure.fit)
app.command("view")(view.view)
app.command("make-tiny")(measure.make_tiny_cmd)


def _quiet_libraries() -> None:
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("VLLM_LOGGING_LEVEL", "ERROR")
    # vLLM logs some warnings at import, before its own logging is configured from the variable above.
    logging.getLogger("vllm").setLevel(os.environ["VLLM_LOGGING_LEVEL"].upper())


def _print_warning(message: str) -> None:
    err.print(message, markup=False, highlight=False, soft_wrap=True)  # a path in a warning is never broken


def _click_exceptions() -> tuple[tuple[type[BaseException], ...], tuple[type[BaseException], ...]]:
    """(usage errors, aborts) as raised by the installed typer: its own and its vendored click's (typer >= 0.29),
    or the click package's (older typer)."""
    usage: list[type[BaseException]] = []
    aborts: list[type[BaseException]] = [KeyboardInterrupt]
    for name in ("typer.exceptions", "typer._click.exceptions", "click.exceptions"):
        try:
            module = importlib.import_module(name)
        except ImportError:
            continue
        usage += [module.ClickException] if hasattr(module, "ClickException") else []
        aborts += [module.Abort] if hasattr(module, "Abort") else []
    return tuple(usage), tuple(aborts)

def main() -> None:
    """Console-script entry: user and usage errors become one line on stderr and exit code 2; an interrupt says
    how to resume and exits 130."""
    _quiet_libraries()
    usage_errors, aborts = _click_exceptions()
    try:
        with warnings_to(_print_warning):
            code = app(standalone_mode=False)
    except UserError as exc:
        sys.stderr.write(f"error: {exc}\n")
        sys.exit(2)
    except Interrupted as exc:
        sys.stderr.write(f"{exc}\n")
        sys.exit(130)
    except aborts:
        sys.stderr.write("interrupted: finished samples are saved; finish with `owb run --resume RUN_DIR`\n")
        sys.exit(130)
    except usage_errors as exc:
        if type(exc).__name__ == "NoArgsIsHelpError":  # `owb` alone: the help was the answer
            sys.exit(0)
        message = exc.format_message() if hasattr(exc, "format_message") else str(exc)
        sys.stderr.write(f"error: {' '.join(message.split())} (see owb --help)\n")
        sys.exit(2)
    except MemoryError:
        sys.stderr.write("error: out of memory; lower --batch-size or --max-new-tokens (finished samples are saved)\n")
        sys.exit(2)
    except RuntimeError as exc:
        if "out of memory" not in str(exc).lower():
            raise
        sys.stderr.write("error: out of GPU memory; lower --batch-size or --max-new-tokens "
                         "(finished samples are saved)\n")
        sys.exit(2)
    sys.exit(code if isinstance(code, int) else 0)
