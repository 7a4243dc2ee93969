"""Serve one function locally as functions-framework does, with gunicorn
hardened against slow and half-open clients.

``functions-framework`` runs gunicorn's gthread worker with ``THREADS``
threads and no read timeout: a connection that sends part of its headers
holds a thread until it closes, so a dozen half-open connections stop the
function (a new connection also waits for its first bytes in a thread, up to
5 s). On Cloud Run clients reach Google's front end, not gunicorn; here
they reach gunicorn directly.

This runner builds the same WSGI app (``functions_framework.create_app``)
and runs it under gunicorn with :class:`BoundedThreadWorker`:

- a new connection waits for its first bytes in the worker's poller, not in
  a thread, and is closed after ``IDLE_SECONDS`` without any (as kept-alive
  connections are);
- each request must arrive whole (headers and body) within
  ``REQUEST_READ_SECONDS``, else the connection is closed and its thread
  serves others.
"""

from __future__ import annotations

import argparse
import os
import selectors
import socket
import time
from functools import partial
from typing import Any

from gunicorn.app.base import BaseApplication
from gunicorn.workers.gthread import TConn, ThreadWorker

IDLE_SECONDS = 2
REQUEST_READ_SECONDS = 3.0


class _DeadlineSocket:
    """The socket gunicorn's parser reads from, with one deadline for a whole request."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self.deadline = time.monotonic() + REQUEST_READ_SECONDS

    def recv(self, size: int) -> bytes:
        """Like ``socket.recv``; past the deadline the client counts as gone
        (``b""``: gunicorn closes the connection quietly)."""
        left = self.deadline - time.monotonic()
        if left <= 0:
            return b""
        prior = self._sock.gettimeout()
        self._sock.settimeout(left if prior is None else min(prior, left))
        try:
            return self._sock.recv(size)
        except TimeoutError:
            return b""
        finally:
            self._sock.settimeout(prior)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sock, name)


class BoundedThreadWorker(ThreadWorker):  # type: ignore[misc]
    """gunicorn's gthread worker; no thread waits on a slow or silent client."""

    def enqueue_req(self, conn: TConn) -> None:
        if not conn.initialized and not conn.data_ready:
            # A new connection: wait for its first bytes in the poller (as
            # gunicorn does for deferred connections), closed when idle.
            conn.sock.setblocking(False)
            conn.timeout = time.monotonic() + IDLE_SECONDS
            self.pending_conns.append(conn)
            self.poller.register(conn.sock, selectors.EVENT_READ, partial(self.on_pending_socket_readable, conn))
            return
        super().enqueue_req(conn)

    def handle(self, conn: TConn) -> Any:
        if not conn.initialized:
            conn.sock.setblocking(True)
            conn.init()
        unreader = getattr(conn.parser, "unreader", None)
        if unreader is not None:
            if not isinstance(unreader.sock, _DeadlineSocket):
                unreader.sock = _DeadlineSocket(unreader.sock)
            unreader.sock.deadline = time.monotonic() + REQUEST_READ_SECONDS
        return super().handle(conn)


class FunctionServer(BaseApplication):  # type: ignore[misc]
    def __init__(self, app: Any, host: str, port: int) -> None:
        self.app = app
        self.options = {
            "bind": f"{host}:{port}", "workers": 1, "threads": int(os.environ.get("THREADS", "8")),
            "worker_class": f"{__name__}.BoundedThreadWorker", "keepalive": IDLE_SECONDS,
            "loglevel": os.environ.get("GUNICORN_LOG_LEVEL", "error"),
            # functions-framework lifts the request line limit; keep gunicorn's own.
            "limit_request_line": 4094,
        }
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self) -> Any:
        return self.app


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--target", required=True)
    parser.add_argument("--source", required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080)
    args = parser.parse_args(argv)
    from functions_framework import create_app

    FunctionServer(create_app(args.target, args.source), args.host, args.port).run()


if __name__ == "__main__":
    main()
