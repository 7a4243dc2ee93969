"""``signalsloop bench --history N``: the hot path on top of a long history.

Loads ``N`` historical events (spread over the last ``--history-days``, all
inside the default retention, so pruning leaves them alone while measuring)
with their deliveries succeeded and one attempt each, straight in SQL with
``generate_series``. It runs the normal load on the empty database and
again on top of the history, and compares claim, sweep and fan-out latency
in the history and in an empty database (``history_probes``). Before the
history it shows the ledger's size levelling off under the default retention
over 16 simulated months (``level_off``), and it reports the steady-state
size per feedback item with the default retention.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from typing import Any
from uuid import UUID

import psycopg
from psycopg.conninfo import make_conninfo

from signalsloop.benchmarks import history_probes
from signalsloop.local.stack import Stack, throwaway_stack
from signalsloop.operations import usage

# A feedback item's chain, in proportion: what the plan's agents publish.
HISTORY_TYPES = ["feedback.created", "feedback.created", "sentiment.analyzed", "sentiment.analyzed",
                 "priority.calculated", "priority.calculated", "feedback.voted", "duplicate.found",
                 "notification.sent", "theme.updated"]

LOAD_EVENTS_SQL = """
with ev as (
  insert into public.events (id, type, aggregate_type, aggregate_id, payload, metadata, created_at)
  select gen_random_uuid(), t.type, 'feedback', md5('agg' || (g / 10))::uuid,
         jsonb_build_object('feedback_id', md5('agg' || (g / 10))::uuid, 'title', 'Historical feedback ' || g,
                            'body', 'Imported for the history benchmark, item ' || (g / 10), 'vote_count', g %% 7),
         jsonb_build_object('project_id', %(project)s::text, 'correlation_id', md5('chain' || (g / 10))::uuid,
                            'depth', g %% 10, 'producer', 'history', 'timestamp', ts),
         ts
    from generate_series(%(start)s::bigint, %(stop)s::bigint) g
    cross join lateral (select (%(types)s::text[])[1 + g %% 10] as type) t
    cross join lateral (select now() - interval '1 hour'
                               - %(span)s::interval * ((%(total)s - g)::float8 / %(total)s) as ts) x
  returning id, type, created_at)
insert into public.event_deliveries
  (event_id, agent, event_type, project_id, status, attempts, max_attempts, next_attempt_at, ring_after,
   event_created_at, first_started_at, started_at, finished_at, created_at, updated_at)
select ev.id, a.name, ev.type, %(project)s, 'succeeded', 1, a.max_attempts, ev.created_at, ev.created_at,
       ev.created_at, ev.created_at + interval '40 ms', ev.created_at + interval '40 ms',
       ev.created_at + interval '90 ms', ev.created_at, ev.created_at + interval '90 ms'
  from ev join public.agents a on a.enabled and {match}
"""

LOAD_ATTEMPTS_SQL = """
insert into public.delivery_attempts (delivery_id, attempt, claim_token, worker, started_at, finished_at, outcome)
select d.id, 1, gen_random_uuid(), 'history', d.started_at, d.finished_at, 'succeeded'
  from public.event_deliveries d where d.id > %(after)s
"""


def load_history(conn: psycopg.Connection[Any], events: int, *, days: float = 25, chunk: int = 100_000,
                 progress: Callable[[int], None] | None = None) -> UUID:
    """Insert ``events`` historical events (with their succeeded deliveries and
    attempts) into a new project; return the project's id.

    Triggers are off while loading (``session_replication_role = replica``):
    the rows are complete already and must not ring any doorbell.
    """
    project = history_probes.project(conn, "History")
    # The fan-out's own matching (wildcards) where the schema has it.
    row = conn.execute("select to_regprocedure('public.subscribes(text[],text,text,text)') is not null").fetchone()
    match = ("public.subscribes(a.event_types, ev.type, a.name, 'history')" if row and row[0]
             else "ev.type = any (a.event_types)")
    load_sql = LOAD_EVENTS_SQL.replace("{match}", match)
    span = f"{days} days"
    done = 0
    while done < events:
        stop = min(events, done + chunk)
        with conn.transaction():
            conn.execute("set local session_replication_role = replica")
            after = conn.execute("select coalesce(max(id), 0) from public.event_deliveries").fetchone()[0]  # type: ignore[index]
            conn.execute(load_sql.encode(), {"project": project, "start": done, "stop": stop - 1,
                                             "types": HISTORY_TYPES, "span": span, "total": events})
            conn.execute(LOAD_ATTEMPTS_SQL, {"after": after})
        done = stop
        if progress:
            progress(done)
    conn.execute("analyze public.events, public.event_deliveries, public.delivery_attempts")
    return project


def fresh_database(url: str, name: str) -> str:
    """A new, migrated database on the same server as ``url``."""
    from signalsloop.db import migrate

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"drop database if exists {name} with (force)")
        conn.execute(f"create database {name}")
    other = make_conninfo(url, dbname=name)
    migrate(other)
    return other


def table_bytes(conn: psycopg.Connection[Any]) -> dict[str, int]:
    return {r[0]: int(r[1]) for r in conn.execute(
        "select relname, pg_total_relation_size(oid) from pg_class "
        "where relnamespace = 'public'::regnamespace and relkind in ('r', 'p')")}


def per_item_growth(before: dict[str, int], after: dict[str, int], items: int) -> dict[str, float]:
    """Bytes each table grew per feedback item between two size snapshots."""
    grown = {t: (after[t] - before.get(t, 0)) / items for t in after}
    return {t: round(b, 1) for t, b in sorted(grown.items(), key=lambda kv: -kv[1]) if b > 0}


# --- levelling off -------------------------------------------------------------------


# A month passes for everything that has happened: the timestamps pruning
# reads (and the ones beside them) move back, open deliveries keep theirs.
AGE_LEDGER = (
    "update public.events set created_at = created_at - %(age)s::interval",
    "update public.event_deliveries"
    "   set created_at = created_at - %(age)s::interval, updated_at = updated_at - %(age)s::interval,"
    "       event_created_at = event_created_at - %(age)s::interval,"
    "       first_started_at = first_started_at - %(age)s::interval,"
    "       started_at = started_at - %(age)s::interval, finished_at = finished_at - %(age)s::interval,"
    "       rung_at = rung_at - %(age)s::interval"
    " where status in ('succeeded', 'dead', 'blocked')",
    "update public.delivery_attempts"
    "   set started_at = started_at - %(age)s::interval, finished_at = finished_at - %(age)s::interval"
    " where finished_at is not null",
    "update public.notifications"
    "   set created_at = created_at - %(age)s::interval, sent_at = sent_at - %(age)s::interval,"
    "       digested_at = digested_at - %(age)s::interval",
)


def age_ledger(conn: psycopg.Connection[Any], age: str) -> None:
    """Make everything that has happened ``age`` older, in one transaction."""
    with conn.transaction():
        for statement in AGE_LEDGER:
            conn.execute(statement, {"age": age})


def level_off(stack: Stack, rounds: int, per_round: int, rate: float, age: str = "30 days") -> list[dict[str, Any]]:
    """Steady load under the default retention, a month at a time: each round
    posts ``per_round`` items, prunes with the default retention, vacuums (as
    autovacuum would) and measures, then makes everything that happened
    ``age`` older (its timestamps moved back). The ledger stops growing once
    the oldest events pass ``retain_events`` (365 days: from the 13th month
    on). Moving the timestamps rewrites every row, so the tables hold about
    twice their live rows' space: the figures show the shape, the bytes per
    item give the size."""
    from signalsloop.benchmarks import bench

    assert stack.database_url
    url = stack.database_url
    sizes = []
    for i in range(rounds):
        bench.run(stack, per_round, rate=rate)
        with psycopg.connect(url, autocommit=True) as conn:
            while prune_all(conn):
                pass
            conn.execute("vacuum public.events, public.event_deliveries, public.delivery_attempts, "
                         "public.notifications")
            db_bytes = conn.execute("select pg_database_size(current_database())").fetchone()
            kept = conn.execute("select (select count(*) from public.events), "
                                "(select count(*) from public.event_deliveries)").fetchone()
            sizes.append({"month": i + 1, "posts_so_far": per_round * (i + 1),
                          "events_kept": kept[0] if kept else None, "deliveries_kept": kept[1] if kept else None,
                          "ledger_bytes": usage.ledger_bytes(conn),
                          "database_bytes": int(db_bytes[0]) if db_bytes else None})
            age_ledger(conn, age)
    with psycopg.connect(url, autocommit=True) as conn:
        # The rewrites are the simulation's, not the load's: what is measured
        # next (the history's probes) starts from compact tables and indexes.
        conn.execute("vacuum full analyze public.events, public.event_deliveries, public.delivery_attempts, "
                     "public.notifications")
    return sizes


def prune_all(conn: psycopg.Connection[Any]) -> bool:
    """One pruning run; true while it still found work."""
    row = conn.execute("select public.prune_retention(5000)").fetchone()
    removed = row[0] if row else {}
    return any(isinstance(v, int) and v > 0 for k, v in removed.items() if k != "duration_ms")


# --- the benchmark ---------------------------------------------------------------------


def main(args: Any) -> int:
    from signalsloop.benchmarks import bench

    out: dict[str, Any] = {"history_events": args.history}
    with throwaway_stack("signalsloop-bench-history-", sweep_interval=0.5) as stack:
        assert stack.database_url
        url = stack.database_url
        bench.run(stack, 3, writers=1)  # warm-up, as in make bench
        with psycopg.connect(url, autocommit=True) as conn:
            before = table_bytes(conn)
            out["empty_load"] = _load_summary(bench.run(stack, args.events, rate=args.rate))
            out["per_item_bytes"] = per_item_growth(before, table_bytes(conn), args.events)
            out["db_usage_after_empty_load"] = _usage_summary(usage.report(conn))
        out["level_off"] = level_off(stack, rounds=16, per_round=max(50, args.events // 4), rate=args.rate)
        started = time.perf_counter()
        with psycopg.connect(url, autocommit=True) as conn:
            load_history(conn, args.history, progress=lambda n: print(f"history: {n:,} events", file=sys.stderr,
                                                                      flush=True))
            # What autovacuum and checkpoints have long done to an old history in
            # production, so the load is measured without the bulk load's aftermath.
            conn.execute("vacuum (analyze) public.events, public.event_deliveries, public.delivery_attempts")
            conn.execute("checkpoint")
            out["history_load_s"] = round(time.perf_counter() - started, 1)
            out["history_ledger_mb"] = round(usage.ledger_bytes(conn) / 1024 / 1024, 1)
        out["history_load"] = _load_summary(bench.run(stack, args.events, rate=args.rate))
        empty_url = fresh_database(url, "signalsloop_probe_empty")
        # The probes compare the SQL path alone, under the same conditions on
        # both databases: the relay's sweep would run (and lock the probes'
        # due deliveries) on the history's only.
        stack.stop_relay()
        probes = history_probes.probe({"empty": empty_url, "history": url})
    out["probe_ms"] = probes["ms"]
    ratios = history_probes.compare(probes)
    out["history_vs_empty_p50"] = {kind: r["p50"] for kind, r in ratios.items()}
    out["history_vs_empty"] = ratios
    out["probe_conditions"] = {k: probes[k] for k in ("rounds", "warmup", "during", "load_average_max")}
    out["steady_state"] = usage.steady_state(out["per_item_bytes"], items_per_day=1000)
    print(json.dumps(out))
    return 0


def _usage_summary(rep: dict[str, Any]) -> dict[str, Any]:
    """What ``signalsloop db usage`` projects, without its per-table rows."""
    return {k: v for k, v in rep.items() if k != "tables"}


def _load_summary(result: dict[str, Any]) -> dict[str, Any]:
    return {k: result[k] for k in ("reaction_ms", "processing_ms", "feedback_per_s", "lost", "duplicated")}
