"""owb's asyncio client on fake server-sent event streams: `vllm bench serve`'s chunk rules (TTFT at the first event
with choices even without text, ITL between every choice event), usage missing, a server error mid-stream counted
as failed; and the load generator's semaphore, arrivals and client queue time."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import httpx
import numpy as np
import pytest

from harness.engines.http import stream_client
from harness.engines.load import LoadShape
from harness.engines.stream import Endpoint, Outcome, in_waves, stream_completion, under_load
from harness.measure.load import Item, from_outcome

ENDPOINT = Endpoint("http://server/v1", "served", {}, 30.0)


class _Paced(httpx.AsyncByteStream):
    """Server-sent events sent 20 ms apart (the server's pace), then whatever ends the stream."""

    def __init__(self, events: list[str], then: Exception | None = None) -> None:
        self.events, self.then = events, then

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for event in self.events:
            await asyncio.sleep(0.02)
            yield f"data: {event}\n\n".encode()
        if self.then is not None:
            raise self.then


def _stream(events: list[str], then: Exception | None = None, status: int = 200) -> Outcome:
    async def handle(request: httpx.Request) -> httpx.Response:
        if status != 200:
            return httpx.Response(status, text="overloaded")
        return httpx.Response(200, stream=_Paced(events, then), headers={"content-type": "text/event-stream"})

    async def go() -> Outcome:
        client = stream_client({}, 30.0, httpx.MockTransport(handle))
        try:
            return await stream_completion(client, ENDPOINT.base_url, {"prompt": [1, 2]}, "k")
        finally:
            await client.aclose()

    return asyncio.run(go())


EMPTY = '{"choices":[{"text":"","finish_reason":null}]}'  # a held-back partial UTF-8 character, or a stop-string guard
TEXT = '{"choices":[{"text":"ab","finish_reason":null}]}'
LAST = '{"choices":[{"text":"c","finish_reason":"length"}]}'
USAGE = '{"choices":[],"usage":{"prompt_tokens":2,"completion_tokens":4}}'


def test_empty_text_chunks_count_for_ttft_and_itl_as_in_vllm() -> None:
    """TTFT stops at the first event with choices, even with empty text (vLLM); TTFT to content at the first text;
    every choice event is one ITL gap; the usage event (empty choices) times nothing."""
    out = _stream([EMPTY, TEXT, EMPTY, LAST, USAGE, "[DONE]"])
    assert out.ok and out.text == "abc" and out.finish_reason == "length"
    assert out.ttft_s is not None and out.ttft_content_s is not None and out.latency_s is not None
    assert 0.015 < out.ttft_s < out.ttft_content_s < out.latency_s
    assert out.ttft_content_s - out.ttft_s == pytest.approx(0.02, abs=0.015)
    assert len(out.itl_s) == 3 and all(0.01 < gap < 0.1 for gap in out.itl_s)
    assert out.latency_s == pytest.approx(out.ttft_s + sum(out.itl_s))  # E2EL ends at the last choice event
    assert (out.prompt_tokens, out.output_tokens) == (2, 4)


def test_usage_missing_is_recounted_and_says_so() -> None:
    out = _stream([TEXT, LAST, "[DONE]"])
    assert out.ok and out.output_tokens is None
    measured = from_outcome(Item("k", (1, 2), 2, 3), out, count_tokens=lambda text: len(text))
    assert (measured.output_len, measured.source, measured.input_len) == (3, "retokenized", 2)
    assert from_outcome(Item("k", (1, 2), 2, 4), _stream([TEXT, LAST, USAGE]), len).source == "usage"


@pytest.mark.parametrize(("events", "then", "status", "why"), [
    ([TEXT, '{"error":{"message":"CUDA out of memory","code":500}}', "[DONE]"], None, 200, "server error mid-stream"),
    ([TEXT], httpx.ReadError("peer closed connection"), 200, "peer closed connection"),
    ([TEXT, "[DONE]"], None, 200, "ended before the completion did"),
    ([TEXT, '{"choi'], None, 200, "malformed stream event"),
    ([USAGE, "[DONE]"], None, 200, "no event with choices"),
    ([], None, 503, "HTTP 503: overloaded"),
])
def test_a_failed_stream_is_counted_as_failed(events: list[str], then: Exception | None, status: int,
                                              why: str) -> None:
    out = _stream(events, then, status)
    assert not out.ok and out.error is not None and why in out.error
    measured = from_outcome(Item("k", (1, 2), 2, 3), out, len)
    assert measured.error and measured.output_len == 0
    assert out.retryable  # a run retries these; owb bench counts them as failed and never retries


def test_a_rejected_request_is_not_retryable() -> None:
    out = _stream([], None, 400)
    assert not out.ok and not out.retryable and out.status == 400


async def _timed(arrival: float, log: list[tuple[float, float]], running: list[int], peak: list[int]) -> float:
    running[0] += 1
    peak[0] = max(peak[0], running[0])
    start = time.perf_counter()
    await asyncio.sleep(0.05)
    running[0] -= 1
    log.append((arrival, start))
    return start


def test_the_semaphore_keeps_c_in_flight_without_a_barrier() -> None:
    """12 jobs of 50 ms with 4 in flight at rate inf: never more than 4 at once, a job starts when any finishes (the
    later ones wait: client queue time), and the whole takes 3 rounds, not more."""
    log: list[tuple[float, float]] = []
    running, peak = [0], [0]

    async def go() -> float:
        jobs = [lambda arrival: _timed(arrival, log, running, peak) for _ in range(12)]
        start = time.perf_counter()
        async for _ in under_load(jobs, LoadShape(max_concurrency=4), np.random.default_rng(0)):
            pass
        return time.perf_counter() - start

    wall = asyncio.run(go())
    assert peak[0] == 4 and len(log) == 12
    waits = sorted(start - arrival for arrival, start in log)
    assert waits[:4] == pytest.approx([0, 0, 0, 0], abs=0.01) and waits[-1] > 0.09
    assert 0.15 <= wall < 0.3


def test_arrivals_follow_the_request_rate() -> None:
    """At 40 requests/s with infinite burstiness the jobs arrive every 25 ms, the last at N/rate."""
    log: list[tuple[float, float]] = []

    yielded: list[float] = []

    async def go() -> float:
        jobs = [lambda arrival: _timed(arrival, log, [0], [0]) for _ in range(8)]
        start = time.perf_counter()
        async for _ in under_load(jobs, LoadShape(request_rate=40, burstiness=float("inf")),
                                  np.random.default_rng(0)):
            yielded.append(time.perf_counter() - start)
        return start

    start = asyncio.run(go())
    arrivals = sorted(arrival - start for arrival, _ in log)
    assert arrivals == pytest.approx([0.025 * (i + 1) for i in range(8)], abs=0.015)
    assert yielded[0] < arrivals[-1]  # a finished request is handed on while later ones are still arriving


def test_waves_wait_for_the_whole_wave() -> None:
    log: list[tuple[float, float]] = []

    async def go() -> None:
        jobs = [lambda arrival: _timed(arrival, log, [0], [0]) for _ in range(6)]
        async for _ in in_waves(jobs, 3):
            pass

    asyncio.run(go())
    starts = sorted(start for _, start in log)
    assert starts[3] - starts[2] >= 0.045  # the second wave starts after the first has finished


def test_a_sync_consumer_gets_items_as_produced_and_can_stop_early() -> None:
    """The bridge the openai backend's generate() uses: items arrive while the loop runs on; breaking off cancels
    the producer; its exception is raised in the consumer."""
    from harness.engines.stream import iterate_in_thread

    cancelled: list[bool] = []

    async def produce(emit: object) -> None:
        try:
            for i in range(1000):
                emit(i)  # type: ignore[operator]
                await asyncio.sleep(0.01)
        except asyncio.CancelledError:
            cancelled.append(True)
            raise

    for item in iterate_in_thread(produce):
        if item == 2:
            break
    assert cancelled == [True]

    async def fails(emit: object) -> None:
        emit("first")  # type: ignore[operator]
        raise ValueError("server gone")

    seen = []
    with pytest.raises(ValueError, match="server gone"):
        for item in iterate_in_thread(fails):
            seen.append(item)
    assert seen == ["first"]
