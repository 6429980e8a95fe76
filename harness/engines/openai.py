"""OpenAI-compatible backend (vLLM serve, SGLang, TGI...): streamed /v1/completions for client-side TTFT and
inter-token latency, bounded concurrency, timeouts, retries with backoff, and failover across replicas.

Prompts are rendered locally through the model's own chat template (when the card's tokenizer is
available), so a served run sends exactly the prompts an offline run would and the prompt hashes agree.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx
from pydantic import Field, field_validator

from harness.config.cards import ModelCard
from harness.core.errors import ConfigError, ServerError, UserError
from harness.core.log import warn
from harness.engines.base import BackendOptions, Generation, GenRequest, TokenizerMethods
from harness.engines.weights import resolve_model_path
from harness.records.base import BackendInfo, Percentiles
from harness.records.sample import Timings

RETRY_STATUS = {429, 500, 502, 503, 504}
URL = re.compile(r"https?://[^/\s,]+(/\S*)?")


class OpenAIOptions(BackendOptions):
    """Options of the OpenAI-compatible client (`--base-url` is `base_url`; `--batch-size` is `batch_size`)."""

    base_url: tuple[str, ...] = ()  # the replicas: one URL, URL1,URL2,... or @FILE (one per line); e.g. http://h:8000/v1
    batch_size: int = Field(default=64, gt=0)  # requests in flight, over all replicas
    timeout_s: float = 600.0
    retries: int = 5
    api_key: str = "EMPTY"
    served_model: str | None = None  # default: the first model the first reachable replica lists

    @field_validator("base_url", mode="before")
    @classmethod
    def _replicas(cls, value: Any) -> tuple[str, ...]:
        return parse_base_urls(value)


def parse_base_urls(value: str | Sequence[str] | None) -> tuple[str, ...]:
    """Replica URLs from one URL, a comma-separated list, a list, or `@FILE` (one URL a line, `#` comments): each
    checked to be http(s), trailing slashes dropped, no duplicates."""
    if value is None:
        return ()
    if isinstance(value, str) and value.startswith("@"):
        try:
            lines = Path(value[1:]).read_text().splitlines()
        except OSError as exc:
            raise ValueError(f"cannot read the replica list {value[1:]}: {exc.strerror}") from None
        entries = [line for line in lines if not line.lstrip().startswith("#")]
    elif isinstance(value, str):
        entries = value.split(",")
    elif isinstance(value, (list, tuple)) and all(isinstance(u, str) for u in value):
        entries = list(value)
    else:
        raise ValueError("give a URL, URL1,URL2,... or @FILE")
    urls = tuple(u.strip().rstrip("/") for u in entries if u.strip())
    if not urls:
        raise ValueError(f"no server URL in {value!r}")
    for url in urls:
        if not URL.fullmatch(url):
            raise ValueError(f"'{url}' is not an http(s) URL such as http://127.0.0.1:8000/v1")
    if len(set(urls)) < len(urls):
        raise ValueError(f"a replica is listed twice: {', '.join(urls)}")
    return urls


@dataclass(frozen=True)
class Down:
    """When and why a replica was marked down."""

    at_s: float  # seconds after the backend started
    after_completed: int
    after_failed_attempts: int
    attempts: int  # attempts of the request that gave up on it
    reason: str


@dataclass
class Replica:
    """One server: its load, what it finished, its latencies, and whether it was marked down."""

    url: str
    in_flight: int = 0
    completed: int = 0
    failed_attempts: int = 0
    down: Down | None = None
    ttft_s: list[float] = field(default_factory=list)
    e2e_s: list[float] = field(default_factory=list)

    def report(self) -> dict[str, Any]:
        """Counts, when it was marked down, and TTFT and e2e percentiles, for run.json."""
        ttft, e2e = Percentiles.of(self.ttft_s), Percentiles.of(self.e2e_s)
        return {"url": self.url, "completed": self.completed, "failed_attempts": self.failed_attempts,
                "down": asdict(self.down) if self.down else None,
                "ttft_s": ttft.model_dump() if ttft else None, "e2e_s": e2e.model_dump() if e2e else None}


class ReplicaPool:
    """The replicas under one lock: each request goes to the least-loaded live one (fewest in flight, then fewest
    completed, then the first listed); one that fails is marked down for the rest of the run."""

    def __init__(self, urls: Sequence[str]) -> None:
        self.replicas = [Replica(url) for url in urls]
        self.lock = threading.Lock()
        self.start = time.monotonic()

    def live(self) -> list[Replica]:
        """The replicas not marked down."""
        return [r for r in self.replicas if r.down is None]

    def acquire(self) -> Replica:
        """The least-loaded live replica, its in-flight count taken; ServerError when every replica is down."""
        with self.lock:
            live = self.live()
            if not live:
                raise ServerError(self._all_down())
            replica = min(live, key=lambda r: (r.in_flight, r.completed))
            replica.in_flight += 1
            return replica

    def release(self, replica: Replica, gen: Generation | None) -> None:
        """A request left the replica, finished (`gen`) or not."""
        with self.lock:
            replica.in_flight -= 1
            if gen is not None:
                replica.completed += 1
                if gen.timings.ttft_s is not None:
                    replica.ttft_s.append(gen.timings.ttft_s)
                if gen.timings.e2e_s is not None:
                    replica.e2e_s.append(gen.timings.e2e_s)

    def failed(self, replica: Replica, exc: Exception, attempt: int, spent: bool) -> bool:
        """Count a failed attempt; whether the request must leave the replica. It is marked down when its retries
        are `spent`, or at once on a lost connection while another replica is live (the last one gets retries)."""
        with self.lock:
            replica.failed_attempts += 1
            lost = isinstance(exc, (httpx.TransportError, _Broken))
            if replica.down is None and (spent or (lost and len(self.live()) > 1)):
                self.mark_down(replica, _reason(exc), attempt + 1)
                if self.live():
                    warn(f"replica {replica.url} marked down after {replica.completed} completed requests "
                         f"({_reason(exc)}); its requests go to the other replicas")
            return replica.down is not None

    def mark_down(self, replica: Replica, reason: str, attempts: int) -> None:
        """Take a replica out of the rotation, noting when and why."""
        replica.down = Down(round(time.monotonic() - self.start, 3), replica.completed, replica.failed_attempts,
                            attempts, reason)

    def _all_down(self) -> str:
        if len(self.replicas) == 1:
            r = self.replicas[0]
            assert r.down is not None
            return f"server {r.url} failed {r.down.attempts} times: {r.down.reason}"
        return "server down: every replica failed: " + "; ".join(
            f"{r.url} ({r.down.reason} after {r.down.after_completed} completed)" for r in self.replicas if r.down)


class OpenAIBackend(TokenizerMethods):
    """Streams completions from one server or several replicas; `batch_size` is the number of requests in flight."""

    name = "openai"
    Options = OpenAIOptions
    measures_speed = True
    generates_in_background = True  # requests stay in flight on the server while owb scores

    def __init__(self, card: ModelCard, options: OpenAIOptions, transport: httpx.BaseTransport | None = None) -> None:
        if not options.base_url:
            raise ConfigError("--backend openai needs --base-url, e.g. http://127.0.0.1:8000/v1 (or URL1,URL2 or "
                              "@FILE for replicas)")
        self.card = card
        self.pool = ReplicaPool(options.base_url)
        self.concurrency = options.batch_size
        self.retries = options.retries
        self.client = httpx.Client(timeout=httpx.Timeout(options.timeout_s, connect=10.0), transport=transport,
                                   headers={"Authorization": f"Bearer {options.api_key}"},
                                   limits=httpx.Limits(max_connections=options.batch_size))
        self.served_model = self._served_model(options.served_model)
        self.tokenizer = _local_tokenizer(card)

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
        return BackendInfo(name=self.name, version=version,
                           args={"base_url": ",".join(urls), "replicas": urls, "served_model": self.served_model,
                                 "concurrency": self.concurrency, "retries": self.retries, "endpoint": "/completions"})

    def generate(self, requests: Sequence[GenRequest]) -> Iterator[Generation]:
        """Stream every request with at most `concurrency` in flight over all replicas; yield each as it completes."""
        with ThreadPoolExecutor(max_workers=self.concurrency) as pool:
            futures = [pool.submit(self._complete, r) for r in requests]
            try:
                for future in as_completed(futures):
                    yield future.result()
            finally:
                for future in futures:
                    future.cancel()

    def report(self) -> dict[str, Any]:
        """Per replica: requests completed, failed attempts, when it was marked down, TTFT and e2e percentiles."""
        with self.pool.lock:
            return {"replicas": [r.report() for r in self.pool.replicas]}

    def _payload(self, request: GenRequest) -> dict[str, Any]:
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

    def _complete(self, request: GenRequest) -> Generation:
        """The request on the least-loaded live replica, moved to another whenever its replica is marked down."""
        payload = self._payload(request)
        while True:
            replica = self.pool.acquire()
            gen = None
            try:
                gen = self._on(replica, request.key, payload)
            finally:
                self.pool.release(replica, gen)
            if gen is not None:
                return gen

    def _on(self, replica: Replica, key: str, payload: dict[str, Any]) -> Generation | None:
        """The request on one replica, retried with exponential backoff; None once the replica is marked down."""
        for attempt in range(self.retries + 1):
            try:
                return self._stream(replica.url, key, payload)
            except (httpx.TransportError, _Retryable, _Broken) as exc:
                if self.pool.failed(replica, exc, attempt, spent=attempt == self.retries):
                    return None
                time.sleep(min(0.5 * 2**attempt, 10.0))
        raise AssertionError("unreachable")

    def _stream(self, url: str, key: str, payload: dict[str, Any]) -> Generation:
        start = time.perf_counter()
        text, first, last, gaps = [], None, None, []
        usage: dict[str, Any] = {}
        finish, ended = None, False
        with self.client.stream("POST", f"{url}/completions", json=payload) as response:
            if response.status_code in RETRY_STATUS:
                raise _Retryable(f"HTTP {response.status_code}")
            if response.status_code != 200:
                body = response.read().decode("utf-8", "replace")[:300]
                raise ServerError(f"server rejected a request: HTTP {response.status_code}: {body}")
            for line in response.iter_lines():
                if line.strip() == "data: [DONE]":
                    ended = True
                if not line.startswith("data:") or ended:
                    continue
                chunk = _chunk(line[len("data:") :])
                usage = chunk.get("usage") or usage
                for choice in chunk.get("choices") or []:
                    now = time.perf_counter()
                    if choice.get("text"):
                        text.append(choice["text"])
                        if first is None:
                            first = now
                        elif last is not None:
                            gaps.append(now - last)
                        last = now
                    finish = choice.get("finish_reason") or finish
        if finish is None:  # a server that fails mid-request may still send [DONE]; the completion never finished
            raise _Broken("the stream ended before the completion did")
        end = last or time.perf_counter()
        n = int(usage.get("completion_tokens") or 0)
        return Generation(
            key=key,
            text="".join(text),
            prompt_tokens=int(usage.get("prompt_tokens") or 0),
            output_tokens=n,
            finish_reason="length" if finish == "length" else "stop",
            timings=Timings.measured("request", n, first - start if first is not None else None, end - start,
                                     itl_s=tuple(gaps)),
        )

    def close(self) -> None:
        """Close the HTTP client."""
        self.client.close()


class _Retryable(Exception):
    """A response worth retrying (5xx, 429)."""


class _Broken(Exception):
    """A stream that ended before its completion did (the server went away or failed mid-request)."""


class _Unusable(Exception):
    """A replica whose /models answer cannot be used (still loading, not JSON, no model)."""


def _chunk(data: str) -> dict[str, Any]:
    """One server-sent event's JSON; an error event or a malformed one breaks the stream."""
    try:
        chunk = json.loads(data)
    except json.JSONDecodeError:
        raise _Broken(f"malformed stream event: {data[:100]!r}") from None
    if not isinstance(chunk, dict):
        raise _Broken(f"malformed stream event: {data[:100]!r}")
    if chunk.get("error"):
        error = chunk["error"]
        raise _Broken(f"server error mid-stream: {error.get('message', error) if isinstance(error, dict) else error}")
    return chunk


def _reason(exc: Exception) -> str:
    return str(exc) or type(exc).__name__


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
