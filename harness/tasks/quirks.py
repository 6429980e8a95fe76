"""Data quirks a task YAML cannot say, named by tasks as `record_to_doc: harness.hooks:FUNCTION`."""

from __future__ import annotations

from typing import Any


def repair_latex_escapes(row: dict[str, Any]) -> dict[str, Any]:
    r"""Undo a scrape that read `\f` and `\t` in LaTeX as escapes: a form feed back to `\f` (`\frac`), a tab back
    to `\t` (`\triangle`). AIME 2025's file has five such form feeds in row 18, one in row 27 and a tab in row 19."""
    return {**row, "problem": str(row["problem"]).replace("\f", "\\f").replace("\t", "\\t")}
