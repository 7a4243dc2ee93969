"""Agent health: per-agent delivery counts, success rate, processing-time
percentiles, queue age, doorbell errors and circuit-breaker state, computed
in SQL."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import psycopg

from signalsloop.operations.query import query

STATUSES = ("succeeded", "failed", "dead", "pending", "running", "parked", "blocked")

# success_rate: succeeded over deliveries with an outcome (succeeded, failed
# awaiting retry, or dead); blocked (loop protection) is not the agent's doing.
# Durations come from succeeded attempts only, so retries and timeouts do not
# blur how long real work takes. Oldest pending counts from when the delivery
# last became due (creation or replay).
HEALTH_SQL = """
with d as (
  select * from public.event_deliveries
   where %(since)s::interval is null or created_at >= now() - %(since)s::interval
), counts as (
  select agent, count(*) as total,
         {status_counts},
         extract(epoch from clock_timestamp() - min(next_attempt_at) filter (where status = 'pending'))
           as oldest_pending_s,
         -- rings that never reached a run (refused, unreachable, unanswered)
         -- shadow runs (no effects) are counted apart, never as live work
         count(*) filter (where status = 'succeeded' and shadow) as shadow_runs,
         coalesce(sum(ring_errors) filter (where status in ('pending', 'failed')), 0) as ring_errors,
         (array_agg(last_ring_error order by updated_at desc) filter (where last_ring_error is not null))[1]
           as last_ring_error
    from d group by agent
), durations as (
  select d.agent,
         percentile_cont(0.5) within group (order by extract(epoch from a.finished_at - a.started_at) * 1000) as p50,
         percentile_cont(0.95) within group (order by extract(epoch from a.finished_at - a.started_at) * 1000) as p95
    from public.delivery_attempts a join d on d.id = a.delivery_id
   where a.outcome = 'succeeded' and a.finished_at is not null
   group by d.agent
)
select a.name as agent, a.enabled, a.mode, a.rollout_percent, a.circuit_state, a.consecutive_failures,
       coalesce(c.total, 0)::int as total, {coalesced},
       c.oldest_pending_s::float8 as oldest_pending_s,
       coalesce(c.ring_errors, 0)::int as ring_errors, c.last_ring_error,
       coalesce(c.shadow_runs, 0)::int as shadow_runs,
       p.p50::float8 as p50_ms, p.p95::float8 as p95_ms
  from public.agents a
  left join counts c on c.agent = a.name
  left join durations p on p.agent = a.name
 order by a.name
"""


def _health_sql() -> str:
    counts = ",\n         ".join(f"count(*) filter (where status = '{s}') as {s}" for s in STATUSES)
    coalesced = ", ".join(f"coalesce(c.{s}, 0)::int as {s}" for s in STATUSES)
    return HEALTH_SQL.format(status_counts=counts, coalesced=coalesced)


def agent_health(conn: psycopg.Connection[Any], since: timedelta | None = None) -> list[dict[str, Any]]:
    """One dict per registered agent, ordered by name."""
    rows = query(conn, _health_sql(), {"since": since})
    for row in rows:
        row["succeeded"] -= row["shadow_runs"]  # "succeeded" is live work only
        outcomes = row["succeeded"] + row["shadow_runs"] + row["failed"] + row["dead"]
        row["success_rate"] = (row["succeeded"] + row["shadow_runs"]) / outcomes if outcomes else None
    return rows
