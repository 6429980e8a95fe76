"""One asyncio client for served models: a streamed /v1/completions request timed on a single event loop with
`vllm bench serve`'s chunk rules, requests driven under a load shape (a semaphore and scheduled arrivals, or
waves with a barrier), and a bridge that yields an async producer's items to synchronous code."""

from __future__ import annotations

import asyncio
import contextlib
import json
import queue
import re
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar, runtime_checkable

import httpx
import numpy as np

from harness.engines.http import Lost, StreamClient
from harness.engines.load import LoadShape, arrival_delays

T = TypeVar("T")
RETRY_STATUS = frozenset({429, 500, 502, 503, 504})


@dataclass(frozen=True)
class Endpoint:
    """A served model as a load generator sees it: its /v1 URL, the model name, request headers and the timeout."""

    base_url: str
    model: str
    headers: dict[str, str]
    timeout_s: float


@runtime_checkable
class Served(Protocol):
    """A backend whose model answers over HTTP: `owb bench` drives it with its own load generator."""

    def endpoint(self) -> Endpoint:
        """The server the load generator sends to."""
        ...

    def local_gpus(self) -> tuple[str, ...]:
        """The server's GPUs on this machine that may be metered (NVML index or UUID); none: meter nothing."""
        ...


@dataclass
class Outcome:
    """One streamed request, on the client's clock (perf_counter seconds): when it was due and sent, the first event
    with choices (vLLM's TTFT) and with text, every gap between choice events, the last one, and what usage said."""

    key: str
    arrival_s: float  # when the load shape let it arrive (before any wait for a free slot)
    start_s: float = 0.0  # just before the POST
    first_s: float | None = None  # first server-sent event with non-empty `choices`, even with empty text
    first_content_s: float | None = None  # first event with non-empty text
    last_s: float | None = None  # last event with choices
    itl_s: list[float] = field(default_factory=list)  # gaps between successive choice events (per chunk)
    text: str = ""
    prompt_tokens: int | None = None  # usage.prompt_tokens
    output_tokens: int | None = None  # usage.completion_tokens
    finish_reason: str | None = None
    error: str | None = None  # why it failed; None for a completed request
    status: int | None = None  # the HTTP status of a rejected request
    lost: bool = False  # the connection failed (no answer, or cut mid-stream)

    @property
    def ok(self) -> bool:
        """Whether the request completed."""
        return self.error is None

    @property
    def retryable(self) -> bool:
        """Whether trying again may help: a lost connection, a broken stream, 429 or 5xx (not a 4xx rejection)."""
        return self.error is not None and (self.status is None or self.status in RETRY_STATUS)

    @property
    def ttft_s(self) -> float | None:
        """Send to the first choice event (vLLM's TTFT)."""
        return None if self.first_s is None else self.first_s - self.start_s

    @property
    def ttft_content_s(self) -> float | None:
        """Send to the first event with text (AIPerf's and NIM's TTFT)."""
        return None if self.first_content_s is None else self.first_content_s - self.start_s

    @property
    def latency_s(self) -> float | None:
        """Send to the last choice event (vLLM's E2EL)."""
        return None if self.last_s is None else self.last_s - self.start_s

    @property
    def queue_s(self) -> float:
        """Client queue time: arrival to send, the wait for a free slot under `max_concurrency`."""
        return max(self.start_s - self.arrival_s, 0.0)


def completion_payload(model: str, prompt: str | Sequence[int], max_tokens: int, temperature: float,
                       ignore_eos: bool, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """A streamed /v1/completions body as `vllm bench serve` sends it (usage in the last event, EOS ignored when
    asked, temperature explicit), plus `extra` fields."""
    payload: dict[str, Any] = {
        "model": model, "prompt": prompt if isinstance(prompt, str) else list(prompt), "max_tokens": max_tokens,
        "temperature": temperature, "repetition_penalty": 1.0, "stream": True,
        "stream_options": {"include_usage": True}, "add_special_tokens": False,
    }
    if ignore_eos:
        payload["ignore_eos"] = True
    return {**payload, **(extra or {})}


def _event(outcome: Outcome, data: str, now: float) -> bool:
    """Apply one `data:` payload to the outcome; False once the stream is over ([DONE]) or broken."""
    if data == "[DONE]":
        return False
    try:
        chunk = json.loads(data)
    except json.JSONDecodeError:
        outcome.error = f"malformed stream event: {data[:100]!r}"
        return False
    if not isinstance(chunk, dict):
        outcome.error = f"malformed stream event: {data[:100]!r}"
        return False
    if chunk.get("error"):
        error = chunk["error"]
        outcome.error = f"server error mid-stream: {error.get('message', error) if isinstance(error, dict) else error}"
        return False
    if choices := chunk.get("choices"):
        if outcome.first_s is None:
            outcome.first_s = now
        elif outcome.last_s is not None:
            outcome.itl_s.append(now - outcome.last_s)
        outcome.last_s = now
        text = choices[0].get("text") or ""
        if text and outcome.first_content_s is None:
            outcome.first_content_s = now
        outcome.text += text
        outcome.finish_reason = choices[0].get("finish_reason") or outcome.finish_reason
    if usage := chunk.get("usage"):
        outcome.prompt_tokens = usage.get("prompt_tokens", outcome.prompt_tokens)
        outcome.output_tokens = usage.get("completion_tokens", outcome.output_tokens)
    return True


async def stream_completion(client: StreamClient, url: str, payload: dict[str, Any], key: str,
                            arrival_s: float | None = None) -> Outcome:
    """POST one streamed completion and time each server-sent event as it is read (as vLLM's client does); never
    raises for a server's or the network's failure: the outcome says why it failed (HTTP status, an error event, a
    stream that ended before the completion, a lost connection). The body is read to its end, so the connection
    is kept for the next request."""
    outcome = Outcome(key, arrival_s if arrival_s is not None else time.perf_counter())
    outcome.start_s = time.perf_counter()
    try:
        async with client.stream(f"{url}/completions", payload) as (status, chunks):
            if status != 200:
                body = b"".join([chunk async for chunk in chunks]).decode("utf-8", "replace")[:300]
                outcome.status, outcome.error = status, f"HTTP {status}: {body}"
                return outcome
            pending, open_ = b"", True
            async for chunk in chunks:
                *lines, pending = (pending + chunk).split(b"\n")
                open_ = open_ and _lines(outcome, lines)
            if open_ and pending:
                _lines(outcome, [pending])
    except Lost as exc:
        outcome.error, outcome.lost = str(exc), True
        return outcome
    if outcome.error is None and outcome.first_s is None:
        outcome.error = "no event with choices: nothing to time"
    elif outcome.error is None and outcome.finish_reason is None:
        outcome.error, outcome.lost = "the stream ended before the completion did", True
    return outcome


def _lines(outcome: Outcome, lines: list[bytes]) -> bool:
    """Apply the `data:` lines among `lines` (blank lines, SSE comments and other fields skipped), each timed as it
    is read; False once the stream is over ([DONE]) or broken."""
    for line in lines:
        line = line.strip()
        if line.startswith(b"data:") and not _event(outcome, line[5:].strip().decode("utf-8", "replace"),
                                                    time.perf_counter()):
            return False
    return True


Job = Callable[[float], Awaitable[T]]
"""One request of a load: called with its arrival time (perf_counter), returns its result."""


async def under_load(jobs: Sequence[Job[T]], load: LoadShape, rng: np.random.Generator) -> AsyncIterator[T]:
    """Run the jobs as `vllm bench serve` does: each arrives on the schedule of `arrival_delays`, waits for one of
    `max_concurrency` slots (an asyncio semaphore: a request starts as soon as any finishes), and is yielded as soon
    as it is done, while later ones are still arriving."""
    slots = asyncio.Semaphore(load.max_concurrency) if load.max_concurrency else None
    delays = arrival_delays(len(jobs), load.request_rate, load.burstiness, rng)
    finished: asyncio.Queue[asyncio.Task[Any]] = asyncio.Queue()
    tasks: list[asyncio.Task[T]] = []

    async def limited(job: Job[T], arrival: float) -> T:
        if slots is None:
            return await job(arrival)
        async with slots:
            return await job(arrival)

    async def dispatch() -> None:
        start = time.perf_counter()
        for job, delay in zip(jobs, delays, strict=True):
            wait = start + delay - time.perf_counter()
            if wait > 0:
                await asyncio.sleep(wait)
            tasks.append(asyncio.create_task(limited(job, time.perf_counter())))
            tasks[-1].add_done_callback(finished.put_nowait)

    def dispatched(task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            finished.put_nowait(task)  # a failed dispatcher ends the wait below

    dispatcher = asyncio.create_task(dispatch())
    dispatcher.add_done_callback(dispatched)
    try:
        for _ in jobs:
            yield (await finished.get()).result()
    finally:
        dispatcher.cancel()
        for task in tasks:
            task.cancel()


async def in_waves(jobs: Sequence[Job[T]], size: int) -> AsyncIterator[T]:
    """Run the jobs `size` at a time with a barrier: a wave starts when the previous one has finished (the mode of
    `vllm bench latency`, and of owb bench before the load generator)."""
    for first in range(0, len(jobs), size):
        arrival = time.perf_counter()
        for result in await asyncio.gather(*(job(arrival) for job in jobs[first : first + size])):
            yield result


def iterate_in_thread(produce: Callable[[Callable[[T], None]], Awaitable[None]]) -> Iterator[T]:
    """Yield what an async producer emits, running its event loop in a thread; stopping the iteration early cancels
    the producer, and an exception in it is raised here."""
    items: queue.Queue[tuple[str, Any]] = queue.Queue()
    runner = asyncio.Runner()
    started = threading.Event()
    main: list[asyncio.Task[None]] = []

    async def root() -> None:
        task = asyncio.current_task()
        assert task is not None
        main.append(task)
        started.set()
        await produce(lambda item: items.put(("item", item)))

    def run() -> None:
        try:
            with runner:
                runner.run(root())
            items.put(("end", None))
        except BaseException as exc:  # noqa: BLE001 - handed to the consuming thread
            items.put(("error", exc))
        finally:
            started.set()

    thread = threading.Thread(target=run, name="owb-load", daemon=True)
    thread.start()
    try:
        while True:
            kind, value = items.get()
            if kind == "end":
                return
            if kind == "error":
                raise value
            yield value
    finally:
        started.wait()
        if thread.is_alive() and main:
            with contextlib.suppress(RuntimeError):  # the loop ended meanwhile
                runner.get_loop().call_soon_threadsafe(main[0].cancel)
        thread.join()


PREFIX_CACHING = re.compile(r'^vllm:cache_config_info\{[^}]*enable_prefix_caching="(\w+)"', re.MULTILINE)


def served_prefix_caching(client: httpx.Client, base_url: str) -> bool | None:
    """Whether a vLLM server caches prefixes, from its /metrics (`vllm:cache_config_info`); None where it does not
    say (another server, metrics off, unreachable)."""
    try:
        text = client.get(f"{base_url.removesuffix('/v1')}/metrics", timeout=5.0).text
    except httpx.HTTPError:
        return None
    match = PREFIX_CACHING.search(text)
    return None if match is None else match.group(1).lower() == "true"
