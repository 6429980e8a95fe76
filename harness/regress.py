"""`owb check`: paired, per-sample comparison of a candidate run against a baseline run."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from scipy.stats import binomtest

from harness.errors import UserError
from harness.perf import run_output_tokens_per_s
from harness.results import RunDir

NOT_QUALITY = {"output_words", "empty_rate"}


@dataclass(frozen=True)
class MetricCheck:
    """One task metric compared on the samples both runs share."""

    task: str
    metric: str
    n_pairs: int
    baseline: float
    candidate: float
    test: str
    p_value: float
    drop_ci95: tuple[float, float] | None

    @property
    def drop(self) -> float:
        """Points lost by the candidate (negative: it gained)."""
        return self.baseline - self.candidate

    def regressed(self, max_drop: float, alpha: float) -> bool:
        """A drop larger than max_drop points that is significant at alpha."""
        return self.drop > max_drop and self.p_value < alpha


def mcnemar_exact(base: np.ndarray, cand: np.ndarray) -> float:
    """Two-sided exact McNemar p-value for paired 0/1 outcomes (binomial test on the discordant pairs)."""
    lost = int(((base == 1) & (cand == 0)).sum())
    gained = int(((base == 0) & (cand == 1)).sum())
    if lost + gained == 0:
        return 1.0
    return float(binomtest(lost, lost + gained, 0.5).pvalue)


def paired_bootstrap(base: np.ndarray, cand: np.ndarray, iters: int = 10000,
                     seed: int = 0) -> tuple[float, tuple[float, float]]:
    """Two-sided p-value and 95% CI of the mean paired difference (base - cand), by bootstrap over pairs."""
    diff = base - cand
    rng = np.random.default_rng(seed)
    means = rng.choice(diff, size=(iters, len(diff)), replace=True).mean(axis=1)
    p = 2 * min(float((means <= 0).mean()), float((means >= 0).mean()))
    lo, hi = np.percentile(means, [2.5, 97.5])
    return min(p, 1.0), (float(lo), float(hi))


def _sample_metric(name: str) -> str | None:
    """The per-sample score behind a run.json metric (pass@1 is the mean of `passed`); None if not paired."""
    if name in NOT_QUALITY or name.startswith("maj@") or (name.startswith("pass@") and name != "pass@1"):
        return None
    return "passed" if name == "pass@1" else name


def _comparable(task: str, base: dict[str, Any], cand: dict[str, Any]) -> None:
    if base["config"]["data"]["docs_hash"] != cand["config"]["data"]["docs_hash"]:
        raise UserError(f"cannot compare task {task}: the runs scored different documents")
    for part in ("spec_hash", "prompt_hash"):
        if base["config"][part] != cand["config"][part]:
            raise UserError(f"cannot compare task {task}: different {part.replace('_', ' ')} "
                            f"({base['config'][part]} vs {cand['config'][part]})")


def compare_runs(baseline: Path, candidate: Path) -> tuple[list[MetricCheck], dict[str, Any], dict[str, Any]]:
    """Paired checks of every shared task metric, plus both run.json records."""
    base_dir, cand_dir = RunDir(baseline), RunDir(candidate)
    base_rec, cand_rec = base_dir.read_run(), cand_dir.read_run()
    shared = [t for t in base_rec["tasks"] if t in cand_rec["tasks"]]
    if not shared:
        raise UserError("the runs share no task")
    checks = []
    for task in shared:
        _comparable(task, base_rec["tasks"][task], cand_rec["tasks"][task])
        base_samples = {s["key"]: s["scores"] for s in base_dir.load_samples(task)}
        cand_samples = {s["key"]: s["scores"] for s in cand_dir.load_samples(task)}
        keys = sorted(base_samples.keys() & cand_samples.keys())
        if not keys:
            raise UserError(f"cannot compare task {task}: no sample keys in common")
        for name in base_rec["tasks"][task]["metrics"]:
            score = _sample_metric(name)
            if score is None or score not in base_samples[keys[0]]:
                continue
            b = np.array([base_samples[k][score] for k in keys], dtype=float)
            c = np.array([cand_samples[k][score] for k in keys], dtype=float)
            if np.isin(np.concatenate([b, c]), (0.0, 1.0)).all():
                test, p, ci = "McNemar exact", mcnemar_exact(b, c), None
            else:
                test = "paired bootstrap"
                p, (lo, hi) = paired_bootstrap(b, c)
                ci = (100 * lo, 100 * hi)
            checks.append(MetricCheck(task, name, len(keys), 100 * b.mean(), 100 * c.mean(), test, p, ci))
    return checks, base_rec, cand_rec


def check(baseline: Path, candidate: Path, max_drop: float, alpha: float,
          max_slowdown: float | None) -> tuple[bool, str]:
    """Whether the candidate regressed, and a markdown summary fit for a CI job summary."""
    checks, base_rec, cand_rec = compare_runs(baseline, candidate)
    lines = [
        f"## owb check: {cand_rec['run_id']} vs baseline {base_rec['run_id']}",
        "",
        f"Fails on a drop of more than {max_drop:g} points that is significant at alpha = {alpha:g} "
        "(paired per sample).",
        "",
        "| task | metric | pairs | baseline | candidate | drop (pts) | test | p | verdict |",
        "|---|---|---:|---:|---:|---:|---|---:|---|",
    ]
    failed = False
    for c in checks:
        bad = c.regressed(max_drop, alpha)
        failed |= bad
        drop = f"{c.drop:+.2f}" + (f" [{c.drop_ci95[0]:+.2f}, {c.drop_ci95[1]:+.2f}]" if c.drop_ci95 else "")
        verdict = "**REGRESSION**" if bad else "ok"
        lines.append(f"| {c.task} | {c.metric} | {c.n_pairs} | {c.baseline:.2f} | {c.candidate:.2f} | {drop} | "
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
