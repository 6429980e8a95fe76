"""`owb merge`: shards of one run (`owb run --shard I/N` on several machines) joined into one run whose metrics are
those a single run would have given: the shards must share card, tasks, prompts, data and settings."""

from __future__ import annotations

import time
from pathlib import Path

from harness.core.errors import ConfigError
from harness.core.hashing import stable_hash
from harness.core.iteration import batched
from harness.measure.energy import merge_energy
from harness.pipeline.plan import resolve_task
from harness.pipeline.summarize import ScorerPool, summarize_task
from harness.records.base import new_id, utc_now
from harness.records.run import RunRecord
from harness.records.store import RunDir

MERGE_CHUNK = 256  # samples copied at once


def _same(records: list[RunRecord], what: str, value: object, of: list[object]) -> None:
    for record, other in zip(records[1:], of[1:], strict=True):
        if other != value:
            raise ConfigError(f"cannot merge: {record.run_id} differs in {what}")


def _check_shards(records: list[RunRecord]) -> None:
    """Complete shards 1..N of one run: the same card, mode, seed, tasks, task configs and options."""
    first = records[0]
    for record in records:
        if record.invocation.shard is None:
            raise ConfigError(f"cannot merge: {record.run_id} is not a shard (run with --shard I/N)")
        if record.status != "complete":
            raise ConfigError(f"cannot merge: shard {record.run_id} is not complete; finish it with owb run --resume")
    shards = sorted(r.invocation.shard for r in records if r.invocation.shard)
    count = shards[0][1]
    if shards != [(i, count) for i in range(1, count + 1)]:
        raise ConfigError(f"cannot merge: the shards are {', '.join(f'{i}/{n}' for i, n in shards)}, not 1..{count} "
                          f"of {count} once each")
    _same(records, "model card", first.model.card_hash, [r.model.card_hash for r in records])
    _same(records, "thinking mode", first.thinking, [r.thinking for r in records])
    _same(records, "tasks", list(first.tasks), [list(r.tasks) for r in records])
    for task in first.tasks:
        _same(records, f"task {task}'s spec, data, prompts or decoding", first.tasks[task].config,
              [r.tasks[task].config for r in records])
    options = [r.invocation.model_dump(exclude={"shard", "output"}) for r in records]
    _same(records, "run options", options[0], list(options))


def merge(paths: list[Path], output: Path) -> RunDir:
    """Join shard runs into a new run directory under `output`; returns it."""
    if len(paths) < 2:
        raise ConfigError("owb merge needs the run directories of at least two shards")
    dirs = [RunDir(p) for p in paths]
    records = [d.read_run() for d in dirs]
    _check_shards(records)
    first = records[0]
    run_id = new_id(first.model.id, first.backend.name,
                    f"merged-{stable_hash([[r.run_id for r in records], time.time_ns()])[:6]}")
    merged = RunDir(output / run_id, first.invocation.compress)
    merged.create()
    record = first.model_copy(deep=True, update={
        "run_id": run_id, "merged_from": [r.run_id for r in records], "backend_report": {},
        "invocation": first.invocation.model_copy(update={"shard": None, "output": str(output)})})
    for task, entry in record.tasks.items():
        keys = [key for d in dirs for key in d.samples(task).keys()]
        if len(keys) != len(set(keys)):
            raise ConfigError(f"cannot merge: task {task} has samples in more than one shard")
        for d in dirs:  # streamed a chunk at a time: a run's texts are never all in memory
            for chunk in batched(d.samples(task).records(), MERGE_CHUNK):
                merged.append_samples(task, chunk)
        entry.gen_wall_s = sum(r.tasks[task].gen_wall_s for r in records)
        entry.energy = None
        for r in records:
            entry.energy = merge_energy(entry.energy, r.tasks[task].energy)
    record.updated_at = utc_now()
    scorers = ScorerPool()
    try:
        for name in record.tasks:
            resolved = resolve_task(name, first.invocation.lmeval_include)
            summarize_task(resolved, merged, record, first.seed, scorers.of(resolved))
    finally:
        scorers.close()
    merged.write_run(record)
    return merged
