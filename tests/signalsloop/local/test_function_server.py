"""A slow-loris run against a local function server on loopback, bounded in
connections and time: half-open and silent connections are dropped within
seconds, requests from others are served meanwhile and afterwards."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from uuid import uuid4

import httpx
import pytest

from signalsloop import ROOT
from signalsloop.local.stack import free_port

pytestmark = pytest.mark.timeout(90)
SECRET = "loris-test-secret"
CONNECTIONS = 12  # of each kind: more than the server's 8 threads


@pytest.fixture
def server(db_url: str) -> Iterator[str]:
    port = free_port()
    env = {**os.environ, "DATABASE_URL": db_url, "SIGNALSLOOP_SECRET": SECRET, "THREADS": "8",
           "PYTHONPATH": str(ROOT)}
    process = subprocess.Popen(
        [sys.executable, "-m", "signalsloop.local.function_server", "--target", "handle",
         "--source", str(ROOT / "functions" / "priority" / "main.py"), "--port", str(port)],
        env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                httpx.get(url, timeout=1)
                break
            except httpx.HTTPError:
                time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        process.wait(10)


def valid_request(url: str, timeout: float) -> httpx.Response:
    """A signed webhook for an event the ledger does not know: served without any agent work."""
    record = {"id": str(uuid4()), "type": "feedback.voted", "aggregate_type": "feedback",
              "aggregate_id": str(uuid4()), "payload": {}, "metadata": {"project_id": str(uuid4())},
              "version": 1, "created_at": datetime.now(UTC).isoformat()}
    body = {"type": "INSERT", "table": "events", "schema": "public", "record": record, "old_record": None}
    return httpx.post(url, json=body, headers={"Authorization": f"Bearer {SECRET}"}, timeout=timeout)


def answered_by_the_function(response: httpx.Response) -> bool:
    """The signed request passed the secret and reached the ledger: the event is unknown there."""
    return response.status_code == 404 and "unknown event" in response.json()["message"]


def closed_by_server(sock: socket.socket, within: float) -> bool:
    sock.settimeout(within)
    try:
        return sock.recv(1024) == b""
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False


def test_half_open_and_silent_connections_are_dropped_and_others_served(server: str) -> None:
    host, port = server.removeprefix("http://").rstrip("/").split(":")
    attackers = []
    for _ in range(CONNECTIONS):
        half_open = socket.create_connection((host, int(port)))
        half_open.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n")  # headers never end
        attackers += [half_open, socket.create_connection((host, int(port)))]  # ... and one that says nothing
    try:
        assert answered_by_the_function(valid_request(server, timeout=15))
        assert all(closed_by_server(s, within=15) for s in attackers), "every slow connection is dropped"
        assert answered_by_the_function(valid_request(server, timeout=5))
    finally:
        for s in attackers:
            s.close()


def _raw_response(server: str, request: bytes, within: float) -> bytes:
    """What the server answers to ``request`` sent as is, read until it closes or ``within`` passes."""
    host, port = server.removeprefix("http://").rstrip("/").split(":")
    with socket.create_connection((host, int(port))) as sock:
        sock.sendall(request)
        sock.settimeout(within)
        reply = b""
        try:
            while chunk := sock.recv(65536):
                reply += chunk
        except (TimeoutError, ConnectionResetError):
            pass
    return reply


def test_a_broken_chunked_body_is_a_400_not_a_500(server: str) -> None:
    """gunicorn raises its own InvalidChunkSize from the body stream; it came
    out of the function as a 500 with a traceback."""
    request = (b"POST / HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + SECRET.encode()
               + b"\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\nzz\r\nabc\r\n0\r\n\r\n")
    reply = _raw_response(server, request, within=15)
    assert reply.startswith(b"HTTP/1.1 400"), reply[:300]
    assert b"could not be read" in reply


def test_a_refused_big_body_is_answered_without_waiting_for_the_rest(server: str) -> None:
    """functions-framework reads the whole body into memory before it sends
    any response; a refused request's body is now left unread, so the 401
    comes at once instead of after all of a 300 MB body (or never, from a
    client that stops sending)."""
    head = b"POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 300000000\r\n\r\n"
    reply = _raw_response(server, head + b" " * 2_000_000, within=10)  # 2 MB of the 300 MB promised
    assert reply.startswith(b"HTTP/1.1 401"), reply[:300]
    assert b"missing or wrong bearer token" in reply


def test_a_get_is_refused_with_405_before_any_work(server: str) -> None:
    """functions-framework routes GET (and every other method) to the function."""
    reply = httpx.get(server, headers={"Authorization": f"Bearer {SECRET}"}, timeout=10)
    assert reply.status_code == 405 and reply.headers["allow"] == "POST"
    assert reply.json()["error"] == "method_not_allowed"
