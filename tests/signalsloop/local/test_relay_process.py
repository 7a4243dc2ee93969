"""``signalsloop relay`` as operators run it: a process that serves rings
until SIGINT/SIGTERM and then exits cleanly."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import pytest

from tests.signalsloop import stack_helpers as h


def listening(url: str) -> bool:
    with psycopg.connect(url) as conn:
        row = conn.execute("select count(*) from pg_stat_activity where datname = current_database() "
                           "and query ilike 'listen signalsloop_doorbell%'").fetchone()
    return bool(row and row[0])


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT])
def test_the_relay_process_stops_cleanly_on_a_signal(pg_server: str, stop_signal: signal.Signals) -> None:
    with h.fresh_database(pg_server) as url:
        env = {**os.environ, "DATABASE_URL": url, "SIGNALSLOOP_SECRET": "s"}
        cli = Path(sys.executable).with_name("signalsloop")
        relay = subprocess.Popen([str(cli), "relay", "--sweep-interval", "0.2"], env=env,
                                 stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 20
            while not listening(url):
                assert relay.poll() is None and time.monotonic() < deadline, "the relay never listened"
                time.sleep(0.1)
            relay.send_signal(stop_signal)
            assert relay.wait(15) == 0
            output = relay.stdout.read().decode() if relay.stdout else ""
            assert "relay stopped" in output
            assert not listening(url), "its connections are closed"
        finally:
            if relay.poll() is None:
                relay.kill()


def test_the_relay_refuses_to_start_without_its_secret(pg_server: str) -> None:
    with h.fresh_database(pg_server) as url:
        env = {k: v for k, v in os.environ.items() if k != "SIGNALSLOOP_SECRET"} | {"DATABASE_URL": url}
        cli = Path(sys.executable).with_name("signalsloop")
        done = subprocess.run([str(cli), "relay"], env=env, capture_output=True, text=True, timeout=30)
    assert done.returncode == 2 and "SIGNALSLOOP_SECRET" in done.stderr
