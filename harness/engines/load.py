"""The load a served model is put under, in `vllm bench serve`'s terms: requests in flight (`max_concurrency`, an
asyncio semaphore), arrivals at `request_rate` with `burstiness` (gamma intervals, as vLLM draws them), and the
service-level objectives a request must meet to count towards goodput (`ttft:MS tpot:MS e2el:MS`)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

SLO_METRICS = ("ttft", "tpot", "e2el")


class LoadShape(BaseModel):
    """How requests are sent: at most `max_concurrency` in flight (None: no limit), arriving at `request_rate` per
    second (None: all at once, vLLM's `inf`) with gamma intervals of shape `burstiness` (1: Poisson)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_concurrency: int | None = Field(default=None, gt=0)
    request_rate: float | None = Field(default=None, gt=0)
    burstiness: float = Field(default=1.0, gt=0)

    def describe(self) -> str:
        """The load in words, for tables and reports."""
        rate = "inf" if self.request_rate is None else f"{self.request_rate:g}/s"
        shape = "" if self.request_rate is None else f", burstiness {self.burstiness:g}"
        limit = "no limit" if self.max_concurrency is None else f"{self.max_concurrency} in flight"
        return f"rate {rate}{shape}, {limit}"


def arrival_delays(count: int, rate: float | None, burstiness: float, rng: np.random.Generator) -> list[float]:
    """Seconds after the first dispatch at which each request arrives, as `vllm bench serve` schedules them: all at
    0 for an unbounded rate; else gamma intervals of shape `burstiness` and scale 1/(rate * burstiness) (constant
    1/rate for an infinite burstiness), summed, and rescaled so the last arrival is at count/rate."""
    if count < 1:
        return []
    if rate is None or math.isinf(rate):
        return [0.0] * count
    if math.isinf(burstiness):
        intervals = np.full(count, 1.0 / rate)
    else:
        intervals = rng.gamma(shape=burstiness, scale=1.0 / (rate * burstiness), size=count)
    delays = np.cumsum(intervals)
    if delays[-1] > 0:
        delays *= (count / rate) / delays[-1]
    return [float(d) for d in delays]


class Slo(BaseModel):
    """Service-level objectives in milliseconds (vLLM's `--goodput ttft:MS tpot:MS e2el:MS`); a request counts
    towards goodput when it meets every one that is set."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    ttft: float | None = Field(default=None, gt=0)
    tpot: float | None = Field(default=None, gt=0)
    e2el: float | None = Field(default=None, gt=0)

    @classmethod
    def parse(cls, text: str | Sequence[str] | dict[str, float] | None) -> Slo | None:
        """`ttft:500 tpot:50` (or a list of KEY:MS pairs, or a mapping) as objectives; None for none given."""
        if text is None or isinstance(text, dict):
            return None if not text else cls.model_validate(text)
        pairs = text.replace(",", " ").split() if isinstance(text, str) else list(text)
        values: dict[str, float] = {}
        for pair in pairs:
            key, sep, raw = pair.partition(":")
            if not sep or key not in SLO_METRICS:
                raise ValueError(f"goodput takes KEY:MS pairs with KEY one of {', '.join(SLO_METRICS)}, not '{pair}'")
            try:
                values[key] = float(raw)
            except ValueError:
                raise ValueError(f"goodput: '{raw}' in '{pair}' is not a number of milliseconds") from None
        return cls.model_validate(values) if values else None

    def met(self, ttft_s: float, tpot_s: float, e2el_s: float) -> bool:
        """Whether one completed request meets every objective (vLLM counts TPOT as 0 for a single output token)."""
        limits = ((self.ttft, ttft_s), (self.tpot, tpot_s), (self.e2el, e2el_s))
        return all(limit is None or value <= limit / 1000 for limit, value in limits)

    def as_text(self) -> str:
        """`ttft:500 tpot:50`, the form vLLM's flag takes."""
        return " ".join(f"{k}:{v:g}" for k, v in self.model_dump(exclude_none=True).items())


@dataclass(frozen=True)
class Latency:
    """What goodput needs of one completed request, in seconds."""

    ttft_s: float
    e2el_s: float
    output_tokens: int

    @property
    def tpot_s(self) -> float:
        """(e2el - ttft) / (output tokens - 1); 0 for a single token, as vLLM counts it for goodput."""
        return (self.e2el_s - self.ttft_s) / (self.output_tokens - 1) if self.output_tokens > 1 else 0.0


def good_requests(slo: Slo, completed: Sequence[Latency]) -> int:
    """Completed requests that meet every objective (failed requests never count)."""
    return sum(slo.met(r.ttft_s, r.tpot_s, r.e2el_s) for r in completed)
