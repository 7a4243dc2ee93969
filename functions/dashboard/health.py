"""Agent health and the plan's success metrics, computed from the ledger over
a window (as the signed-in person: a member's figures cover their projects)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from functions.dashboard.db import Conn


def agent_stats(conn: Conn, window_s: float) -> list[dict[str, Any]]:
    """Per agent: deliveries by status, success rate, execution time
    percentiles, lag now, failures, dead letters, circuit, unanswered rings."""
    return conn.execute("""
        with w as (select now() - make_interval(secs => %(w)s) as since),
        d as (select d.agent, d.status from public.event_deliveries d, w where d.created_at >= w.since),
        a as (select d.agent, x.outcome, extract(epoch from x.finished_at - x.started_at) * 1000 as ms
                from public.delivery_attempts x join public.event_deliveries d on d.id = x.delivery_id, w
               where x.started_at >= w.since)
        select g.name as agent, g.enabled, g.mode, g.rollout_percent, g.circuit_state, g.consecutive_failures,
               (select count(*) from d where d.agent = g.name) as deliveries,
               (select count(*) from d where d.agent = g.name and d.status = 'succeeded') as succeeded,
               (select count(*) from a
                 where a.agent = g.name and a.outcome in ('failed', 'dead', 'expired')) as failures,
               (select count(*) from public.event_deliveries x where x.agent = g.name and x.status = 'dead') as dead,
               (select percentile_cont(array[0.5, 0.95, 0.99]) within group (order by a.ms)
                  from a where a.agent = g.name and a.outcome = 'succeeded') as exec_ms,
               (select extract(epoch from now() - min(x.event_created_at)) from public.event_deliveries x
                 where x.agent = g.name and x.status in ('pending', 'running', 'failed', 'parked')) as lag_s,
               (select count(*) from public.event_deliveries x
                 where x.agent = g.name and x.status in ('pending', 'failed') and x.ring_count > 0
                   and x.attempts = 0 and x.rung_at < now() - interval '10 seconds') as unanswered_rings
          from public.agents g order by g.name""", {"w": window_s}).fetchall()


def lag_history(conn: Conn, minutes: int = 60) -> list[dict[str, Any]]:
    """Oldest pending age per agent at each minute of the last hour: a delivery
    is pending at t when it existed and had not started yet."""
    return conn.execute("""
        select g.name as agent, b.t,
               coalesce(max(extract(epoch from b.t - d.event_created_at)), 0) as lag_s
          from public.agents g
          cross join generate_series(date_trunc('minute', now()) - make_interval(mins => %(m)s),
                                     now(), interval '1 minute') b(t)
          left join public.event_deliveries d
            on d.agent = g.name and d.created_at <= b.t
           and d.created_at >= now() - make_interval(mins => %(m)s * 2)
           and coalesce(d.first_started_at, 'infinity') > b.t
           and d.status <> 'blocked'
         where g.enabled
         group by g.name, b.t order by g.name, b.t""", {"m": minutes}).fetchall()


def doorbell_errors(conn: Conn, limit: int = 20) -> list[dict[str, Any]]:
    """Rings nobody answered: deliveries rung but never claimed."""
    return conn.execute("""
        select d.agent, d.id, d.event_type, d.ring_count, d.rung_at, d.last_error
          from public.event_deliveries d
         where d.status in ('pending', 'failed', 'dead') and d.ring_count > 0 and d.attempts = 0
           and d.rung_at < now() - interval '10 seconds'
         order by d.rung_at desc limit %s""", (limit,)).fetchall()


def alerts(conn: Conn, limit: int = 20) -> list[dict[str, Any]]:
    return conn.execute("select agent, project_id, reasons, raised_at, resolved_at from public.agent_alerts "
                        "order by raised_at desc limit %s", (limit,)).fetchall()


@dataclass(frozen=True)
class Metric:
    name: str
    value: float | None
    unit: str
    target: str
    met: bool | None
    detail: str = ""

    def shown(self) -> str:
        if self.value is None:
            return "no data"
        return f"{self.value:.0f} {self.unit}" if self.unit in ("ms", "s") else f"{self.value:g} {self.unit}"


def _p(conn: Conn, query: str, params: dict[str, Any]) -> dict[str, Any]:
    row = conn.execute(query, params).fetchone()
    return dict(row) if row else {}


def success_metrics(conn: Conn, window_s: float, dashboard_p95_ms: float | None) -> list[Metric]:
    w = {"w": window_s}
    since = "now() - make_interval(secs => %(w)s)"
    react = _p(conn, f"""select percentile_cont(0.95) within group (order by extract(epoch from
                  d.first_started_at - d.event_created_at) * 1000) as p95, count(*) as n
                  from public.event_deliveries d where d.created_at >= {since} and d.first_started_at is not null""", w)
    work = _p(conn, f"""select percentile_cont(0.95) within group (order by extract(epoch from
                  a.finished_at - a.started_at) * 1000) as p95, count(*) as n
                  from public.delivery_attempts a where a.started_at >= {since} and a.outcome = 'succeeded'""", w)
    fan = _p(conn, f"""select max(n) as peak, percentile_cont(0.5) within group (order by n) as p50 from (
                  select count(*) as n from public.event_deliveries d where d.created_at >= {since}
                   and d.status <> 'blocked' group by d.event_id) x""", w)
    themes = _p(conn, """select count(*) filter (where t.threshold_reached_at is not null) as high,
                  count(*) filter (where t.threshold_reached_at is not null and exists (
                     select 1 from public.specs s where s.theme_id = t.id)) as specced
                  from public.themes t""", {})
    dup = _p(conn, f"""select percentile_cont(0.95) within group (order by extract(epoch from
                  f.created_at - r.created_at) * 1000) as p95, count(*) as n
                  from public.events f join public.events r on r.id = (f.metadata ->> 'correlation_id')::uuid
                 where f.type = 'duplicate.found' and f.created_at >= {since}""", w)
    useful = _useful(conn, window_s)
    share = (themes["specced"] / themes["high"] * 100) if themes.get("high") else None
    return [
        _ms("Event processing latency (claim to complete), p95", work.get("p95"), 100),
        _ms("Agent reaction time (event commit to claim), p95", react.get("p95"), 500),
        Metric("Agents processing one event (peak)", float(fan["peak"]) if fan.get("peak") else None, "agents",
               ">= 5", None if not fan.get("peak") else fan["peak"] >= 5, f"median {fan.get('p50') or 0:g}"),
        Metric("High-volume themes with a spec", share, "%", ">= 80 %", None if share is None else share >= 80,
               f"{themes.get('specced', 0)} of {themes.get('high', 0)} themes over their threshold"),
        Metric("Duplicate detection delay (post to duplicate.found), p95",
               None if dup.get("p95") is None else float(dup["p95"]), "ms", "< 1000 ms",
               None if dup.get("p95") is None else dup["p95"] < 1000, f"{dup.get('n', 0)} duplicates"),
        useful,
        _ms("Dashboard update latency (commit to page), p95", dashboard_p95_ms, 1000),
    ]


def _ms(name: str, value: Any, target: float) -> Metric:
    if value is None:
        return Metric(name, None, "ms", f"< {target:.0f} ms", None)
    return Metric(name, float(value), "ms", f"< {target:.0f} ms", float(value) < target)


def _useful(conn: Conn, window_s: float) -> Metric:
    name = "Notifications marked useful"
    exists = conn.execute("select to_regclass('public.notification_feedback') is not null as t").fetchone()
    if not exists or not exists["t"]:
        return Metric(name, None, "%", ">= 90 %", None, "no feedback table yet")
    row = _p(conn, """select count(*) as n, count(*) filter (where verdict = 'useful') as useful
                        from public.notification_feedback where created_at >= now() - make_interval(secs => %(w)s)""",
             {"w": window_s})
    if not row.get("n"):
        return Metric(name, None, "%", ">= 90 %", None, "no votes in the window")
    share = row["useful"] / row["n"] * 100
    return Metric(name, round(share, 1), "%", ">= 90 %", share >= 90, f"{row['n']} votes")
