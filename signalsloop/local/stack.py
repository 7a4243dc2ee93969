"""The whole system on one machine: PostgreSQL (embedded by default), the
migrations, one functions-framework server per agent, and the relay.

``signalsloop dev`` (:mod:`signalsloop.cli.local`) runs it until Ctrl-C; the
demo, the benchmark and the end-to-end tests drive the same :class:`Stack`.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psycopg

from shared.errors import ConfigurationError
from signalsloop import ROOT
from signalsloop.db import DEFAULT_DATA_DIR, check_url, migrate, start_embedded, stop_embedded
from signalsloop.local.dashboard_process import DashboardProcess
from signalsloop.local.pgnet_doorbell import PgNetDoorbell
from signalsloop.local.relay import Relay

log = logging.getLogger("signalsloop.local.stack")
FUNCTIONS_DIR = ROOT / "functions"


def function_names() -> list[str]:
    """Every function folder: the agents, and slack_actions (Slack's interaction
    callbacks); the services (the dashboard) are started on their own."""
    from signalsloop.release.package import SERVICES

    return sorted(p.parent.name for p in FUNCTIONS_DIR.glob("*/main.py") if p.parent.name not in SERVICES)


def free_port() -> int:
    return free_ports(1)[0]


def free_ports(n: int) -> list[int]:
    """``n`` distinct free ports: all held open at once while they are picked
    (one at a time, the OS may hand out a port just closed again, and two
    functions would share it, one of them answering the other's doorbells)."""
    with contextlib.ExitStack() as stack:
        sockets = [stack.enter_context(socket.socket()) for _ in range(n)]
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [int(s.getsockname()[1]) for s in sockets]


@dataclass
class FunctionProcess:
    name: str
    port: int
    process: subprocess.Popen[bytes] | None = None
    advertise_host: str = "127.0.0.1"

    @property
    def url(self) -> str:
        """Where the doorbell reaches it (registered in ``agents.endpoint_url``)."""
        return f"http://{self.advertise_host}:{self.port}/"

    @property
    def local_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"


def _kill_group(process: subprocess.Popen[bytes]) -> None:
    """SIGKILL a function server and its gunicorn workers (its own session, so
    its own process group): killing only the master leaves a worker serving."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)


@dataclass
class Stack:
    database_url: str | None = None
    base_port: int | None = None
    secret: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    data_dir: Path = DEFAULT_DATA_DIR
    sweep_interval: float = 0.5
    extra_env: dict[str, str] = field(default_factory=dict)
    log_dir: Path | None = None
    # Where functions listen, and the host name the database uses to reach them
    # (``host.docker.internal`` for pg_net inside a local Supabase container).
    listen_host: str = "127.0.0.1"
    advertise_host: str = "127.0.0.1"
    # relay: NOTIFY + the relay and its sweep timer; pg_net: pg_net rings (the real
    # extension where installed, else the stand-in) and run_periodic() every 5 s.
    doorbell: str = "relay"
    functions: dict[str, FunctionProcess] = field(default_factory=dict)
    relay: Relay | None = None
    pg_net: PgNetDoorbell | None = None
    dashboard: DashboardProcess | None = None
    _relay_thread: threading.Thread | None = None

    # -- lifecycle ---------------------------------------------------------

    def __enter__(self) -> Stack:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        """Start everything, or nothing: a failure stops what already started."""
        try:
            self._start()
        except BaseException:
            self.stop()
            raise

    def _start(self) -> None:
        if self.database_url is None:
            self.database_url = start_embedded(self.data_dir)
        check_url(self.database_url)
        migrate(self.database_url)
        if self.doorbell == "pg_net":
            self.pg_net = PgNetDoorbell(self.database_url, self.secret)
            self.secret = self.pg_net.prepare()
        names = function_names()
        ports = self._ports(len(names))
        self.functions = {n: FunctionProcess(n, p, advertise_host=self.advertise_host)
                          for n, p in zip(names, ports, strict=True)}
        self._register()
        for fn in self.functions.values():
            self.start_function(fn.name)
        for fn in self.functions.values():
            self._wait_ready(fn)
        if self.pg_net is not None:
            self.pg_net.start()
        else:
            self.start_relay()

    @property
    def doorbell_name(self) -> str:
        """What rings: ``relay``, ``pg_net`` (the extension) or ``pg_net-standin``."""
        return self.pg_net.name if self.pg_net is not None else "relay"

    @property
    def sweep_name(self) -> str:
        """What runs the sweep: the relay's timer, pg_cron, or a timer standing in for it."""
        if self.pg_net is None:
            return f"relay-timer-{self.sweep_interval:g}s"
        return "pg_cron" if self.pg_net.sweep == "pg_cron" else f"timer-{self.pg_net.cron_interval:g}s"

    def stop(self) -> None:
        if self.dashboard is not None:
            self.dashboard.stop()
        self.stop_relay()
        if self.pg_net is not None:
            self.pg_net.stop()
        for fn in self.functions.values():
            self.stop_function(fn.name)

    def _ports(self, n: int) -> list[int]:
        if self.base_port is None:
            return free_ports(n)
        ports = list(range(self.base_port, self.base_port + n))
        for port in ports:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    raise ConfigurationError(f"port {port} is in use; pass --base-port to choose others")
        return ports

    def _register(self) -> None:
        assert self.database_url
        with psycopg.connect(self.database_url, autocommit=True) as conn:
            for fn in self.functions.values():
                conn.execute("update public.agents set endpoint_url = %s where name = %s", (fn.url, fn.name))

    # -- functions ---------------------------------------------------------

    def env(self) -> dict[str, str]:
        env = {**os.environ, **self.extra_env}
        env.update({"DATABASE_URL": self.database_url or "", "SIGNALSLOOP_SECRET": self.secret,
                    "PYTHONPATH": str(ROOT), "THREADS": env.get("THREADS", "8")})
        return env

    def start_function(self, name: str, *, wait: bool = False) -> None:
        fn = self.functions[name]
        cmd = [sys.executable, "-m", "signalsloop.local.function_server", "--target", "handle",
               "--source", str(FUNCTIONS_DIR / name / "main.py"),
               "--host", self.listen_host, "--port", str(fn.port)]
        out: Any = subprocess.DEVNULL
        if self.log_dir:
            self.log_dir.mkdir(parents=True, exist_ok=True)
            out = (self.log_dir / f"{name}.log").open("ab")
        fn.process = subprocess.Popen(cmd, env=self.env(), stdout=out, stderr=subprocess.STDOUT, cwd=ROOT,
                                      start_new_session=True)
        if wait:
            self._wait_ready(fn)

    def stop_function(self, name: str, *, kill: bool = False) -> None:
        fn = self.functions[name]
        if fn.process is None or fn.process.poll() is not None:
            return
        if kill:
            _kill_group(fn.process)
        else:
            fn.process.terminate()
        try:
            fn.process.wait(10)
        except subprocess.TimeoutExpired:
            _kill_group(fn.process)
            fn.process.wait(5)

    def _wait_ready(self, fn: FunctionProcess, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if fn.process is not None and fn.process.poll() is not None:
                raise ConfigurationError(f"function {fn.name} exited with code {fn.process.returncode}")
            try:
                httpx.get(fn.local_url, timeout=1)  # any answer (405, 401) means it serves
                return
            except httpx.HTTPError:
                time.sleep(0.1)
        raise ConfigurationError(f"function {fn.name} did not start within {timeout:.0f}s")

    def start_dashboard(self, *args: str) -> str:
        """Serve the dashboard on this stack's database; return its sign-in URL."""
        log = self.log_dir / "dashboard.log" if self.log_dir else None
        self.dashboard = DashboardProcess(self.env(), args, log)
        return self.dashboard.start()

    # -- relay ---------------------------------------------------------------

    def start_relay(self) -> None:
        assert self.database_url
        self.relay = Relay(self.database_url, self.secret, sweep_interval=self.sweep_interval)
        self._relay_thread = threading.Thread(target=self.relay.run, name="relay", daemon=True)
        self._relay_thread.start()

    def stop_relay(self) -> None:
        if self.relay is not None and self._relay_thread is not None:
            self.relay.stop()
            self._relay_thread.join(15)
        self.relay, self._relay_thread = None, None

    # -- reading the ledger ------------------------------------------------------

    def wait_settled(self, timeout: float = 120, on_progress: Any = None) -> dict[str, int]:
        """Wait until no delivery is pending, running, failed or parked; return counts by status.

        Polls only the open deliveries (a partial index) unless ``on_progress``
        wants every count: counting all of them ten times a second is a full
        scan, which on a long history (``bench --history``) ate the CPU the
        load was being measured with.
        """
        assert self.database_url
        deadline = time.monotonic() + timeout
        with psycopg.connect(self.database_url, autocommit=True) as conn:
            while True:
                counts: dict[str, int] = dict(conn.execute(
                    "select status, count(*) from public.event_deliveries "
                    + ("" if on_progress else "where status in ('pending', 'running', 'failed', 'parked') ")
                    + "group by status").fetchall())
                open_ = sum(counts.get(s, 0) for s in ("pending", "running", "failed", "parked"))
                if on_progress:
                    on_progress(counts)
                if open_ == 0 or time.monotonic() > deadline:
                    return counts if on_progress else dict(conn.execute(
                        "select status, count(*) from public.event_deliveries group by status").fetchall())
                time.sleep(0.1)


@contextmanager
def throwaway_stack(prefix: str, **options: Any) -> Iterator[Stack]:
    """A started stack on ``DATABASE_URL``, or on an embedded PostgreSQL in a
    temporary folder; everything stopped and the folder removed afterwards."""
    from shared.settings import load_settings

    with tempfile.TemporaryDirectory(prefix=prefix) as tmp:
        stack = Stack(database_url=load_settings().database_url, data_dir=Path(tmp) / "pg",
                      log_dir=Path(tmp) / "logs", **options)
        try:
            stack.start()
            yield stack
        finally:
            stack.stop()
            stop_embedded()
