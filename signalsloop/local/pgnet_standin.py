"""A stand-in for Supabase's pg_net (0.20.x) where the extension is absent:
the SQL objects in schema ``net`` with pg_net's own signatures and columns,
and a worker (a thread here, a background worker there) that behaves as
pg_net's does, timing included. For the benchmark and the tests only: it is
installed into their own database, never by the migrations.

What it copies from pg_net's ``src/worker.c`` and ``src/core.c``:

- ``net.http_post`` / ``net.http_get`` queue a row in ``net.http_request_queue``
  (the body is ``convert_to(body::text, 'UTF8')``, jsonb's text form) and call
  ``net.wake()``, which wakes the worker at commit only (here a NOTIFY, which
  PostgreSQL delivers at commit and drops on rollback).
- The worker sleeps without a timeout until woken. Woken, it loops: in one
  transaction it deletes expired responses (``pg_net.ttl``, 6 hours), takes
  up to ``pg_net.batch_size`` (200) queued requests in id order, sends them
  all at once, each exactly once (no retry, redirects followed), waits for
  all of them, writes one ``net._http_response`` row per request (status,
  headers, body; or ``timed_out`` and ``error_msg`` with curl's wording) and
  commits; then it waits 1 s. It loops while a batch found work.
- The wake flag: a commit sets the latch only when it turns ``should_wake``
  from 0 to 1, and only the idle loop turns it back to 0. So one commit may
  cut the first 1 s pause short, and later commits do not: while busy, every
  batch is followed by a full second.

Not copied: curl's per-phase timings in the timeout message (httpx does not
expose them; the total is attributed to the phase httpx failed in), and curl's
connection reuse: httpx's async pool, reusing keep-alive connections for 200
concurrent requests, left some of them hanging until their timeout (seen with
httpcore 1.0.9 against uvicorn too), so each request opens its own connection,
which on loopback costs well under a millisecond.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psycopg
from psycopg import sql
from psycopg.rows import dict_row, tuple_row
from psycopg.types.json import Jsonb

log = logging.getLogger("signalsloop.local.pgnet_standin")
WAKE_CHANNEL = "signalsloop_pgnet_standin_wake"  # net.wake() NOTIFYs it
PG_NET_VERSION = "0.20.4"
BATCH_SIZE = 200
IDLE_PAUSE_S = 1.0
TTL = "6 hours"

SQL_FILE = Path(__file__).parent.parent / "sql" / "pgnet_standin.sql"

# Supabase Vault's view, as far as the ledger reads it (public.agent_secret()).
VAULT_SQL = """
create schema vault;
create view vault.decrypted_secrets as select 'signalsloop_secret'::text as name, {}::text as decrypted_secret;
"""

CONSUME_SQL = """
with rows as (select id from net.http_request_queue order by id limit %(n)s)
delete from net.http_request_queue q using rows where q.id = rows.id
returning q.id, q.method, q.url, q.timeout_milliseconds,
          array(select key || ': ' || value from jsonb_each_text(q.headers)) as headers, q.body
"""
EXPIRE_SQL = """
with rows as (select ctid from net._http_response where created < now() - %(ttl)s::interval
              order by created limit %(n)s)
delete from net._http_response r using rows where r.ctid = rows.ctid
"""
INSERT_SQL = """
insert into net._http_response (id, status_code, content, headers, content_type, timed_out, error_msg)
values (%s, %s, %s, %s, %s, %s, %s)
"""


def real_pg_net_version(conn: psycopg.Connection[Any]) -> str | None:
    """The installed pg_net extension's version, or None."""
    row = conn.cursor(row_factory=tuple_row).execute(
        "select extversion from pg_extension where extname = 'pg_net'").fetchone()
    return None if row is None else str(row[0])


def install(conn: psycopg.Connection[Any]) -> None:
    """Create the stand-in's SQL objects (fails if a schema ``net`` exists)."""
    with conn.transaction():
        conn.execute(SQL_FILE.read_text())  # type: ignore[arg-type]


def uninstall(conn: psycopg.Connection[Any]) -> None:
    conn.execute("drop schema if exists net cascade")


def install_vault_secret(conn: psycopg.Connection[Any], secret: str) -> None:
    """A stand-in ``vault.decrypted_secrets`` holding ``signalsloop_secret``."""
    with conn.transaction():
        conn.execute(sql.SQL(VAULT_SQL).format(sql.Literal(secret)))  # type: ignore[arg-type]


@dataclass(frozen=True)
class Outcome:
    """What pg_net writes for one request: a response, or an error."""

    status_code: int | None = None
    content: str | None = None
    headers: dict[str, str] | None = None
    content_type: str | None = None
    timed_out: bool = False
    error_msg: str | None = None

    def row(self, request_id: int) -> tuple[Any, ...]:
        headers = None if self.headers is None else Jsonb(self.headers)
        return (request_id, self.status_code, self.content, headers, self.content_type, self.timed_out,
                self.error_msg)


def _timeout_message(timeout_ms: int, total_s: float, connected: bool) -> str:
    """curl's message for CURLE_OPERATION_TIMEDOUT (src/errors.c), the total given to one phase."""
    total = total_s * 1000
    handshake, http = (0.0, total) if connected else (total, 0.0)
    return (f"Timeout of {timeout_ms} ms reached. Total time: {total:f} ms (DNS time: {0.0:f} ms, "
            f"TCP/SSL handshake time: {handshake:f} ms, HTTP Request/Response time: {http:f} ms)")


def _curl_error(exc: httpx.HTTPError) -> str:
    """curl_easy_strerror()'s text for the CURLcode this failure would be."""
    text = str(exc).lower()
    if isinstance(exc, httpx.ConnectError):
        if "name or service" in text or "resolve" in text or "nodename" in text:
            return "Couldn't resolve host name"
        return "Couldn't connect to server"
    if isinstance(exc, httpx.UnsupportedProtocol):
        return "Unsupported protocol"
    if isinstance(exc, httpx.WriteError):
        return "Failed sending data to the peer"
    if isinstance(exc, httpx.TooManyRedirects):
        return "Number of redirects hit maximum amount"
    return "Failure when receiving data from the peer"


class PgNetStandin:
    """pg_net's background worker, in a thread of this process."""

    def __init__(self, database_url: str, *, batch_size: int = BATCH_SIZE, pause_s: float = IDLE_PAUSE_S,
                 ttl: str = TTL) -> None:
        self.url = database_url
        self.batch_size = batch_size
        self.pause_s = pause_s
        self.ttl = ttl
        self.batches: list[tuple[float, int]] = []  # (monotonic start, requests) per batch that sent any
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None

    # -- lifecycle -----------------------------------------------------------

    def start(self) -> PgNetStandin:
        self._thread = threading.Thread(target=self._run, name="pg_net-standin", daemon=True)
        self._thread.start()
        if not self._ready.wait(30) or self._error is not None:
            raise RuntimeError(f"the pg_net stand-in did not start: {self._error}")
        return self

    def stop(self) -> None:
        if self._loop is not None and self._stopping is not None:
            self._loop.call_soon_threadsafe(self._stopping.set)
        if self._thread is not None:
            self._thread.join(15)
        self._thread = None

    def __enter__(self) -> PgNetStandin:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:  # surfaced by start(); logged if it happens later
            self._error = exc
            self._ready.set()
            log.exception("pg_net stand-in stopped")

    # -- the worker loop (pg_net_worker in src/worker.c) -----------------------

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stopping = asyncio.Event()
        self._latch = asyncio.Event()
        self._should_wake = True  # pg_net starts with should_wake = 1: it looks at the queue once
        async with await psycopg.AsyncConnection.connect(self.url, autocommit=True) as listen, \
                await psycopg.AsyncConnection.connect(self.url, row_factory=dict_row) as work, \
                httpx.AsyncClient(trust_env=False, follow_redirects=True, timeout=None,
                                  limits=httpx.Limits(max_connections=None, max_keepalive_connections=0),
                                  headers={"Accept": "*/*", "User-Agent": f"pg_net/{PG_NET_VERSION}"}) as http:
            await listen.execute(f"listen {WAKE_CHANNEL}")
            listener = asyncio.create_task(self._listen(listen))
            self._ready.set()
            try:
                await self._worker(work, http)
            finally:
                listener.cancel()

    async def _listen(self, conn: psycopg.AsyncConnection[Any]) -> None:
        """wake_at_commit(): set the latch only when should_wake goes 0 -> 1."""
        async for _ in conn.notifies():
            if not self._should_wake:
                self._should_wake = True
                self._latch.set()

    async def _wait_latch(self, timeout: float | None) -> None:
        """WaitLatch then ResetLatch: returns on a set latch, the timeout, or stop."""
        assert self._stopping is not None
        waits = [asyncio.ensure_future(self._latch.wait()), asyncio.ensure_future(self._stopping.wait())]
        _, pending = await asyncio.wait(waits, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        for task in pending:
            task.cancel()
        self._latch.clear()

    async def _worker(self, work: psycopg.AsyncConnection[Any], http: httpx.AsyncClient) -> None:
        assert self._stopping is not None
        while not self._stopping.is_set():
            if not self._should_wake:
                await self._wait_latch(None)
                continue
            self._should_wake = False
            while not self._stopping.is_set():
                consumed, expired = await self._batch(work, http)
                await self._wait_latch(self.pause_s)  # "slow down queue processing to avoid using too much CPU"
                if consumed == 0 and expired == 0:
                    break

    async def _batch(self, work: psycopg.AsyncConnection[Any], http: httpx.AsyncClient) -> tuple[int, int]:
        """One iteration: expire, consume, send all, record all, commit."""
        async with work.transaction():
            expired = (await work.execute(EXPIRE_SQL, {"ttl": self.ttl, "n": self.batch_size})).rowcount
            requests = await (await work.execute(CONSUME_SQL, {"n": self.batch_size})).fetchall()
            if requests:
                self.batches.append((time.monotonic(), len(requests)))
                outcomes = await asyncio.gather(*(self._send(http, r) for r in requests))
                async with work.cursor() as cur:
                    await cur.executemany(INSERT_SQL, [o.row(r["id"]) for r, o in zip(requests, outcomes, strict=True)])
        return len(requests), max(expired, 0)

    async def _send(self, http: httpx.AsyncClient, request: dict[str, Any]) -> Outcome:
        """One try, as curl's easy handle in the multi handle: CURLOPT_TIMEOUT_MS is the whole exchange."""
        headers = [tuple(h.split(": ", 1)) for h in request["headers"] or []]
        body = bytes(request["body"]) if request["body"] is not None else None
        if request["body"] is None and request["method"].upper() == "POST":
            body = b""
        timeout_ms = int(request["timeout_milliseconds"])
        started = time.monotonic()
        try:
            async with asyncio.timeout(timeout_ms / 1000):
                reply = await http.request(request["method"].upper(), request["url"], headers=headers, content=body)
        except (TimeoutError, httpx.TimeoutException) as exc:
            spent = time.monotonic() - started
            connected = not isinstance(exc, httpx.ConnectTimeout)
            return Outcome(timed_out=True, error_msg=_timeout_message(timeout_ms, spent, connected))
        except httpx.HTTPError as exc:
            return Outcome(error_msg=_curl_error(exc))
        text = reply.content.decode("utf-8", errors="replace")
        headers_out = {k.decode("latin-1"): v.decode("latin-1") for k, v in reply.headers.raw}
        return Outcome(status_code=reply.status_code, content=text or None, headers=headers_out,
                       content_type=reply.headers.get("content-type"))
