"""Data quirks a task YAML cannot say, named by tasks as `record_to_doc: harness.hooks:FUNCTION`."""

from __future__ import annotations

from typing import Any


def repair_latex_escapes(row: dict[str, Any]) -> dict[str, Any]:
    r"""Undo a scrape that read `\f` and `\t` in LaTeX as escapes: a form feed back to `\f` (`\frac`), a tab back
    to `\t` (`\triangle`). AIME 2025's file has five such form feeds in row 18, one in row 27 and a tab in row 19."""
    return {**row, "problem": str(row["problem"]).replace("\f", "\\f").replace("\t", "\\t")}


# LiveCodeBench's "### Format:" part of its prompt (lcb_runner/prompts/code_generation.py, PromptConstants), with and
# without starter code.
LCB_WITH_STARTER = ("### Format: You will use the following starter code to write the solution to the problem and "
                    "enclose your code within delimiters.\n```python\n{starter}\n```\n\n")
LCB_WITHOUT_STARTER = ("### Format: Read the inputs from stdin solve the problem and write the answer to stdout "
                       "(do not directly test on the sample inputs). Enclose your code within delimiters as follows. "
                       "Ensure that when the python program runs, it reads the inputs, runs the algorithm and writes "
                       "output to STDOUT.\n```python\n# YOUR CODE HERE\n```\n\n")


def livecodebench_format(row: dict[str, Any]) -> dict[str, Any]:
    """A LiveCodeBench row with `format_block`, its prompt's format part: the starter code to complete, or the
    stdin/stdout instruction when the problem has none."""
    starter = str(row.get("starter_code") or "")
    block = LCB_WITH_STARTER.format(starter=starter) if starter else LCB_WITHOUT_STARTER
    return {**row, "format_block": block}
