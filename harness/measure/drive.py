"""Running one level of `owb bench`: a served model through owb's asyncio load generator (vLLM's semaphore and
arrivals, or waves), or an in-process engine through the backend contract (waves: an engine takes its requests as
batches); each returns every request's figures and the level's duration, first dispatch to last completion."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx
import numpy as np

from harness.config.cards import Sampling
from harness.core.errors import ConfigError
from harness.engines.base import Backend, GenRequest
from harness.engines.http import StreamClient, stream_client
from harness.engines.load import LoadShape
from harness.engines.stream import (
    Endpoint,
    Outcome,
    completion_payload,
    in_waves,
    stream_completion,
    under_load,
)
from harness.measure.load import Item, Measured, engine_scope, from_generation, from_outcome
from harness.records.bench import Mode, Scope


@dataclass
class ServedRunner:
    """Levels on a served model: streamed completions with EOS ignored and an explicit temperature, timed on one
    event loop with one HTTP client for the whole bench (warm-ups open its connections); failures are counted,
    never retried."""

    backend: Backend
    endpoint: Endpoint
    temperature: float
    transport: httpx.AsyncBaseTransport | None = None
    scope: Scope = "client"
    in_process: bool = False
    loop: asyncio.Runner = field(default_factory=asyncio.Runner)
    client: StreamClient | None = None

    def run(self, items: Sequence[Item], load: LoadShape, mode: Mode,
            rng: np.random.Generator) -> tuple[list[Measured], float]:
        """Send the items under the load (or in waves of `max_concurrency`); figures in the order sent."""
        outcomes, duration = self.loop.run(self._run(items, load, mode, rng))
        by_key = {o.key: o for o in outcomes}
        return [from_outcome(item, by_key[item.key], self.backend.count_tokens) for item in items], duration

    async def _run(self, items: Sequence[Item], load: LoadShape, mode: Mode,
                   rng: np.random.Generator) -> tuple[list[Outcome], float]:
        if self.client is None:
            self.client = stream_client(self.endpoint.headers, self.endpoint.timeout_s, self.transport)
        jobs = [self._job(self.client, item) for item in items]
        start = time.perf_counter()
        source = under_load(jobs, load, rng) if mode == "load" else in_waves(jobs, load.max_concurrency or len(jobs))
        outcomes = [outcome async for outcome in source]
        return outcomes, time.perf_counter() - start

    def _job(self, client: StreamClient, item: Item) -> Any:
        payload = completion_payload(self.endpoint.model, item.prompt, item.output_len, self.temperature, True)
        return lambda arrival: stream_completion(client, self.endpoint.base_url, payload, item.key, arrival)

    def close(self) -> None:
        """Close the HTTP client and the event loop."""
        if self.client is not None:
            self.loop.run(self.client.aclose())
        self.loop.close()


@dataclass
class EngineRunner:
    """Levels on an in-process engine: waves of `max_concurrency` requests through `generate`, EOS masked until
    the output length, each wave finished before the next."""

    backend: Backend
    temperature: float
    seed: int
    scope: Scope = "engine"
    in_process: bool = True

    def run(self, items: Sequence[Item], load: LoadShape, mode: Mode,
            rng: np.random.Generator) -> tuple[list[Measured], float]:
        """The items in waves; the scope becomes `batch` when the engine times its rows as one batch."""
        if load.request_rate is not None or load.max_concurrency is None:
            raise ConfigError("an in-process engine runs waves of --max-concurrency requests; --request-rate and an "
                              "unlimited concurrency need a served model (--backend openai)")
        size = load.max_concurrency
        sampling = Sampling(temperature=self.temperature)
        measured: dict[str, Measured] = {}
        scopes = []
        start = time.perf_counter()
        for first in range(0, len(items), size):
            wave = items[first : first + size]
            sent = time.perf_counter()
            requests = [GenRequest(item.key, item.prompt if isinstance(item.prompt, str) else "", sampling,
                                   item.output_len, self.seed + first + i, (), item.output_len,
                                   item.prompt if isinstance(item.prompt, tuple) else None)
                        for i, item in enumerate(wave)]
            for gen in self.backend.generate(requests):
                measured[gen.key] = from_generation(gen, sent)
                scopes.append(gen.timings.scope)
        duration = time.perf_counter() - start
        self.scope = engine_scope(scopes)
        return [measured[item.key] for item in items], duration

    def close(self) -> None:
        """Nothing to free: the backend is closed by its owner."""
