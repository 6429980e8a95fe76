"""Rendering: the Jinja templates (autoescaped, so model output is always text), the number formats, and the links
between pages, live (`/run/<id>?...`) or as the files of a static export."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from harness.report.format import fmt_metric, fmt_number

HERE = Path(__file__).parent
TEMPLATES = HERE / "templates"
STATIC = HERE / "static"


def _query(params: dict[str, Any]) -> str:
    items = {k: ("1" if v is True else v) for k, v in params.items() if v not in (None, "", False)}
    return "?" + urlencode(items, doseq=True) if items else ""


class Links:
    """URLs of the live server's pages; each view is a path and query parameters, so it can be bookmarked."""

    live = True

    def board(self, **query: Any) -> str:
        """The leaderboard."""
        return "/" + _query(query)

    def run(self, run_id: str) -> str:
        """A run's page."""
        return f"/run/{quote(run_id, safe='')}"

    def samples(self, run_id: str, task: str, **query: Any) -> str | None:
        """A task's sample browser (None where the export holds no such page)."""
        return f"/run/{quote(run_id, safe='')}/{quote(task, safe='')}" + _query(query)

    def raw(self, run_id: str, relative: str) -> str | None:
        """A file of a run, served as it is (None in an export)."""
        return f"/raw/{quote(run_id, safe='')}/{quote(relative)}"

    def diff(self, base: str, cand: str, task: str, **query: Any) -> str | None:
        """The paired diff of two runs on a task (None in an export)."""
        return f"/diff/{quote(base, safe='')}/{quote(cand, safe='')}/{quote(task, safe='')}" + _query(query)

    def plots(self, run_ids: list[str] | None = None) -> str:
        """The plots page over some runs (all: none given)."""
        return "/plots" + _query({"run": run_ids or []})

    def static(self, name: str) -> str:
        """A file of the viewer's own (CSS, JS)."""
        return f"/static/{name}"


def file_name(text: str) -> str:
    """A file-name-safe form of a run id or task name."""
    return re.sub(r"[^A-Za-z0-9._@=-]", "_", text)


class ExportLinks(Links):
    """Links between the files of a static export, relative to the page being written (`depth` folders down)."""

    live = False
    EXPORTED = ("failed", "disagree")

    def __init__(self, depth: int) -> None:
        self.up = "../" * depth

    def board(self, **query: Any) -> str:
        """index.html."""
        return self.up + "index.html"

    def run(self, run_id: str) -> str:
        """runs/<id>/index.html."""
        return f"{self.up}runs/{file_name(run_id)}/index.html"

    def samples(self, run_id: str, task: str, **query: Any) -> str | None:
        """runs/<id>/<task>.<filter>.html for the exported filters (failed, disagreeing)."""
        name = query.get("filter")
        if name not in self.EXPORTED:
            return None
        return f"{self.up}runs/{file_name(run_id)}/{file_name(task)}.{name}.html"

    def raw(self, run_id: str, relative: str) -> str | None:
        """Not exported: the page shows the file's path instead."""
        return None

    def diff(self, base: str, cand: str, task: str, **query: Any) -> str | None:
        """Not exported."""
        return None

    def plots(self, run_ids: list[str] | None = None) -> str:
        """plots.html (every run)."""
        return self.up + "plots.html"

    def static(self, name: str) -> str:
        """static/<name>."""
        return f"{self.up}static/{name}"


def pct(value: float | None, digits: int = 1) -> str:
    """A fraction as a percentage, '-' when unknown."""
    return "-" if value is None else f"{100 * value:.{digits}f}"


def num(value: float | None, spec: str = ".3g") -> str:
    """A number in a format, '-' when not measured."""
    return fmt_number(value, spec)


def as_text(value: Any) -> str:
    """A sample's value as text: a string as it is, anything else as indented JSON."""
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, indent=1) if value is not None else "(none)"


def environment() -> Environment:
    """The template environment: every value autoescaped, undefined names an error."""
    env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html"]),
                      undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters.update(metric=fmt_metric, pct=pct, num=num, as_text=as_text)
    return env
