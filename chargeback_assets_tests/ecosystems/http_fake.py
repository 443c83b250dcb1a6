"""A real HTTP server on 127.0.0.1 with scripted replies, for testing our HTTP clients without mocks.

Tests route paths to replies: one reply, a sequence of replies (the last one repeats), or a function of the
request. Every request is recorded (path, query or form fields, headers, arrival time) so tests can count
attempts and check exactly what a client sent. `FakeTime` drives a client's retry budget without waiting.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from chargeback_assets.ecosystems.retry import RetryBudget


@dataclass
class Reply:
    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    raw: bytes | None = None
    """Sent as-is instead of the JSON of `body` (for truncated or non-JSON bodies)."""
    content_length: int | None = None
    """Announced length when it must differ from the real one (a connection cut short)."""


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, str]
    """Query parameters, or the form fields of a POST."""
    headers: dict[str, str]
    at: float


Responder = Reply | Sequence[Reply] | Callable[[Request], Reply]
NOT_FOUND = Reply(404, {"errors": [{"status": "404", "code": "resource_not_found", "detail": "Not Found"}]})


class FakeHttpServer:
    def __init__(self) -> None:
        self.routes: dict[str, Responder] = {}
        self.requests: list[Request] = []
        self._cursor: dict[str, int] = {}
        self._lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, args=(0.02,), daemon=True)
        self._thread.start()

    def route(self, path: str, responder: Responder) -> None:
        with self._lock:
            self.routes[path] = responder
            self._cursor.pop(path, None)

    def hits(self, path: str) -> list[Request]:
        return [r for r in self.requests if r.path == path]

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def _reply_for(self, request: Request) -> Reply:
        with self._lock:
            self.requests.append(request)
            responder = self.routes.get(request.path, NOT_FOUND)
            if isinstance(responder, Reply):
                return responder
            if callable(responder):
                return responder(request)
            index = self._cursor.get(request.path, 0)
            self._cursor[request.path] = index + 1
            return responder[min(index, len(responder) - 1)]

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self._answer(urlsplit(self.path).query)

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                self._answer(self.rfile.read(length).decode())

            def _answer(self, fields: str) -> None:
                parsed = {k: v[0] for k, v in parse_qs(fields, keep_blank_values=True).items()}
                path = urlsplit(self.path).path
                request = Request(self.command, path, parsed, dict(self.headers.items()), time.monotonic())
                reply = fake._reply_for(request)
                if reply.delay:
                    time.sleep(reply.delay)
                payload = reply.raw if reply.raw is not None else json.dumps(reply.body).encode()
                try:
                    self.send_response(reply.status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(reply.content_length or len(payload)))
                    for name, value in reply.headers.items():
                        self.send_header(name, value)
                    self.end_headers()
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler


class FakeTime:
    """A clock that moves only when slept on, for retry budgets: minutes of backoff take milliseconds.

    Thread-safe, since the metrics stage retries from worker threads that share one budget.
    """

    def __init__(self) -> None:
        self.now = 0.0
        self.waits: list[float] = []
        self._lock = threading.Lock()

    def clock(self) -> float:
        with self._lock:
            return self.now

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.waits.append(seconds)
            self.now += seconds

    def budget(self, seconds: float = 300.0) -> RetryBudget:
        return RetryBudget(seconds, clock=self.clock, sleep=self.sleep)
