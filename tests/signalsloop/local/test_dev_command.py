"""``signalsloop dev`` started in the background (``make dev &``) and stopped
with ``kill PID`` (SIGTERM) stops everything it started, as Ctrl-C does: the
functions stop answering and the command exits 0."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from signalsloop import ROOT
from signalsloop.local.stack import function_names
from tests.signalsloop import stack_helpers as h

FUNCTIONS = 10  # registered agents with a function folder (slack_actions serves too, unregistered)


def free_run(n: int) -> int:
    """A base port with ``n`` free ports after it."""
    for base in range(31_000, 60_000, 97):
        if all(socket.socket().connect_ex(("127.0.0.1", p)) != 0 for p in range(base, base + n)):
            return base
    raise AssertionError("no run of free ports")


def answers(url: str) -> bool:
    try:
        httpx.get(url, timeout=2)
    except httpx.TransportError:
        return False
    return True


def kill_leftovers(url: str) -> None:
    """On failure: the processes this test's stack started (each in its own
    session, so not in the dev command's group), found by their DATABASE_URL."""
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            environ = (proc / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if f"DATABASE_URL={url}".encode() in environ:
            with contextlib.suppress(OSError):
                os.killpg(int(proc.name), signal.SIGKILL)


@pytest.mark.timeout(240)
def test_sigterm_stops_the_whole_dev_stack(pg_server: str, tmp_path: Path) -> None:
    out = tmp_path / "dev.log"
    with h.fresh_database(pg_server) as url:
        env = {**os.environ, "DATABASE_URL": url, "SIGNALSLOOP_SECRET": "dev-test-secret", "OPENAI_API_KEY": "",
               "SLACK_BOT_TOKEN": "", "SLACK_WEBHOOK_URL": "", "SUPABASE_URL": "", "COLUMNS": "200"}
        servers = len(function_names())
        base = free_run(servers + 2)
        with out.open("w") as log:
            # stdin closed and SIGINT ignored, as for a job a non-interactive shell puts in the background
            dev = subprocess.Popen([str(Path(sys.executable).parent / "signalsloop"), "dev", "--base-port", str(base)],
                                   cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL, start_new_session=True,
                                   preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
        try:
            h.wait_for(lambda: "Ctrl-C stops everything" in out.read_text() or dev.poll() is not None,
                       timeout=180, what="the dev stack to start")
            assert dev.poll() is None, out.read_text()
            endpoints = [r["endpoint_url"] for r in h.rows(url, "select endpoint_url from public.agents "
                                                                "where endpoint_url is not null")]
            ports = {int(e.rsplit(":", 1)[1].strip("/")) for e in endpoints}
            assert ports <= set(range(base, base + servers)), endpoints
            assert len(endpoints) == FUNCTIONS and all(answers(e) for e in endpoints)
            dev.send_signal(signal.SIGTERM)
            assert dev.wait(timeout=60) == 0, out.read_text()
            assert "stopped: functions, relay" in out.read_text()
            time.sleep(0.5)
            assert not [e for e in endpoints if answers(e)], "a function outlived signalsloop dev"
        finally:
            if dev.poll() is None:
                os.killpg(dev.pid, signal.SIGKILL)
            kill_leftovers(url)
