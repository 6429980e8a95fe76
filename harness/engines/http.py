"""The HTTP under owb's load generator: aiohttp, as `vllm bench serve` and SGLang's bench_serving stream (its C parser
keeps the client's CPU low: on a machine whose cores the server shares, a slower client slows the server it
measures), or an httpx transport that tests inject. Both give a response's status and its bytes as they arrive,
and turn a lost connection into `Lost`."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager
from typing import Any, Protocol

import httpx


class Lost(Exception):
    """The connection failed: no answer, or the answer cut mid-stream."""


class StreamClient(Protocol):
    """POSTs JSON bodies and streams the answers' bytes, on one event loop."""

    def stream(self, url: str, payload: dict[str, Any]) -> AbstractAsyncContextManager[
            tuple[int, AsyncIterator[bytes]]]:
        """The response's status and its body's bytes as they arrive; Lost when the connection fails."""
        ...

    async def aclose(self) -> None:
        """Close the connections."""
        ...


class AiohttpClient:
    """aiohttp with no connection limit of its own (the load generator's semaphore is the limit) and keep-alive."""

    def __init__(self, headers: dict[str, str], timeout_s: float) -> None:
        import aiohttp

        self.errors = (aiohttp.ClientError, asyncio.TimeoutError)
        self.session = aiohttp.ClientSession(
            headers=headers, timeout=aiohttp.ClientTimeout(total=timeout_s, sock_connect=10.0),
            connector=aiohttp.TCPConnector(limit=0, keepalive_timeout=60))

    @contextlib.asynccontextmanager
    async def stream(self, url: str, payload: dict[str, Any]) -> AsyncIterator[tuple[int, AsyncIterator[bytes]]]:
        """POST and stream (aiohttp's `iter_any`: each read as soon as bytes arrive)."""
        try:
            async with self.session.post(url, json=payload) as response:
                yield response.status, response.content.iter_any()
        except self.errors as exc:
            raise Lost(str(exc) or type(exc).__name__) from None

    async def aclose(self) -> None:
        """Close the session."""
        await self.session.close()


class HttpxClient:
    """httpx over a given transport (tests' mock servers), or the network where aiohttp is not installed."""

    def __init__(self, headers: dict[str, str], timeout_s: float, transport: httpx.AsyncBaseTransport | None) -> None:
        limits = httpx.Limits(max_connections=None, max_keepalive_connections=None)
        self.client = httpx.AsyncClient(timeout=httpx.Timeout(timeout_s, connect=10.0), headers=headers,
                                        limits=limits, transport=transport)

    @contextlib.asynccontextmanager
    async def stream(self, url: str, payload: dict[str, Any]) -> AsyncIterator[tuple[int, AsyncIterator[bytes]]]:
        """POST and stream the (decoded) bytes."""
        try:
            async with self.client.stream("POST", url, json=payload) as response:
                yield response.status_code, response.aiter_bytes()
        except httpx.HTTPError as exc:
            raise Lost(str(exc) or type(exc).__name__) from None

    async def aclose(self) -> None:
        """Close the client."""
        await self.client.aclose()


def stream_client(headers: dict[str, str], timeout_s: float,
                  transport: httpx.AsyncBaseTransport | None = None) -> StreamClient:
    """The client for one event loop (call it inside the loop): aiohttp, or httpx over `transport` when given."""
    if transport is None:
        try:
            return AiohttpClient(headers, timeout_s)
        except ImportError:
            pass
    return HttpxClient(headers, timeout_s, transport)
