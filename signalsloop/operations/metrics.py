"""What the ledger says about a run: counts and latency percentiles, read
from the database (the source of truth), shared by the demo and the benchmark.

- reaction: commit of the event -> the agent handler claiming it (first attempt);
- processing: claim -> completion of a succeeded attempt.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import psycopg
from psycopg.rows import tuple_row

PERCENTILES_SQL = """
select percentile_cont(0.50) within group (order by v) as p50,
       percentile_cont(0.95) within group (order by v) as p95,
       percentile_cont(0.99) within group (order by v) as p99,
       count(v) as n
  from ({inner}) x
"""

REACTION_SQL = """
select extract(epoch from d.first_started_at - d.event_created_at) * 1000 as v
  from public.event_deliveries d
 where d.first_started_at is not null and d.event_created_at >= %(since)s
"""

PROCESSING_SQL = """
select extract(epoch from a.finished_at - a.started_at) * 1000 as v
  from public.delivery_attempts a join public.event_deliveries d on d.id = a.delivery_id
 where a.outcome = 'succeeded' and d.event_created_at >= %(since)s
"""


def _percentiles(conn: psycopg.Connection[Any], inner: str, since: datetime,
                 **params: Any) -> dict[str, float | int | None]:
    row = conn.cursor(row_factory=tuple_row).execute(PERCENTILES_SQL.format(inner=inner),
                                                     {"since": since, **params}).fetchone()
    assert row is not None
    p50, p95, p99, n = row
    rnd = lambda v: None if v is None else round(float(v), 2)  # noqa: E731
    return {"p50": rnd(p50), "p95": rnd(p95), "p99": rnd(p99), "n": int(n)}


def reaction_ms(conn: psycopg.Connection[Any], since: datetime) -> dict[str, float | int | None]:
    return _percentiles(conn, REACTION_SQL, since)


def reaction_ms_by_agent(conn: psycopg.Connection[Any], since: datetime) -> dict[str, dict[str, float | int | None]]:
    """Reaction percentiles per agent: a serialized agent can lag while the others keep up."""
    agents = conn.cursor(row_factory=tuple_row).execute(
        "select distinct agent from public.event_deliveries where event_created_at >= %s order by agent",
        (since,)).fetchall()
    inner = REACTION_SQL + " and d.agent = %(agent)s"
    return {name: _percentiles(conn, inner, since, agent=name) for (name,) in agents}


def backlog_drained_s(conn: psycopg.Connection[Any], since: datetime) -> float | None:
    """Seconds from the last feedback event to the last delivery finished (the backlog's drain)."""
    row = conn.cursor(row_factory=tuple_row).execute("""
        select extract(epoch from
                 (select max(finished_at) from public.event_deliveries where event_created_at >= %(since)s)
               - (select max(created_at) from public.events
                   where created_at >= %(since)s and type like 'feedback.%%'))""", {"since": since}).fetchone()
    return None if row is None or row[0] is None else round(float(row[0]), 2)


def processing_ms(conn: psycopg.Connection[Any], since: datetime) -> dict[str, float | int | None]:
    return _percentiles(conn, PROCESSING_SQL, since)


def counts(conn: psycopg.Connection[Any], since: datetime) -> dict[str, dict[str, int]]:
    cur = conn.cursor(row_factory=tuple_row)
    by_type = cur.execute("select type, count(*) from public.events where created_at >= %s "
                           "group by type order by type", (since,)).fetchall()
    by_status = cur.execute("select status, count(*) from public.event_deliveries where event_created_at >= %s "
                             "group by status order by status", (since,)).fetchall()
    return {"events_by_type": {t: int(n) for t, n in by_type},
            "deliveries_by_status": {s: int(n) for s, n in by_status}}


def max_parallel_per_event(conn: psycopg.Connection[Any], since: datetime) -> int:
    """The most agents whose attempts on one event overlapped in time."""
    row = conn.cursor(row_factory=tuple_row).execute("""
        with spans as (
          select d.event_id, a.started_at as t, 1 as delta
            from public.delivery_attempts a join public.event_deliveries d on d.id = a.delivery_id
           where d.event_created_at >= %(since)s and a.finished_at is not null
          union all
          select d.event_id, a.finished_at, -1
            from public.delivery_attempts a join public.event_deliveries d on d.id = a.delivery_id
           where d.event_created_at >= %(since)s and a.finished_at is not null),
        running as (
          select event_id, sum(delta) over (partition by event_id order by t, delta) as n from spans)
        select coalesce(max(n), 0) from running""", {"since": since}).fetchone()
    return int(row[0]) if row else 0
