"""Uncertainty of every figure: stderr, 95% CIs (Wilson for 0/1 data, bootstrap otherwise), pass@k, percentiles."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

Z95 = 1.959963984540054


def summarize(per_doc: Sequence[float], scale: float = 100.0, seed: int = 0) -> dict[str, Any]:
    """Mean over documents with its standard error and 95% CI, all multiplied by `scale` (100 for percent).

    One value per document (K samples already averaged), so the CI is over documents, not samples.
    Documents scored only 0 or 1 get a Wilson score interval; others a percentile bootstrap.
    """
    values = np.asarray(per_doc, dtype=float)
    n = len(values)
    if n == 0:
        return {"value": None, "stderr": None, "ci95": None}
    mean = float(values.mean())
    stderr = float(values.std(ddof=1) / math.sqrt(n)) if n > 1 else 0.0
    if np.isin(values, (0.0, 1.0)).all():
        lo, hi = wilson(mean, n)
    else:
        lo, hi = bootstrap_ci(values, seed=seed)
    return {
        "value": round(mean * scale, 10),
        "stderr": round(stderr * scale, 10),
        "ci95": [round(lo * scale, 10), round(hi * scale, 10)],
    }


def wilson(p: float, n: int) -> tuple[float, float]:
    """Wilson score 95% interval of a proportion p observed over n trials."""
    denom = 1 + Z95**2 / n
    centre = (p + Z95**2 / (2 * n)) / denom
    half = Z95 * math.sqrt(p * (1 - p) / n + Z95**2 / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def bootstrap_ci(values: np.ndarray, iters: int = 2000, seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap 95% interval of the mean (seeded, so reruns agree)."""
    rng = np.random.default_rng(seed)
    means = rng.choice(values, size=(iters, len(values)), replace=True).mean(axis=1)
    lo, hi = np.percentile(means, [2.5, 97.5])
    return float(lo), float(hi)


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k (Chen et al., 2021): chance that k of n samples, c of them correct, include a pass."""
    if n - c < k:
        return 1.0
    return 1.0 - float(np.prod(1.0 - k / np.arange(n - c + 1, n + 1)))


def percentile_values(values: Sequence[float | None], points: Sequence[float]) -> tuple[float, ...] | None:
    """The mean, then the given percentiles, of the measured values (None ignored); None when nothing was measured."""
    xs = np.asarray([v for v in values if v is not None], dtype=float)
    if len(xs) == 0:
        return None
    return (float(xs.mean()), *(float(p) for p in np.percentile(xs, list(points))))


def per(value: float | None, count: float | None, scale: float = 1.0) -> float | None:
    """`scale * value / count`: a figure per unit (per token, per correct answer); None without a value or a count."""
    return None if value is None or count is None or count <= 0 else scale * value / count
