"""OpenAI-compatible backend (vLLM serve, SGLang, TGI...): streamed /v1/completions for client-side TTFT and
inter-token latency, bounded concurrency, timeouts, and retries with backoff on 5xx and connection errors.

Prompts are rendered locally through the model's own chat template (when the card's tokenizer is
available), so a served run sends exactly the prompts an offline run would and the prompt hashes agree.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from typing import Any

import httpx
from pydantic import Field

from harness.backends.base import BackendOptions, Generation, GenRequest, TokenizerMethods
from harness.config import ModelCard
from harness.errors import ConfigError, ServerError, UserError
from harness.models import resolve_model_path
from harness.records import BackendInfo, Timings

RETRY_STATUS = {429, 500, 502, 503, 504}


class OpenAIOptions(BackendOptions):
    """Options of the OpenAI-compatible client (`--base-url` is `base_url`; `--batch-size` is `batch_size`)."""

    base_url: str | None = None  # e.g. http://127.0.0.1:8000/v1
    batch_size: int = Field(default=64, gt=0)  # requests in flight
    timeout_s: float = 600.0
    retries: int = 5
    api_key: str = "EMPTY"
    served_model: str | None = None  # default: the first model the server lists


class OpenAIBackend(TokenizerMethods):
    """Streams completions from a server; `batch_size` is the number of requests in flight."""

    name = "openai"
    Options = OpenAIOptions
    measures_speed = True

    def __init__(self, card: ModelCard, options: OpenAIOptions, transport: httpx.BaseTransport | None = None) -> None:
        if not options.base_url:
            raise ConfigError("--backend openai needs --base-url, e.g. http://127.0.0.1:8000/v1")
        self.card = card
        self.base_url = options.base_url.rstrip("/")
        self.concurrency = options.batch_size
        self.retries = options.retries
        self.client = httpx.Client(timeout=httpx.Timeout(options.timeout_s, connect=10.0), transport=transport,
                                   headers={"Authorization": f"Bearer {options.api_key}"},
                                   limits=httpx.Limits(max_connections=options.batch_size))
        self.served_model = options.served_model or self._first_model()
        self.tokenizer = _local_tokenizer(card)

    def _get(self, path: str) -> httpx.Response:
        try:
            return self.client.get(f"{self.base_url}{path}", timeout=10.0)
        except httpx.HTTPError as exc:
            raise ServerError(f"server down: cannot reach {self.base_url} ({type(exc).__name__})") from None

    def _first_model(self) -> str:
        response = self._get("/models")
        if response.status_code != 200:
            raise ServerError(f"{self.base_url}/models answered HTTP {response.status_code}")
        models = response.json().get("data") or []
        if not models:
            raise ServerError(f"{self.base_url} serves no model")
        return str(models[0]["id"])

    def describe(self) -> BackendInfo:
        """Server URL, served model and client settings (the server's version where it reports one)."""
        root = self.base_url.removesuffix("/v1")
        try:
            version = self.client.get(f"{root}/version", timeout=5.0).json().get("version")
        except (httpx.HTTPError, ValueError, AttributeError):
            version = None
        return BackendInfo(name=self.name, version=version,
                           args={"base_url": self.base_url, "served_model": self.served_model,
                                 "concurrency": self.concurrency, "retries": self.retries, "endpoint": "/completions"})

    def generate(self, requests: Sequence[GenRequest]) -> Iterator[Generation]:
        """Stream every request with at most `concurrency` in flight; yield each as it completes."""
        with ThreadPoolExecutor(max_workers=self.concurrency) as pool:
            futures = [pool.submit(self._complete, r) for r in requests]
            try:
                for future in as_completed(futures):
                    yield future.result()
            finally:
                for future in futures:
                    future.cancel()

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
        payload = self._payload(request)
        for attempt in range(self.retries + 1):
            try:
                return self._stream(request.key, payload)
            except (httpx.TransportError, _Retryable) as exc:
                if attempt == self.retries:
                    raise ServerError(f"server {self.base_url} failed {self.retries + 1} times: {exc}") from None
                time.sleep(min(0.5 * 2**attempt, 10.0))
        raise AssertionError("unreachable")

    def _stream(self, key: str, payload: dict[str, Any]) -> Generation:
        start = time.perf_counter()
        text, first, last, gaps = [], None, None, []
        usage: dict[str, Any] = {}
        finish = "stop"
        with self.client.stream("POST", f"{self.base_url}/completions", json=payload) as response:
            if response.status_code in RETRY_STATUS:
                raise _Retryable(f"HTTP {response.status_code}")
            if response.status_code != 200:
                body = response.read().decode("utf-8", "replace")[:300]
                raise ServerError(f"server rejected a request: HTTP {response.status_code}: {body}")
            for line in response.iter_lines():
                if not line.startswith("data:") or line.strip() == "data: [DONE]":
                    continue
                chunk = json.loads(line[len("data:") :])
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


def _local_tokenizer(card: ModelCard) -> Any:
    """The card's tokenizer (for the chat template and token counts), or None where it cannot be loaded."""
    try:
        from transformers import AutoTokenizer

        return AutoTokenizer.from_pretrained(resolve_model_path(card), trust_remote_code=card.trust_remote_code,
                                             **({"gguf_file": card.gguf_file} if card.gguf_file else {}))
    except (OSError, ValueError, UserError):
        return None
