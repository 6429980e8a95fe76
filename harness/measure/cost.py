"""What a task's answers cost: tokens, GPU energy and dollars, per output token and per correct answer.

A correct answer is a sample whose primary metric's per-sample score is 1 (tasks scored 0/1: maths, code); for
continuous scores (ROUGE) "per correct answer" is not defined and stays null. Dollars come from the hourly price of
one GPU times the GPUs the engine uses (tensor x pipeline x data parallel) over the task's generation wall time, with
start-up on a line of its own, or from an API's prices per million prompt and output tokens.
"""

from __future__ import annotations

from collections.abc import Sequence

from harness.core.errors import ConfigError
from harness.core.stats import per
from harness.measure.energy import joules_per_correct, joules_per_token
from harness.records.base import EnergyReading
from harness.records.run import MetricSummary, PerfSummary, RunOptions, TaskCost
from harness.records.sample import SampleStats
from harness.scoring.base import ScoreInfo


def check_pricing(opts: RunOptions) -> None:
    """One way of pricing a run: a GPU's hourly price, or an API's token prices (both of them)."""
    api = (opts.price_in_usd, opts.price_out_usd)
    if opts.gpu_hourly_usd is not None and any(p is not None for p in api):
        raise ConfigError("price a run by --gpu-hourly-usd or by --price-in/--price-out, not both")
    if (api[0] is None) != (api[1] is None):
        raise ConfigError("--price-in and --price-out go together (USD per 1M prompt / output tokens)")


def gpus_used(opts: RunOptions) -> int:
    """The GPUs a run's engine uses: tensor x pipeline x data parallel size (1 each when not set). A served model's
    are the server's business: price it by --gpu-hourly-usd of the whole server."""
    return (opts.tp or 1) * (opts.pp or 1) * (opts.dp or 1)


def gpu_usd(seconds: float | None, gpus: int, hourly_usd: float | None) -> float | None:
    """Dollars of `gpus` GPUs at `hourly_usd` each for `seconds` (None without a price or a time)."""
    if seconds is None or hourly_usd is None:
        return None
    return seconds / 3600 * gpus * hourly_usd


def correct_answers(samples: Sequence[SampleStats], primary: MetricSummary | None,
                    infos: Sequence[ScoreInfo]) -> float | None:
    """Samples whose primary per-sample score is 1, where that score is a 0/1 grade; None otherwise."""
    score = primary.score if primary is not None else None
    binary = {i.name for i in infos if i.binary}
    if score is None or score not in binary or not samples:
        return None
    return float(sum(s.scores.get(score, 0.0) for s in samples))


def task_cost(samples: Sequence[SampleStats], perf: PerfSummary, primary: MetricSummary | None,
              infos: Sequence[ScoreInfo], energy: EnergyReading | None, opts: RunOptions) -> TaskCost:
    """Tokens, energy and dollars of a task, per sample, per output token and per correct answer."""
    n = len(samples)
    correct = correct_answers(samples, primary, infos)
    joules = energy.joules if energy is not None else None
    counted = perf.output_tokens > 0  # no token counted (replayed outputs without counts): per-token figures unknown
    if opts.price_in_usd is not None and opts.price_out_usd is not None and not counted:
        usd: float | None = None
        pricing: str | None = "API prices given, but no token was counted (replayed outputs): dollars unknown"
    elif opts.price_in_usd is not None and opts.price_out_usd is not None:
        usd = (perf.prompt_tokens * opts.price_in_usd + perf.output_tokens * opts.price_out_usd) / 1e6
        pricing = f"API: ${opts.price_in_usd:g} / ${opts.price_out_usd:g} per 1M prompt / output tokens"
    elif opts.gpu_hourly_usd is not None:
        gpus = gpus_used(opts)
        usd = gpu_usd(perf.wall_s, gpus, opts.gpu_hourly_usd)
        pricing = (f"GPU: ${opts.gpu_hourly_usd:g} per GPU-hour x {gpus} GPU{'s' if gpus > 1 else ''} over "
                   f"{perf.wall_s:.1f} s of generation (engine start-up not included)")
    else:
        usd, pricing = None, None
    return TaskCost(
        correct=correct,
        output_tokens_per_sample=per(perf.output_tokens, n) if counted else None,
        reasoning_tokens_per_sample=per(perf.reasoning_tokens, n) if counted else None,
        answer_tokens_per_sample=per(perf.answer_tokens, n) if counted else None,
        output_tokens_per_correct=per(perf.output_tokens, correct) if counted else None,
        energy=energy,
        joules_per_output_token=joules_per_token(joules, perf.output_tokens),
        joules_per_correct=joules_per_correct(joules, correct or 0.0),
        usd=usd,
        usd_per_1m_output_tokens=per(usd, perf.output_tokens, 1e6),
        usd_per_1k_correct=per(usd, correct, 1e3),
        pricing=pricing,
        gpus=gpus_used(opts) if opts.gpu_hourly_usd is not None else None,
    )
