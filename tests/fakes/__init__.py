"""Fakes of the outside world at its HTTP boundary, for tests.

:class:`FakeHTTPServer` is a real HTTP server on a loopback port (port 0, so
tests never collide) running in a thread. It records every request it receives
and answers from a queue of :class:`Canned` responses a test lays out in
advance; when nothing is queued for a path, a subclass's
:meth:`FakeHTTPServer.default_response` answers. The OpenAI and Slack fakes in
this package are such subclasses.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self

JsonBody = dict[str, Any] | list[Any]


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the fake received it."""

    method: str
    path: str
    headers: Mapping[str, str]
    body: bytes

    @property
    def json(self) -> Any:
        """The body parsed as JSON (``None`` when it is empty)."""
        return json.loads(self.body) if self.body else None

    def header(self, name: str) -> str | None:
        lowered = name.lower()
        return next((v for k, v in self.headers.items() if k.lower() == lowered), None)


@dataclass
class Canned:
    """A prepared answer. ``body`` may be a JSON-able dict/list, text or bytes;
    ``delay`` (seconds) is waited before answering, to provoke client timeouts."""

    status: int = 200
    body: JsonBody | str | bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0

    def encoded(self) -> tuple[bytes, str]:
        if isinstance(self.body, bytes):
            return self.body, "application/octet-stream"
        if isinstance(self.body, str):
            return self.body.encode(), "text/plain; charset=utf-8"
        if self.body is None:
            return b"", "text/plain; charset=utf-8"
        return json.dumps(self.body).encode(), "application/json"


class FakeHTTPServer:
    """A recording, scriptable HTTP server on 127.0.0.1. Use as a context manager."""

    def __init__(self) -> None:
        self.requests: list[RecordedRequest] = []
        self._queue: list[tuple[str | None, Canned]] = []
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._httpd = _Server(("127.0.0.1", 0), _Handler)
        self._httpd.fake = self
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.01,), daemon=True)

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> Self:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()  # ends any delayed answer early
        self._httpd.shutdown()
        self._httpd.server_close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def enqueue(self, response: Canned, *, path: str | None = None) -> None:
        """Answer the next request to ``path`` (any path when ``None``) with ``response``."""
        with self._lock:
            self._queue.append((path, response))

    def requests_to(self, path: str) -> list[RecordedRequest]:
        return [r for r in self.requests if r.path == path]

    def default_response(self, request: RecordedRequest) -> Canned:
        """What to answer when nothing is queued; subclasses serve plausible defaults."""
        return Canned(404, {"error": f"fake: nothing queued for {request.method} {request.path}"})

    def _answer(self, request: RecordedRequest) -> Canned:
        with self._lock:
            self.requests.append(request)
            for i, (path, canned) in enumerate(self._queue):
                if path is None or path == request.path:
                    del self._queue[i]
                    return canned
        return self.default_response(request)

    def _wait(self, seconds: float) -> None:
        if seconds > 0:
            self._stopping.wait(seconds)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256  # a pg_net batch opens up to 200 connections at once
    block_on_close = False  # a handler still sleeping must not hold up shutdown
    fake: FakeHTTPServer


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:
        self._handle()

    def do_GET(self) -> None:
        self._handle()

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        request = RecordedRequest(
            method=self.command,
            path=self.path.split("?", 1)[0],
            headers=dict(self.headers.items()),
            body=body,
        )
        fake = self.server.fake
        canned = fake._answer(request)
        fake._wait(canned.delay)
        payload, content_type = canned.encoded()
        try:
            self.send_response(canned.status)
            headers = {"Content-Type": content_type, **canned.headers}
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (timeout test); nothing to answer

    def log_message(self, format: str, *args: Any) -> None:
        """Silence the per-request log lines."""

