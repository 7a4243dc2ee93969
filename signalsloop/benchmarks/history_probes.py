"""The hot-path probes of ``bench --history``: fan-out, claim and sweep in a
database holding the history and in an empty one on the same server.

Sub-millisecond probes on a shared 2-vCPU machine move by more between two
runs than the 20% they are judged by, so the comparison is built to show
its own spread:

* both databases are vacuumed, analyzed and checkpointed first (neither
  starts with autovacuum work due or a checkpoint pending), and the first
  rounds (warm-up: plan caches, plpgsql, buffers) are not counted;
* each round probes both databases back to back, in alternating order, so a
  burst of load elsewhere falls on both;
* each ratio (history / empty, of the p50 and of the p95) comes with a 95%
  interval from a block bootstrap over the rounds (blocks of consecutive
  rounds, since a burst of load lasts longer than one round): the target
  holds when the interval's upper end is at most 1.2;
* what could make the history slower is reported beside it: the buffers
  each database read (not found in shared_buffers) per round, autovacuum
  runs and checkpoints during the probes, and the machine's load average
  (the higher 1-minute average of the probes' start and end).
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import statistics
import time
from typing import Any
from uuid import UUID, uuid4

import psycopg
from psycopg.types.json import Jsonb

PROBE_AGENTS = ("probe_1", "probe_2", "probe_3", "probe_4")  # a feedback.created fans out to about four
KINDS = ("fan_out", "claim", "sweep")
LEDGER = "public.events, public.event_deliveries, public.delivery_attempts"
BLOCK = 20  # rounds per bootstrap block
RESAMPLES = 1000
SERVER_TIMED = {"sweep": "sweep_deliveries", "claim": "claim_delivery"}  # a probe's time inside the server


def project(conn: psycopg.Connection[Any], name: str) -> UUID:
    row = conn.execute("insert into public.projects (name, slug, settings) values (%s, %s, %s) returning id",
                       (name, f"{name.lower()}-{uuid4().hex[:8]}", Jsonb({"theme_threshold": 10_000}))).fetchone()
    assert row is not None
    return UUID(str(row[0]))


def probe_once(conn: psycopg.Connection[Any], meta: str) -> tuple[float, float, float]:
    """Fan-out (an event insert fanning out to the four probe agents and to
    any agent subscribed to every type), a claim and a sweep, in
    milliseconds. The probe agents have no endpoint (nothing is posted) and
    every delivery of the probe's event is claimed and completed, the
    wildcard agents' too, so rounds leave nothing due for the sweep: it used
    to find one more of ``notify``'s every round, and rang them."""
    eid = uuid4()
    t0 = time.perf_counter()
    conn.execute("insert into public.events (id, type, aggregate_type, aggregate_id, payload, metadata) "
                 "values (%s, 'probe.created', 'probe', %s, '{}', %s)", (eid, uuid4(), meta))
    t1 = time.perf_counter()
    claims = [conn.execute("select delivery_id, claim_token from public.claim_delivery(%s, %s, 'probe')",
                           (eid, PROBE_AGENTS[0])).fetchone()]
    t2 = time.perf_counter()
    claims += conn.execute("select c.delivery_id, c.claim_token from public.event_deliveries d, "
                           "public.claim_delivery(d.event_id, d.agent, 'probe') c "
                           "where d.event_id = %s and d.agent <> %s", (eid, PROBE_AGENTS[0])).fetchall()
    for claim in claims:
        conn.execute("select public.complete_delivery(%s, %s)", claim)
    t3 = time.perf_counter()
    conn.execute("select public.sweep_deliveries(500)").fetchall()
    t4 = time.perf_counter()
    return (t1 - t0) * 1000, (t2 - t1) * 1000, (t4 - t3) * 1000


def prepare(conns: dict[str, psycopg.Connection[Any]]) -> None:
    """Vacuum and analyze each database's ledger, then checkpoint the server:
    the probes start with no autovacuum due and no checkpoint pending."""
    for conn in conns.values():
        conn.execute(f"vacuum (analyze) {LEDGER}")
    next(iter(conns.values())).execute("checkpoint")


def settle(conns: dict[str, psycopg.Connection[Any]]) -> None:
    """After the warm-up, analyze each ledger again, as autovacuum would have
    done long ago in a database in use. The empty database was analyzed with
    no rows: planned for empty tables, its probes scanned the rows the
    warm-up had added (1,860 buffer hits a round against the history's
    1,100, and a history "faster" than the empty database)."""
    for conn in conns.values():
        conn.execute(f"analyze {LEDGER}")


def activity(conn: psycopg.Connection[Any]) -> dict[str, float]:
    """This database's buffer reads and hits, autovacuum and autoanalyze runs
    on its tables, and the server's checkpoints so far."""
    conn.execute("select pg_stat_force_next_flush()")  # this session's counts, not a second late
    conn.execute("select 1")
    row = conn.execute(
        "select d.blks_read, d.blks_hit, "
        "(select coalesce(sum(autovacuum_count + autoanalyze_count), 0) from pg_stat_user_tables) "
        "from pg_stat_database d where d.datname = current_database()").fetchone()
    assert row is not None
    newer = conn.execute("select to_regclass('pg_catalog.pg_stat_checkpointer') is not null").fetchone()
    checkpoints = conn.execute(
        "select num_timed + num_requested from pg_stat_checkpointer" if newer and newer[0]
        else "select checkpoints_timed + checkpoints_req from pg_stat_bgwriter").fetchone()
    assert checkpoints is not None
    timed = dict(conn.execute("select funcname, total_time from pg_stat_user_functions "
                              "where schemaname = 'public' and funcname = any(%s)",
                              (list(SERVER_TIMED.values()),)).fetchall())
    return {"blks_read": int(row[0]), "blks_hit": int(row[1]), "autovacuums": int(row[2]),
            "checkpoints": int(checkpoints[0])} | {f"{kind}_server_ms": float(timed.get(name, 0.0))
                                                   for kind, name in SERVER_TIMED.items()}


def time_functions(conn: psycopg.Connection[Any]) -> None:
    """Count the time spent inside PL functions, where allowed (a superuser
    setting), so the probes' server-side share can be told from the rest."""
    with contextlib.suppress(psycopg.errors.InsufficientPrivilege):
        conn.execute("set track_functions = 'pl'")


def probe(urls: dict[str, str], rounds: int = 400, warmup: int = 50) -> dict[str, Any]:
    """``rounds`` probe rounds in each database (after ``warmup`` uncounted
    ones), taking turns; their percentiles, the ratios with their intervals,
    and what each database did meanwhile."""
    if rounds < 1:
        raise ValueError("probe needs at least one round")
    conns = {name: psycopg.connect(url, autocommit=True) for name, url in urls.items()}
    for c in conns.values():
        time_functions(c)
    try:
        metas = {}
        for name, c in conns.items():
            c.execute("insert into public.agents (name, event_types, endpoint_url, description) "
                      "select unnest(%s::text[]), array['probe.created'], null, 'benchmark probe' "
                      "on conflict (name) do nothing", (list(PROBE_AGENTS),))
            metas[name] = json.dumps({"project_id": str(project(c, "Probe"))})
        prepare(conns)
        samples: dict[str, list[tuple[float, float, float]]] = {name: [] for name in urls}
        order = list(conns)
        for i in range(warmup + rounds):
            if i == warmup:
                settle(conns)
                before = {name: activity(c) for name, c in conns.items()}
                load = os.getloadavg()[0]
            for name in order:
                sample = probe_once(conns[name], metas[name])
                if i >= warmup:
                    samples[name].append(sample)
            order.reverse()  # whoever goes second after the other waits on a busier machine: take turns
        after = {name: activity(c) for name, c in conns.items()}
        load = max(load, os.getloadavg()[0])
    finally:
        for c in conns.values():
            c.execute("delete from public.agents where name = any(%s)", (list(PROBE_AGENTS),))
            c.close()
    return {"ms": {name: {kind: summary([s[k] for s in values]) for k, kind in enumerate(KINDS)}
                   for name, values in samples.items()},
            "rounds": rounds, "warmup": warmup,
            "during": {name: during(before[name], after[name], rounds) for name in urls},
            "load_average_max": round(load, 2),  # the higher 1-minute load average of the start and the end
            "samples": samples}


def during(before: dict[str, float], after: dict[str, float], rounds: int) -> dict[str, float]:
    """What a database did during the probes; the server-side times per round
    (0 where functions were not timed). A claim round times every claim of
    the probe's event (five), not only the first one the claim probe times."""
    delta = {key: after[key] - before[key] for key in after}
    out: dict[str, float] = {key: int(value) for key, value in delta.items() if not key.endswith("_server_ms")}
    out["blks_read_per_round"] = round(delta["blks_read"] / rounds, 1)
    for kind in SERVER_TIMED:
        out[f"{kind}_server_ms_per_round"] = round(delta[f"{kind}_server_ms"] / rounds, 3)
    return out


def percentile(values: list[float], q: float) -> float:
    """The median for 0.5, else the nearest rank below (as the benchmark always reported)."""
    if q == 0.5:
        return statistics.median(values)
    return sorted(values)[max(0, int(len(values) * q) - 1)]


def summary(values: list[float]) -> dict[str, float]:
    return {"p50": round(percentile(values, 0.5), 3), "p95": round(percentile(values, 0.95), 3)}


def ratios(empty: list[float], history: list[float], *, seed: int = 0) -> dict[str, Any]:
    """history / empty of the p50 and the p95, each with a 95% interval from a
    paired block bootstrap (the same resampled rounds for both databases), and
    the median of the per-round ratios."""
    assert len(empty) == len(history) and empty
    n = len(empty)
    block = min(BLOCK, n)
    rng = random.Random(seed)
    out: dict[str, Any] = {}
    for name, q in (("p50", 0.5), ("p95", 0.95)):
        point = percentile(history, q) / percentile(empty, q)
        boot = []
        for _ in range(RESAMPLES):
            idx = [s + j for s in (rng.randrange(n - block + 1) for _ in range(-(-n // block)))
                   for j in range(block)][:n]
            boot.append(percentile([history[i] for i in idx], q) / percentile([empty[i] for i in idx], q))
        boot.sort()
        out[name] = round(point, 2)
        out[f"{name}_ci95"] = [round(boot[int(RESAMPLES * 0.025)], 2), round(boot[int(RESAMPLES * 0.975) - 1], 2)]
    out["per_round_p50"] = round(statistics.median(h / e for h, e in zip(history, empty, strict=True)), 2)
    return out


def compare(result: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Each probe's ratios (history / empty; 1.0 = the same) from ``probe``'s samples."""
    empty, history = result["samples"]["empty"], result["samples"]["history"]
    return {kind: ratios([s[k] for s in empty], [s[k] for s in history]) for k, kind in enumerate(KINDS)}
