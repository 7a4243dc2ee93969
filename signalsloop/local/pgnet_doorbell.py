"""The production doorbell on the local stack: pg_net rings the functions and
a timer calls ``public.run_periodic()`` every 5 s, as the pg_cron job does on
Supabase (where that job is scheduled in the database, it is left to do it);
no relay. Where the database has the real pg_net extension it is
used as it is; elsewhere the stand-in (:mod:`signalsloop.local.pgnet_standin`)
is installed for the run and removed afterwards.

The functions must hold the secret the database sends: Vault's
``signalsloop_secret`` where Vault exists, else a stand-in Vault view made
for the run with the stack's secret.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import psycopg
from psycopg.rows import tuple_row

from shared.errors import ConfigurationError
from signalsloop.local import pgnet_standin

log = logging.getLogger("signalsloop.local.pgnet_doorbell")
CRON_INTERVAL_S = 5.0  # the migrations schedule the sweep every 5 seconds


class PgNetDoorbell:
    def __init__(self, database_url: str, secret: str, *, cron_interval: float = CRON_INTERVAL_S) -> None:
        self.url = database_url
        self.secret = secret
        self.cron_interval = cron_interval
        self.name = "pg_net"
        self.sweep = "timer"  # or "pg_cron", where its job is scheduled in this database
        self.standin: pgnet_standin.PgNetStandin | None = None
        self._installed_net = False
        self._installed_vault = False
        self._stop = threading.Event()
        self._cron: threading.Thread | None = None

    def prepare(self) -> str:
        """Check or install pg_net and the Vault secret; return the secret the functions must accept."""
        with psycopg.connect(self.url, autocommit=True) as conn:
            cur = conn.cursor(row_factory=tuple_row)
            mode = _one(cur, "select doorbell from public.backbone_config")
            if mode not in ("auto", "pg_net", "both"):
                raise ConfigurationError(f"backbone_config.doorbell is {mode!r}: pg_net would never ring "
                                         "(set it to 'auto' or 'pg_net')")
            version = pgnet_standin.real_pg_net_version(conn)
            if version is not None:
                self._check_real(cur)
                log.info("using the real pg_net %s", version)
            else:
                if _one(cur, "select to_regnamespace('net') is not null"):
                    raise ConfigurationError("schema net exists but pg_net is not installed: "
                                             "not replacing it with the stand-in")
                pgnet_standin.install(conn)
                self._installed_net, self.name = True, "pg_net-standin"
            if _one(cur, "select to_regclass('cron.job') is not null") and _one(
                    cur, "select count(*) from cron.job where jobname = 'signalsloop-sweep' and active"):
                self.sweep = "pg_cron"
            secret = _one(cur, "select public.agent_secret()")
            if secret is None:
                if _one(cur, "select to_regnamespace('vault') is not null"):
                    raise ConfigurationError("Vault has no secret named 'signalsloop_secret': "
                                             "select vault.create_secret('<secret>', 'signalsloop_secret')")
                pgnet_standin.install_vault_secret(conn, self.secret)
                self._installed_vault, secret = True, self.secret
        return str(secret)

    def _check_real(self, cur: psycopg.Cursor[Any]) -> None:
        worker_db = _one(cur, "select coalesce(current_setting('pg_net.database_name', true), 'postgres')")
        here = _one(cur, "select current_database()")
        if worker_db != here:
            raise ConfigurationError(f"pg_net's worker serves database {worker_db!r} (pg_net.database_name), "
                                     f"not {here!r}: point DATABASE_URL at {worker_db!r}")

    def start(self) -> None:
        if self._installed_net:
            self.standin = pgnet_standin.PgNetStandin(self.url).start()
        self._stop.clear()
        if self.sweep == "timer":
            self._cron = threading.Thread(target=self._cron_loop, name="pg_cron-standin", daemon=True)
            self._cron.start()

    def stop(self) -> None:
        self._stop.set()
        if self._cron is not None:
            self._cron.join(15)
        if self.standin is not None:
            self.standin.stop()
        self._cron, self.standin = None, None
        self._uninstall()

    def _uninstall(self) -> None:
        if not (self._installed_net or self._installed_vault):
            return
        try:
            with psycopg.connect(self.url, autocommit=True) as conn:
                if self._installed_net:
                    pgnet_standin.uninstall(conn)
                if self._installed_vault:
                    conn.execute("drop schema if exists vault cascade")
        except psycopg.Error as exc:  # the database may already be gone (a throwaway one)
            log.info("could not remove the pg_net stand-in: %s", exc)
        self._installed_net = self._installed_vault = False

    def _cron_loop(self) -> None:
        """pg_cron's job: ``select public.run_periodic()`` on its schedule; a failed run is only logged."""
        while not self._stop.wait(self.cron_interval):
            try:
                with psycopg.connect(self.url, autocommit=True) as conn:
                    conn.execute("select public.run_periodic()")
            except psycopg.Error as exc:
                log.warning("run_periodic() failed: %s", exc)


# pg_net writes one transaction per batch, so a batch's responses share ``created``:
# batches, their sizes and the time from one batch's start to the next's. A
# response's id is its request's id: a phase's requests are an id range.
RINGS_SQL = """
with r as (select created, status_code, timed_out from net._http_response
            where id > %(after)s and id <= %(upto)s),
     b as (select created, count(*) as n from r group by created),
     g as (select extract(epoch from created - lag(created) over (order by created)) as gap from b)
select (select count(*) from b) as batches, (select count(*) from r) as requests,
       (select max(n) from b) as largest_batch,
       (select percentile_cont(array[0.5, 0.95]) within group (order by gap) from g where gap is not null) as gaps,
       (select jsonb_object_agg(k, n) from (
          select coalesce(status_code::text, case when timed_out then 'timeout' else 'error' end) as k,
                 count(*) as n from r group by 1) x) as outcomes
"""


LAST_REQUEST_SQL = "select coalesce(max(id), 0) from (select max(id) as id from net.http_request_queue " \
                   "union all select max(id) from net._http_response) x"


def last_request(conn: psycopg.Connection[Any]) -> int:
    """The newest request id pg_net has (queued or answered): a phase starts after it."""
    return int(_one(conn.cursor(row_factory=tuple_row), LAST_REQUEST_SQL) or 0)


def wait_answered(conn: psycopg.Connection[Any], after: int, timeout: float = 30.0) -> int:
    """Wait until every request after ``after`` is answered and its batch committed
    (pg_net writes a batch's responses in one transaction, at the batch's end);
    the newest request id then."""
    cur = conn.cursor(row_factory=tuple_row)
    deadline = time.monotonic() + timeout
    while True:
        upto = last_request(conn)
        queued = _one(cur, "select count(*) from net.http_request_queue")
        answered = cur.execute("select count(*) from net._http_response where id > %s and id <= %s",
                               (after, upto)).fetchone()
        if (not queued and answered is not None and answered[0] >= upto - after) or time.monotonic() > deadline:
            return upto
        time.sleep(0.2)


def rings(conn: psycopg.Connection[Any], after: int) -> dict[str, Any]:
    """What pg_net did with the requests after id ``after``, read from
    ``net._http_response`` (real or stand-in), once all of them are answered."""
    upto = wait_answered(conn, after)
    row = conn.cursor(row_factory=tuple_row).execute(RINGS_SQL, {"after": after, "upto": upto}).fetchone()
    assert row is not None
    batches, requests, largest, gaps, outcomes = row
    p50, p95 = (round(float(g), 2) for g in gaps) if gaps else (None, None)
    return {"batches": int(batches), "requests": int(requests), "largest_batch": largest,
            "batch_to_batch_s": {"p50": p50, "p95": p95}, "outcomes": outcomes or {}}


def _one(cur: psycopg.Cursor[Any], query: str) -> Any:
    row = cur.execute(query).fetchone()  # type: ignore[arg-type]
    return None if row is None else row[0]
