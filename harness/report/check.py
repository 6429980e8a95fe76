"""`owb check`: a candidate run against a baseline run, paired per document.

Each metric that is a per-document mean of a per-sample score (its `score` descriptor) is compared on the documents
both runs scored: the document's value is the mean over its K samples, so K correlated samples never count as K
independent pairs. With K = 1 and 0/1 scores the test is the exact McNemar test; otherwise a sign-flip permutation
test of the per-document differences (their mean is the drop, with a bootstrap 95% interval). Runs whose documents
differ are refused; runs whose generation settings differ are refused unless the caller allows it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from harness.core.errors import ConfigError
from harness.measure.perf import run_output_tokens_per_s
from harness.records.run import RunRecord, TaskResult
from harness.records.store import RunDir

PERMUTATIONS = 10000


@dataclass(frozen=True)
class MetricCheck:
    """One task metric compared on the documents both runs share; values in the metric's display unit."""

    task: str
    metric: str
    n_docs: int
    baseline: float
    candidate: float
    higher_is_better: bool
    test: str
    p_value: float
    drop_ci95: tuple[float, float] | None

    @property
    def drop(self) -> float:
        """How much worse the candidate is (negative: better), in points."""
        gap = self.baseline - self.candidate
        return gap if self.higher_is_better else -gap

    def regressed(self, max_drop: float, alpha: float) -> bool:
        """A drop larger than max_drop points that is significant at alpha."""
        return self.drop > max_drop and self.p_value < alpha


def mcnemar_exact(base: np.ndarray, cand: np.ndarray) -> float:
    """Two-sided exact McNemar p-value for paired 0/1 outcomes (binomial test on the discordant pairs)."""
    lost = int(((base == 1) & (cand == 0)).sum())
    gained = int(((base == 0) & (cand == 1)).sum())
    if lost + gained == 0:
        return 1.0
    from scipy.stats import binomtest  # scipy.stats takes a second to import: only when a test runs

    return float(binomtest(lost, lost + gained, 0.5).pvalue)


def sign_flip_test(base: np.ndarray, cand: np.ndarray, iters: int = PERMUTATIONS, seed: int = 0) -> float:
    """Two-sided p-value of a paired sign-flip permutation test on the mean per-document difference."""
    diff = base - cand
    observed = abs(diff.mean())
    if not diff.any():
        return 1.0
    rng = np.random.default_rng(seed)
    signs = rng.choice((-1.0, 1.0), size=(iters, len(diff)))
    flipped = np.abs((signs * diff).mean(axis=1))
    return float((1 + (flipped >= observed - 1e-12).sum()) / (iters + 1))


def paired_bootstrap(base: np.ndarray, cand: np.ndarray, iters: int = 10000,
                     seed: int = 0) -> tuple[float, tuple[float, float]]:
    """Two-sided p-value and 95% CI of the mean paired difference (base - cand), by bootstrap over pairs."""
    diff = base - cand
    rng = np.random.default_rng(seed)
    means = rng.choice(diff, size=(iters, len(diff)), replace=True).mean(axis=1)
    p = 2 * min(float((means <= 0).mean()), float((means >= 0).mean()))
    lo, hi = np.percentile(means, [2.5, 97.5])
    return min(p, 1.0), (float(lo), float(hi))


def paired_test(base: np.ndarray, cand: np.ndarray, samples_per_doc: int) -> tuple[str, float, tuple[float, float]
                                                                                         | None]:
    """The test that fits per-document values: exact McNemar for one 0/1 sample per document, else sign-flip."""
    if samples_per_doc == 1 and np.isin(np.concatenate([base, cand]), (0.0, 1.0)).all():
        return "McNemar exact", mcnemar_exact(base, cand), None
    _, ci = paired_bootstrap(base, cand)
    return "sign-flip permutation", sign_flip_test(base, cand), ci


def settings_changes(task: str, base: TaskResult, cand: TaskResult, base_rec: RunRecord,
                     cand_rec: RunRecord) -> list[str]:
    """What differs between two runs of a task besides the seed; different documents are always refused."""
    if base.config.data.docs_hash != cand.config.data.docs_hash:
        raise ConfigError(f"cannot compare task {task}: the runs scored different documents")
    if base_rec.invocation.shard != cand_rec.invocation.shard:
        shards = [f"{r.invocation.shard[0]}/{r.invocation.shard[1]}" if r.invocation.shard else "all"
                  for r in (base_rec, cand_rec)]
        raise ConfigError(f"cannot compare task {task}: the runs scored different shards ({shards[0]} vs {shards[1]}); "
                          "`owb merge` the shards first")
    changes = []
    b_gen = base.config.generation.model_dump(exclude={"seed"})
    c_gen = cand.config.generation.model_dump(exclude={"seed"})
    changes += [f"{k} {b_gen[k]} -> {c_gen[k]}" for k in b_gen if b_gen[k] != c_gen[k]]
    for part in ("prompt_hash", "spec_hash"):
        before, after = getattr(base.config, part), getattr(cand.config, part)
        if before != after:
            changes.append(f"different {part.replace('_', ' ')} ({before} vs {after})")
    if base_rec.thinking != cand_rec.thinking:
        changes.append(f"thinking {base_rec.thinking} -> {cand_rec.thinking}")
    return [f"{task}: {c}" for c in changes]


def require_complete(record: RunRecord, run_dir: RunDir) -> None:
    """A run whose status is complete and whose samples on disk are the ones its summary counted."""
    if record.status != "complete":
        raise ConfigError(f"run {run_dir.path} is not complete (status {record.status}); finish it with "
                          f"`owb run --resume {run_dir.path}`")
    for task, entry in record.tasks.items():
        have = run_dir.samples(task).count()
        if entry.n_samples is None or have != entry.n_samples:
            raise ConfigError(f"run {run_dir.path} is incomplete: task {task} has {have} samples on disk, "
                              f"run.json counts {entry.n_samples}")


def document_means(run_dir: RunDir, task: str, score: str) -> dict[str, float]:
    """Each document's mean of a per-sample score over its K samples."""
    sums: dict[str, list[float]] = {}
    for s in run_dir.samples(task).stats():
        sums.setdefault(s.doc_id, []).append(s.scores[score])
    return {doc: sum(v) / len(v) for doc, v in sums.items()}


def compare_runs(baseline: Path, candidate: Path,
                 allow_config_change: bool = False) -> tuple[list[MetricCheck], RunRecord, RunRecord, list[str]]:
    """Paired checks of every shared task metric, both run records, and the allowed setting changes."""
    base_dir, cand_dir = RunDir(baseline), RunDir(candidate)
    base_rec, cand_rec = base_dir.read_run(), cand_dir.read_run()
    require_complete(base_rec, base_dir)
    require_complete(cand_rec, cand_dir)
    shared = [t for t in base_rec.tasks if t in cand_rec.tasks]
    if not shared:
        raise ConfigError("the runs share no task")
    checks, changes = [], []
    for task in shared:
        base, cand = base_rec.tasks[task], cand_rec.tasks[task]
        task_changes = settings_changes(task, base, cand, base_rec, cand_rec)
        if task_changes and not allow_config_change:
            raise ConfigError(f"cannot compare {'; '.join(task_changes)}; pass --allow-config-change to compare anyway")
        changes += task_changes
        k = max(base.config.generation.samples_per_doc, cand.config.generation.samples_per_doc)
        for name, summary in base.metrics.items():
            other = cand.metrics.get(name)
            if summary.score is None or summary.higher_is_better is None or other is None or other.score is None:
                continue
            b_docs, c_docs = document_means(base_dir, task, summary.score), document_means(cand_dir, task, other.score)
            if b_docs.keys() != c_docs.keys() or not b_docs:
                raise ConfigError(f"cannot compare task {task}: the runs hold different documents "
                                  f"({len(b_docs)} and {len(c_docs)}, {len(b_docs.keys() & c_docs.keys())} shared)")
            docs = sorted(b_docs)
            b = np.array([b_docs[d] for d in docs], dtype=float)
            c = np.array([c_docs[d] for d in docs], dtype=float)
            test, p, ci = paired_test(b, c, k)
            scale = 100.0 if summary.scale == "percent" else 1.0
            sign = 1.0 if summary.higher_is_better else -1.0
            drop_ci = (sign * scale * ci[0], sign * scale * ci[1]) if ci else None
            if drop_ci and drop_ci[0] > drop_ci[1]:
                drop_ci = (drop_ci[1], drop_ci[0])
            checks.append(MetricCheck(task, name, len(docs), scale * b.mean(), scale * c.mean(),
                                      summary.higher_is_better, test, p, drop_ci))
    return checks, base_rec, cand_rec, changes


def check(baseline: Path, candidate: Path, max_drop: float, alpha: float, max_slowdown: float | None,
          allow_config_change: bool = False) -> tuple[bool, str]:
    """Whether the candidate regressed, and a markdown summary fit for a CI job summary."""
    checks, base_rec, cand_rec, changes = compare_runs(baseline, candidate, allow_config_change)
    lines = [
        f"## owb check: {cand_rec.run_id} vs baseline {base_rec.run_id}",
        "",
        f"Fails on a drop of more than {max_drop:g} points that is significant at alpha = {alpha:g} "
        "(paired per document; a document's value is the mean over its samples).",
        "",
    ]
    if changes:
        lines += ["**Settings differ (--allow-config-change):** " + "; ".join(changes), ""]
    lines += [
        "| task | metric | docs | baseline | candidate | drop (pts) | test | p | verdict |",
        "|---|---|---:|---:|---:|---:|---|---:|---|",
    ]
    failed = False
    for c in checks:
        bad = c.regressed(max_drop, alpha)
        failed |= bad
        drop = f"{c.drop:+.2f}" + (f" [{c.drop_ci95[0]:+.2f}, {c.drop_ci95[1]:+.2f}]" if c.drop_ci95 else "")
        verdict = "**REGRESSION**" if bad else "ok"
        lines.append(f"| {c.task} | {c.metric} | {c.n_docs} | {c.baseline:.2f} | {c.candidate:.2f} | {drop} | "
                     f"{c.test} | {c.p_value:.3g} | {verdict} |")
    if max_slowdown is not None:
        base_speed, cand_speed = run_output_tokens_per_s(base_rec), run_output_tokens_per_s(cand_rec)
        if base_speed and cand_speed:
            slowdown = 100 * (1 - cand_speed / base_speed)
            slow = slowdown > max_slowdown
            failed |= slow
            lines += ["", f"Output tokens/s: baseline {base_speed:.1f}, candidate {cand_speed:.1f} "
                          f"({slowdown:+.1f}% slower; limit {max_slowdown:g}%): {'**REGRESSION**' if slow else 'ok'}"]
        else:
            lines += ["", "Output tokens/s: not measured in one of the runs (replay); speed not checked."]
    lines += ["", f"**Result: {'FAIL' if failed else 'PASS'}**"]
    return failed, "\n".join(lines)
