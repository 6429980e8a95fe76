"""OpenAI-compatible backend (vLLM serve, SGLang, TGI...): streamed /v1/completions on one asyncio client (the
load generator of `owb bench`), under a load shape (requests in flight, a request rate with burstiness), with
timeouts, retries with backoff, and failover across replicas; what it observed (the load, goodput against
service-level objectives, per-replica figures) goes into run.json as the backend's report.

Prompts are rendered locally through the model's own chat template (when the card's tokenizer is
available), so a served run sends exactly the prompts an offline run would and the prompt hashes agree.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx
import numpy as np
from pydantic import BaseModel, Field, field_validator

from harness.config.cards import ModelCard
from harness.core.errors import ConfigError, ServerError, UserError
from harness.core.log import warn
from harness.engines.base import BackendOptions, Generation, GenRequest, TokenizerMethods
from harness.engines.http import StreamClient, stream_client
from harness.engines.load import Latency, LoadShape, Slo, good_requests
from harness.engines.replicas import Replica, ReplicaPool, parse_base_urls
from harness.engines.stream import (
    Endpoint,
    Outcome,
    iterate_in_thread,
    served_prefix_caching,
    stream_completion,
    under_load,
)
from harness.engines.weights import resolve_model_path
from harness.records.base import BackendInfo, Percentiles
from harness.records.sample import Timings

BACKOFF_S = 0.5  # the first retry's wait; it doubles with each attempt, up to 10 s


class OpenAIOptions(BackendOptions):
    """Options of the OpenAI-compatible client (`--base-url` is `base_url`; `--batch-size` and `--max-concurrency`
    are `batch_size`; `--request-rate` is `request_rate`)."""

    base_url: tuple[str, ...] = ()  # the replicas: one URL, URL1,URL2,... or @FILE (one per line); e.g. http://h:8000/v1
    batch_size: int = Field(default=64, gt=0)  # requests in flight, over all replicas (vLLM's --max-concurrency)
    request_rate: float | None = Field(default=None, gt=0)  # arrivals per second (None: all at once, vLLM's inf)
    burstiness: float = Field(default=1.0, gt=0)  # gamma shape of the arrival intervals (1: Poisson)
    goodput: Slo | None = None  # service-level objectives, "ttft:MS tpot:MS e2el:MS": the report counts goodput
    energy_gpus: tuple[str, ...] = ()  # the server's GPUs on this machine (NVML index or UUID) to meter; none: none
    arrival_seed: int = 0  # seed of the arrival intervals
    timeout_s: float = 600.0
    retries: int = 5
    api_key: str = "EMPTY"
    served_model: str | None = None  # default: the first model the first reachable replica lists

    @field_validator("base_url", mode="before")
    @classmethod
    def _replicas(cls, value: Any) -> tuple[str, ...]:
        return parse_base_urls(value)

    @field_validator("goodput", mode="before")
    @classmethod
    def _objectives(cls, value: Any) -> Slo | None:
        return value if value is None or isinstance(value, Slo) else Slo.parse(value)

    @field_validator("energy_gpus", mode="before")
    @classmethod
    def _gpus(cls, value: Any) -> tuple[str, ...]:
        items = str(value).split(",") if isinstance(value, (str, int)) else list(value or ())
        return tuple(str(g).strip() for g in items if str(g).strip())

    @property
    def load(self) -> LoadShape:
        """The load shape of every generate call."""
        return LoadShape(max_concurrency=self.batch_size, request_rate=self.request_rate, burstiness=self.burstiness)


class ServedLoad(BaseModel):
    """What the backend observed of the load it put on the server, over every generate call of a run: the load
    shape, completed requests, token counts (and how many were re-tokenised for lack of usage), the time spent,
    and goodput against the objectives where they were given; latencies on the client's clock (scope `client`)."""

    scope: str = "client"
    load: LoadShape
    slo: str | None = None  # the objectives, "ttft:MS tpot:MS e2el:MS"
    prefix_caching: bool | None = None  # the server's, from its /metrics (None: it does not say)
    completed: int = 0
    good: int | None = None  # completed requests that met every objective
    output_tokens: int = 0
    retokenized: int = 0  # requests whose usage was missing: output tokens counted by the local tokenizer
    duration_s: float = 0.0  # first dispatch to last completion, summed over generate calls
    request_throughput: float | None = None
    output_throughput: float | None = None
    request_goodput: float | None = None  # good / duration_s (vLLM's request_goodput)
    ttft_ms: Percentiles | None = None
    tpot_ms: Percentiles | None = None


@dataclass
class _Observed:
    """Per-request figures the report is built from."""

    latencies: list[Latency] = field(default_factory=list)
    retokenized: int = 0
    duration_s: float = 0.0


class OpenAIBackend(TokenizerMethods):
    """Streams completions from one server or several replicas on one asyncio event loop; `batch_size` requests in
    flight, arriving at `request_rate` when set."""

    name = "openai"
    Options = OpenAIOptions
    measures_speed = True
    needs_card = True
    generates_in_background = True  # requests stay in flight on the server while owb scores

    def __init__(self, card: ModelCard, options: OpenAIOptions, transport: httpx.MockTransport | None = None) -> None:
        if not options.base_url:
            raise ConfigError("--backend openai needs --base-url, e.g. http://127.0.0.1:8000/v1 (or URL1,URL2 or "
                              "@FILE for replicas)")
        self.card = card
        self.options = options
        self.pool = ReplicaPool(options.base_url)
        self.transport = transport
        self.client = httpx.Client(timeout=httpx.Timeout(options.timeout_s, connect=10.0), transport=transport,
                                   headers=self._headers())
        self.served_model = self._served_model(options.served_model)
        self.tokenizer = _local_tokenizer(card)
        self.rng = np.random.default_rng(options.arrival_seed)
        self.observed = _Observed()
        self.prefix_caching: bool | None = None  # read from the server's /metrics by describe()

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.options.api_key}"}

    def _served_model(self, named: str | None) -> str:
        """The model name from the first reachable replica's /models (or `named`); every reachable replica must list
        it, and one that cannot be reached is marked down. A single server with a named model is not asked."""
        if named is not None and len(self.pool.replicas) == 1:
            return named
        served, unusable = named, []
        for replica in self.pool.replicas:
            try:
                models = _model_ids(self.client.get(f"{replica.url}/models", timeout=10.0))
            except (httpx.HTTPError, _Unusable) as exc:
                why = str(exc) if isinstance(exc, _Unusable) else type(exc).__name__
                unusable.append(f"{replica.url} ({why})")
                self.pool.mark_down(replica, f"unusable at start ({why})", 1)
                continue
            served = served or models[0]
            if served not in models:
                raise ConfigError(f"replica {replica.url} serves {', '.join(models)}, not '{served}': every replica "
                                  "must serve the same model")
        if served is None:
            raise ServerError(f"server down: cannot reach {'; '.join(unusable)}")
        if unusable:
            warn(f"replica {'; '.join(unusable)} cannot be used; going on without it")
        return served

    def describe(self) -> BackendInfo:
        """Server URL(s), served model and client settings (the first live replica's version where it reports one)."""
        urls = [r.url for r in self.pool.replicas]
        live = self.pool.live()
        try:
            version = self.client.get(f"{live[0].url.removesuffix('/v1')}/version", timeout=5.0).json().get("version")
        except (httpx.HTTPError, ValueError, AttributeError, IndexError):
            version = None
        self.prefix_caching = served_prefix_caching(self.client, live[0].url) if live else None
        load = self.options.load
        return BackendInfo(name=self.name, version=version,
                           args={"base_url": ",".join(urls), "replicas": urls, "served_model": self.served_model,
                                 "concurrency": load.max_concurrency, "request_rate": load.request_rate,
                                 "burstiness": load.burstiness, "retries": self.options.retries,
                                 "endpoint": "/completions", "prefix_caching": self.prefix_caching})

    def endpoint(self) -> Endpoint:
        """The one server `owb bench` drives (its own load generator, no retries)."""
        if len(self.pool.replicas) > 1:
            raise ConfigError("owb bench measures one server: give one --base-url, not a replica list")
        return Endpoint(self.pool.replicas[0].url, self.served_model, self._headers(), self.options.timeout_s)

    def local_gpus(self) -> tuple[str, ...]:
        """The server's GPUs on this machine to meter (`energy_gpus`); none unless the user named them."""
        return self.options.energy_gpus

    def generate(self, requests: Sequence[GenRequest]) -> Iterator[Generation]:
        """Stream every request under the load shape over all replicas; yield each as it completes."""
        return iterate_in_thread(lambda emit: self._produce(requests, emit))

    async def _produce(self, requests: Sequence[GenRequest], emit: Callable[[Generation], None]) -> None:
        client = stream_client(self._headers(), self.options.timeout_s, self.transport)
        jobs = [_job(self, client, r) for r in requests]
        start = time.perf_counter()
        try:
            async for gen in under_load(jobs, self.options.load, self.rng):
                emit(gen)
        finally:
            self.observed.duration_s += time.perf_counter() - start
            await client.aclose()

    def report(self) -> dict[str, Any]:
        """The load and what it achieved (goodput where objectives were given), and per replica: requests completed,
        failed attempts, when it was marked down, TTFT and e2e percentiles."""
        with self.pool.lock:
            replicas = [r.report() for r in self.pool.replicas]
        seen, slo = self.observed, self.options.goodput
        done, wall = len(seen.latencies), seen.duration_s
        tokens = sum(x.output_tokens for x in seen.latencies)
        good = good_requests(slo, seen.latencies) if slo is not None else None
        load = ServedLoad(
            load=self.options.load, slo=slo.as_text() if slo else None, prefix_caching=self.prefix_caching,
            completed=done, good=good, output_tokens=tokens, retokenized=seen.retokenized, duration_s=wall,
            request_throughput=done / wall if wall > 0 else None, output_throughput=tokens / wall if wall > 0 else None,
            request_goodput=good / wall if good is not None and wall > 0 else None,
            ttft_ms=Percentiles.of([1000 * x.ttft_s for x in seen.latencies]),
            tpot_ms=Percentiles.of([1000 * x.tpot_s for x in seen.latencies if x.output_tokens > 1]))
        return {"served": load.model_dump(mode="json"), "replicas": replicas}

    def payload(self, request: GenRequest) -> dict[str, Any]:
        """The /v1/completions body of a request: its prompt (token ids where given), sampling and stops."""
        s = request.sampling
        payload: dict[str, Any] = {
            "model": self.served_model,
            "prompt": list(request.prompt_ids) if request.prompt_ids is not None else request.prompt,
            "max_tokens": request.max_new_tokens,
            "temperature": s.temperature,
            "top_p": s.top_p,
            "presence_penalty": s.presence_penalty,
            "seed": request.seed,
            "stream": True,
            "stream_options": {"include_usage": True},
            # vLLM / SGLang extensions; other servers ignore unknown fields or reject them with a 400.
            "top_k": s.top_k if s.top_k > 0 else -1,
            "min_p": s.min_p,
            "repetition_penalty": s.repetition_penalty,
            "skip_special_tokens": False,
            "add_special_tokens": False,
        }
        if request.stop:
            payload["stop"] = list(request.stop)
        if request.min_new_tokens:
            payload["min_tokens"] = request.min_new_tokens
        return payload

    async def complete(self, client: StreamClient, request: GenRequest, arrival_s: float) -> Generation:
        """The request on the least-loaded live replica, moved to another whenever its replica is marked down."""
        payload = self.payload(request)
        while True:
            replica = self.pool.acquire()
            gen = None
            try:
                gen = await self._on(client, replica, request.key, payload, arrival_s)
            finally:
                self.pool.release(replica, gen)
            if gen is not None:
                return gen

    async def _on(self, client: StreamClient, replica: Replica, key: str, payload: dict[str, Any],
                  arrival_s: float) -> Generation | None:
        """The request on one replica, retried with exponential backoff; None once the replica is marked down."""
        for attempt in range(self.options.retries + 1):
            outcome = await stream_completion(client, replica.url, payload, key, arrival_s)
            if outcome.ok:
                return self._generation(outcome)
            if not outcome.retryable:
                raise ServerError(f"server rejected a request: {outcome.error}")
            assert outcome.error is not None
            if self.pool.failed(replica, outcome.error, outcome.lost, attempt, spent=attempt == self.options.retries):
                return None
            await asyncio.sleep(min(BACKOFF_S * 2**attempt, 10.0))
        raise AssertionError("unreachable")

    def _generation(self, outcome: Outcome) -> Generation:
        """A completed outcome as a Generation: output tokens from usage, else re-tokenised locally (and counted)."""
        n = outcome.output_tokens
        if n is None:
            n = self.count_tokens(outcome.text)
            self.observed.retokenized += 1
        ttft, latency = outcome.ttft_s, outcome.latency_s
        if ttft is not None and latency is not None:
            self.observed.latencies.append(Latency(ttft, latency, n))
        return Generation(
            key=outcome.key,
            text=outcome.text,
            prompt_tokens=outcome.prompt_tokens or 0,
            output_tokens=n,
            finish_reason="length" if outcome.finish_reason == "length" else "stop",
            timings=Timings.measured("request", n, ttft, latency, queue_s=outcome.queue_s,
                                     itl_s=tuple(outcome.itl_s)),
        )

    def close(self) -> None:
        """Close the HTTP client."""
        self.client.close()


def _job(backend: OpenAIBackend, client: StreamClient,
         request: GenRequest) -> Callable[[float], Any]:
    """One request as a job of the load generator."""
    return lambda arrival: backend.complete(client, request, arrival)


class _Unusable(Exception):
    """A replica whose /models answer cannot be used (still loading, not JSON, no model)."""


def _model_ids(response: httpx.Response) -> list[str]:
    """The model ids a replica's /models answer lists; _Unusable when it failed, is not JSON or lists none."""
    if response.status_code != 200:
        raise _Unusable(f"/models answered HTTP {response.status_code}")
    try:
        models = [str(m["id"]) for m in response.json().get("data") or []]
    except (ValueError, AttributeError, KeyError, TypeError):
        raise _Unusable("/models answered something other than a model list") from None
    if not models:
        raise _Unusable("serves no model")
    return models


def _local_tokenizer(card: ModelCard) -> Any:
    """The card's tokenizer (for the chat template and token counts), or None where it cannot be loaded."""
    try:
        from transformers import AutoTokenizer

        return AutoTokenizer.from_pretrained(resolve_model_path(card), trust_remote_code=card.trust_remote_code,
                                             **({"gguf_file": card.gguf_file} if card.gguf_file else {}))
    except (OSError, ValueError, UserError):
        return None
