"""The package is in layers and imports point down only: every import in harness/ (deferred ones included, read
from the source) goes to its own layer or one below, the sibling layers `engines` and `scoring` never import each
other, there is no import cycle, and `import harness.cli` loads no engine."""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import REPO

# docs/architecture.md's layer table, bottom first; a tuple holds siblings that must not import each other.
RANK: list[str | tuple[str, ...]] = ["core", "config", "records", "sandbox", ("engines", "scoring"), "tasks", "lmeval",
                                     "measure", "pipeline", "report", "view", "cli"]
HEAVY = ("torch", "transformers", "vllm", "lm_eval")


def layer_of(module: str) -> str | None:
    """The layer a harness module belongs to (None: the root package, which holds only __version__)."""
    parts = module.split(".")
    if len(parts) < 2 or parts[1] == "__main__":
        return "cli" if parts[1:] == ["__main__"] else None
    return parts[1]


def rank_of(layer: str) -> int:
    """Position of a layer in RANK (siblings share one)."""
    for i, entry in enumerate(RANK):
        if layer == entry or (isinstance(entry, tuple) and layer in entry):
            return i
    raise AssertionError(f"layer {layer} is not in RANK (tests/test_layers.py and docs/architecture.md)")


def modules(root: Path) -> Iterator[tuple[str, Path]]:
    """Every module of the package under `root` (a directory named harness) with its dotted name."""
    for path in sorted(root.rglob("*.py")):
        parts = path.relative_to(root.parent).with_suffix("").parts
        yield ".".join(parts[:-1] if parts[-1] == "__init__" else parts), path


def harness_imports(path: Path) -> set[str]:
    """The harness modules a source file imports, anywhere in it (a function's body included)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "harness":
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.split(".")[0] == "harness")
    return found


def violations(root: Path) -> list[str]:
    """Every import that points up a layer, or across to a sibling layer."""
    bad = []
    for module, path in modules(root):
        source = layer_of(module)
        for target in sorted(harness_imports(path)):
            to = layer_of(target)
            if source is None or to is None or to == source:
                continue
            if rank_of(to) > rank_of(source):
                bad.append(f"{module} imports {target}: {to} is above {source}")
            elif rank_of(to) == rank_of(source):
                bad.append(f"{module} imports {target}: siblings {source} and {to} are independent")
    return bad


def cycles(root: Path) -> list[list[str]]:
    """Import cycles between harness modules (strongly connected components of more than one module)."""
    names = {module for module, _ in modules(root)}
    graph = {module: {t for t in harness_imports(path) if t in names and t != module} for module, path in modules(root)}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_imports_point_down_the_layers() -> None:
    assert violations(REPO / "harness") == []


def test_every_package_is_a_layer() -> None:
    packages = {p.name for p in (REPO / "harness").iterdir() if p.is_dir() and (p / "__init__.py").is_file()}
    layers = {name for entry in RANK for name in (entry if isinstance(entry, tuple) else (entry,))}
    assert packages == layers


def test_no_import_cycle() -> None:
    assert cycles(REPO / "harness") == []


def _package(tmp_path: Path, files: dict[str, str]) -> Path:
    root = tmp_path / "harness"
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


@pytest.mark.parametrize(("files", "expected"), [
    ({"core/bad.py": "from harness.cli import app\n"}, "harness.core.bad imports harness.cli: cli is above core"),
    ({"records/bad.py": "def f():\n    from harness.pipeline.runner import run\n"},
     "harness.records.bad imports harness.pipeline.runner: pipeline is above records"),
    ({"engines/bad.py": "import harness.scoring.base\n"},
     "harness.engines.bad imports harness.scoring.base: siblings engines and scoring are independent"),
])
def test_an_upward_import_is_caught(tmp_path: Path, files: dict[str, str], expected: str) -> None:
    """The check on a package with one bad module, a deferred import included: the import is named."""
    root = _package(tmp_path, {"cli/__init__.py": "", "core/ok.py": "import os\n", **files})
    assert violations(root) == [expected]


def test_a_cycle_is_caught(tmp_path: Path) -> None:
    root = _package(tmp_path, {"tasks/a.py": "from harness.tasks.b import x\n",
                               "tasks/b.py": "def f():\n    from harness.tasks.a import y\n"})
    assert cycles(root) == [["harness.tasks.a", "harness.tasks.b"]]


def test_the_command_line_loads_no_engine() -> None:
    """`import harness.cli` (what every `owb` command starts with) imports none of torch, transformers, vLLM or
    lm-eval: an engine is imported when a run names it."""
    code = f"import sys, harness.cli; print([m for m in {HEAVY!r} if m in sys.modules])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO)
    assert out.stdout.strip() == "[]"
