"""The local doorbell: LISTENs for ``signalsloop_doorbell`` and POSTs the exact
Supabase database-webhook body to each agent's endpoint, as pg_net does on
Supabase; and runs the redelivery sweep on a timer (pg_cron's job there).

Nothing here is the source of truth. A lost POST, a dead function, a killed
relay: the delivery row is still in the ledger and the sweep rings again.
"""

from __future__ import annotations

import json
import logging
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import httpx
import psycopg
from psycopg.rows import dict_row

from shared.events import WebhookPayload

log = logging.getLogger("signalsloop.local.relay")
CHANNEL = "signalsloop_doorbell"


@dataclass
class RelayStats:
    posted: int = 0
    failed: int = 0
    swept: int = 0
    reconnects: int = 0
    by_status: dict[int, int] = field(default_factory=dict)


@dataclass(frozen=True)
class Ring:
    delivery_id: int
    event_id: str
    agent: str


class Relay:
    def __init__(self, database_url: str, secret: str, *, sweep_interval: float = 1.0,
                 max_concurrency: int | None = None, batch: int = 200) -> None:
        self.url = database_url
        self.secret = secret
        self.sweep_interval = sweep_interval
        self.max_concurrency = max_concurrency
        self.batch = batch
        self.stats = RelayStats()
        self.stopping = threading.Event()
        self._pools: dict[str, ThreadPoolExecutor] = {}
        self._records: dict[str, dict[str, Any]] = {}
        self._queued: set[int] = set()  # deliveries waiting in a pool, not yet POSTed
        self._lock = threading.Lock()
        self._agents: dict[str, dict[str, Any]] = {}
        self._agents_read_at = 0.0
        self._errors_conn: psycopg.Connection[Any] | None = None
        self._errors_lock = threading.Lock()
        self._http = httpx.Client(headers={"Authorization": f"Bearer {secret}"}, limits=httpx.Limits(
            max_connections=256, max_keepalive_connections=64))

    # -- lifecycle ---------------------------------------------------------

    def run(self) -> RelayStats:
        """Serve until :meth:`stop`; reconnect with backoff when the database goes away."""
        delay = 0.2
        while not self.stopping.is_set():
            try:
                self._serve()
                delay = 0.2
            except psycopg.Error as exc:  # a lost connection, or anything else: never let the sweep die
                self.stats.reconnects += 1
                log.warning("relay lost the database (%s); reconnecting in %.1fs", str(exc).strip(), delay)
                self.stopping.wait(delay)
                delay = min(delay * 2, 5.0)
        self._shutdown()
        return self.stats

    def stop(self, *_: Any) -> None:
        self.stopping.set()

    def _shutdown(self) -> None:
        # Queued rings are only doorbells: drop them, the ledger rings again.
        for pool in self._pools.values():
            pool.shutdown(wait=True, cancel_futures=True)
        self._http.close()
        if self._errors_conn is not None:
            self._errors_conn.close()

    # -- the loop ------------------------------------------------------------

    def _serve(self) -> None:
        with psycopg.connect(self.url, autocommit=True, row_factory=dict_row) as listen, \
                psycopg.connect(self.url, autocommit=True, row_factory=dict_row) as query:
            listen.execute(f"listen {CHANNEL}")
            log.info("relay listening on %s", CHANNEL)
            self._sweep(query)  # whatever is due now; rings lost while down come due within redelivery_after
            next_sweep = time.monotonic() + self.sweep_interval
            while not self.stopping.is_set():
                timeout = max(0.0, min(0.25, next_sweep - time.monotonic()))
                # Each ring is dispatched the moment it arrives (batching would add latency).
                # Never break out of this loop: psycopg drops the rest of a received batch.
                for note in listen.notifies(timeout=timeout):
                    ring = _ring(note.payload)
                    if ring is not None:
                        self._dispatch(query, ring)
                if time.monotonic() >= next_sweep:
                    self._sweep(query)
                    next_sweep = time.monotonic() + self.sweep_interval

    def _sweep(self, query: psycopg.Connection[dict[str, Any]]) -> None:
        row = query.execute("select public.run_periodic(%s) as r", (self.batch * 5,)).fetchone()
        self.stats.swept += int(row["r"].get("rung", 0)) if row else 0

    def _dispatch(self, query: psycopg.Connection[dict[str, Any]], ring: Ring) -> None:
        """POST one ring on its agent's pool (bounded per agent)."""
        agent = self._agent(query, ring.agent)
        record = self._record(query, ring.event_id)
        if agent is None or record is None or not agent["endpoint_url"]:
            return  # paused, unregistered or deleted: the ledger keeps the delivery
        with self._lock:
            if ring.delivery_id in self._queued:
                return  # already waiting for a free worker; a second POST would only be a duplicate
            self._queued.add(ring.delivery_id)
        self._pool(agent).submit(self._post, agent, record, ring.delivery_id)

    def _record(self, query: psycopg.Connection[dict[str, Any]], event_id: str) -> dict[str, Any] | None:
        """The event row as JSON, exactly what pg_net sends; cached, as one event rings several agents."""
        if event_id not in self._records:
            row = query.execute("select to_jsonb(e) as record from public.events e where id = %s::uuid",
                                (event_id,)).fetchone()
            if row is None:
                return None
            if len(self._records) > 2000:
                self._records.clear()
            self._records[event_id] = row["record"]
        return self._records[event_id]

    def _agent(self, query: psycopg.Connection[dict[str, Any]], name: str) -> dict[str, Any] | None:
        """Registry rows, re-read every few seconds so endpoint or mode changes apply."""
        now = time.monotonic()
        if now - self._agents_read_at > 2.0:
            self._agents = {r["name"]: r for r in query.execute(
                "select name, endpoint_url, timeout_ms, max_concurrency from public.agents where mode <> 'off'")}
            self._agents_read_at = now
        return self._agents.get(name)

    def _pool(self, agent: dict[str, Any]) -> ThreadPoolExecutor:
        name = agent["name"]
        if name not in self._pools:
            size = self.max_concurrency or int(agent["max_concurrency"])
            self._pools[name] = ThreadPoolExecutor(max_workers=size, thread_name_prefix=f"relay-{name}")
        return self._pools[name]

    def _post(self, agent: dict[str, Any], record: dict[str, Any], delivery_id: int) -> None:
        with self._lock:
            self._queued.discard(delivery_id)
        body = webhook_body(record)
        try:
            reply = self._http.post(agent["endpoint_url"], content=body, timeout=agent["timeout_ms"] / 1000,
                                    headers={"Content-Type": "application/json"})
            self.stats.posted += 1
            self.stats.by_status[reply.status_code] = self.stats.by_status.get(reply.status_code, 0) + 1
            if reply.status_code >= 300 and '"delivery_id"' not in reply.text:
                self._ring_error(delivery_id, f"HTTP {reply.status_code} {reply.text[:300]}")
        except httpx.HTTPError as exc:
            self.stats.failed += 1
            log.info("doorbell to %s failed (%s); the sweep will ring again", agent["name"], exc)
            timed_out = isinstance(exc, httpx.TimeoutException)
            self._ring_error(delivery_id, "timed out" if timed_out else f"unreachable: {exc}")

    def _ring_error(self, delivery_id: int, error: str) -> None:
        """A ring that never reached a run (refused, unreachable, unanswered),
        recorded on its delivery as pg_net's answers are (collect_ring_errors):
        visible, and dead after max_ring_errors."""
        try:
            with self._errors_lock:
                if self._errors_conn is None or self._errors_conn.closed:
                    self._errors_conn = psycopg.connect(self.url, autocommit=True)
                self._errors_conn.execute("select public.record_ring_error(%s, %s)", (delivery_id, error))
        except psycopg.Error as exc:
            log.warning("could not record a ring error for delivery %s: %s", delivery_id, exc)
            self._errors_conn = None


def webhook_body(record: dict[str, Any]) -> bytes:
    """The webhook body as pg_net sends it: UTF-8, not ASCII escapes (an emoji is 4
    bytes, not 12), and compact, so a body stays within the functions' size limit."""
    return json.dumps(WebhookPayload.for_event(record), default=str, ensure_ascii=False,
                      separators=(",", ":")).encode("utf-8")


def _ring(payload: str) -> Ring | None:
    try:
        data = json.loads(payload)
        return Ring(int(data["delivery_id"]), str(data["event_id"]), str(data["agent"]))
    except (ValueError, KeyError, TypeError):
        log.warning("ignoring malformed doorbell payload %r", payload[:200])
        return None


def main(args: Any) -> int:
    """``signalsloop relay``: run until SIGINT/SIGTERM."""
    from shared.errors import ConfigurationError
    from shared.settings import load_settings
    from signalsloop.db import check_url

    if not 0.05 <= args.sweep_interval <= 3600:  # NaN fails this too
        raise ConfigurationError("--sweep-interval must be between 0.05 and 3600 seconds")
    if args.concurrency is not None and not 1 <= args.concurrency <= 1000:
        raise ConfigurationError("--concurrency must be between 1 and 1000 (or left out: each agent's own)")
    settings = load_settings()
    if not settings.database_url:
        raise ConfigurationError("the relay needs DATABASE_URL (a direct Postgres connection for LISTEN)")
    if settings.signalsloop_secret is None:
        raise ConfigurationError("the relay needs SIGNALSLOOP_SECRET to authenticate to the functions")
    check_url(settings.database_url)
    relay = Relay(settings.database_url, settings.signalsloop_secret.get_secret_value(),
                  sweep_interval=args.sweep_interval, max_concurrency=args.concurrency)
    signal.signal(signal.SIGINT, relay.stop)
    signal.signal(signal.SIGTERM, relay.stop)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    stats = relay.run()
    log.info("relay stopped: %s", stats)
    return 0
