"""A simulated OpenAI-compatible server on loopback with a known capacity: at most `slots` requests decode at once
(the rest queue), one token every `token_s` seconds, streamed as server-sent events with usage at the end."""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        pass

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        body = json.dumps({"data": [{"id": "fake"}]}).encode() if self.path.endswith("/models") else b"{}"
        self.send_response(200 if self.path.endswith("/models") else 404)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:  # noqa: N802
        request = json.loads(self.rfile.read(int(self.headers["content-length"])))
        self.server.payloads.append(request)
        self.send_response(200)
        self.send_header("content-type", "text/event-stream")
        self.end_headers()
        with self.server.slots:
            for i in range(request["max_tokens"]):
                time.sleep(self.server.token_s)
                last = i == request["max_tokens"] - 1
                self._event({"choices": [{"text": "x ", "finish_reason": "length" if last else None}]})
        usage = {"prompt_tokens": len(request["prompt"]), "completion_tokens": request["max_tokens"]}
        self._event({"choices": [], "usage": usage if self.server.usage else None})
        self.wfile.write(b"data: [DONE]\n\n")

    def _event(self, data: dict[str, Any]) -> None:
        self.wfile.write(f"data: {json.dumps(data)}\n\n".encode())
        self.wfile.flush()


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, slots: int, token_s: float, usage: bool) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.slots = threading.BoundedSemaphore(slots)
        self.token_s = token_s
        self.usage = usage
        self.payloads: list[dict[str, Any]] = []


@contextlib.contextmanager
def fake_server(slots: int = 4, token_s: float = 0.005, usage: bool = True) -> Iterator[tuple[str, _Server]]:
    """The server's /v1 URL and the server (its `payloads` received), for the block."""
    server = _Server(slots, token_s, usage)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1", server
    finally:
        server.shutdown()
        server.server_close()
