"""The dashboard's reads, as plain functions of a connection (already set to
the signed-in person's role by :class:`~functions.dashboard.db.Ledger`).

Event listing is keyset-paginated on ``(created_at, id)`` with only the
filters given, so each page is an index range scan however many millions of
events the table holds.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID

from psycopg import sql

from functions.dashboard.db import Conn

STATUSES = ("pending", "running", "succeeded", "failed", "dead", "parked", "blocked")
PAGE_SIZE = 50


@dataclass
class EventFilter:
    types: list[str] = field(default_factory=list)
    project_id: str | None = None
    agent: str | None = None
    status: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    aggregate_id: UUID | None = None
    # A member's projects: lets the planner walk the per-project index instead
    # of testing the RLS policy on every event of every tenant (RLS still applies).
    within: list[str] | None = None

    def clauses(self) -> tuple[list[sql.Composable], dict[str, Any]]:
        where: list[sql.Composable] = []
        params: dict[str, Any] = {}
        if self.within is not None and not self.project_id:
            where.append(sql.SQL("e.metadata ->> 'project_id' = any(%(within)s)"))
            params["within"] = list(self.within)
        if self.types:
            where.append(sql.SQL("e.type = any(%(types)s)"))
            params["types"] = list(self.types)
        if self.project_id:
            where.append(sql.SQL("e.metadata ->> 'project_id' = %(project)s"))
            params["project"] = str(self.project_id)
        if self.agent or self.status:
            where.append(sql.SQL(
                "exists (select 1 from public.event_deliveries d where d.event_id = e.id"
                + (" and d.agent = %(agent)s" if self.agent else "")
                + (" and d.status = %(status)s" if self.status else "") + ")"))
            params.update({"agent": self.agent, "status": self.status})
        if self.since:
            where.append(sql.SQL("e.created_at >= %(since)s"))
            params["since"] = self.since
        if self.until:
            where.append(sql.SQL("e.created_at < %(until)s"))
            params["until"] = self.until
        if self.aggregate_id:
            where.append(sql.SQL("e.aggregate_id = %(aggregate)s"))
            params["aggregate"] = self.aggregate_id
        return where, params


EVENT_COLUMNS = sql.SQL("""
  e.id, e.type, e.aggregate_type, e.aggregate_id, e.created_at, e.metadata ->> 'project_id' as project_id,
  e.metadata ->> 'producer' as producer, e.metadata ->> 'correlation_id' as correlation_id,
  (select coalesce(jsonb_object_agg(d.agent, d.status order by d.agent), '{}'::jsonb)
     from public.event_deliveries d where d.event_id = e.id) as deliveries""")


def list_events(conn: Conn, flt: EventFilter, *, before: tuple[datetime, UUID] | None = None,
                since_at: datetime | None = None, limit: int = PAGE_SIZE) -> list[dict[str, Any]]:
    """Newest first. ``before``: the keyset cursor of the previous page's last
    row. ``since_at``: only events at or after it (live updates)."""
    where, params = flt.clauses()
    if before is not None:
        where.append(sql.SQL("(e.created_at, e.id) < (%(b_at)s, %(b_id)s)"))
        params.update({"b_at": before[0], "b_id": before[1]})
    if since_at is not None:
        where.append(sql.SQL("e.created_at >= %(since_at)s"))
        params["since_at"] = since_at
    query = sql.SQL("select {cols} from public.events e where {where} order by e.created_at desc, e.id desc "
                    "limit %(limit)s").format(cols=EVENT_COLUMNS,
                                             where=sql.SQL(" and ").join(where) if where else sql.SQL("true"))
    params["limit"] = limit
    return conn.execute(query, params).fetchall()


def projects(conn: Conn) -> list[dict[str, Any]]:
    return conn.execute("select id, name, slug from public.projects order by name, slug").fetchall()


def agent_names(conn: Conn) -> list[str]:
    return [r["name"] for r in conn.execute("select name from public.agents order by name")]


def event_types(conn: Conn) -> list[str]:
    from shared.events import ALL_EVENT_TYPES

    registered = {t for r in conn.execute("select event_types from public.agents") for t in r["event_types"]}
    return sorted(ALL_EVENT_TYPES | registered)


def chain(conn: Conn, correlation_id: UUID) -> dict[str, Any]:
    """The events of one chain (oldest first) with each delivery and its attempts."""
    events = conn.execute("""
        select e.id, e.type, e.aggregate_type, e.aggregate_id, e.created_at, e.payload,
               e.metadata ->> 'causation_id' as causation_id, e.metadata ->> 'producer' as producer,
               coalesce((e.metadata ->> 'depth')::int, 0) as depth
          from public.events e where e.metadata ->> 'correlation_id' = %s
         order by e.created_at, coalesce((e.metadata ->> 'depth')::int, 0), e.id""",
                          (str(correlation_id),)).fetchall()
    ids = [e["id"] for e in events]
    deliveries = conn.execute("""
        select d.id, d.event_id, d.agent, d.status, d.attempts, d.last_error, d.event_created_at,
               d.first_started_at, d.finished_at,
               coalesce((select jsonb_agg(jsonb_build_object(
                   'attempt', a.attempt, 'outcome', a.outcome, 'error', a.error, 'started_at', a.started_at,
                   'finished_at', a.finished_at,
                   'ms', round(extract(epoch from coalesce(a.finished_at, now()) - a.started_at)::numeric * 1000, 1))
                   order by a.attempt) from public.delivery_attempts a where a.delivery_id = d.id),
                 '[]') as attempts_log
          from public.event_deliveries d where d.event_id = any(%s) order by d.event_created_at, d.agent""",
                              (ids,)).fetchall()
    return {"events": events, "deliveries": deliveries}


def dead_letters(conn: Conn, *, agent: str | None = None, event_type: str | None = None,
                 project_id: str | None = None, limit: int = 200) -> list[dict[str, Any]]:
    where = ["d.status = 'dead'"]
    params: dict[str, Any] = {"limit": limit}
    for column, key, value in (("d.agent", "agent", agent), ("d.event_type", "type", event_type),
                               ("d.project_id::text", "project", project_id)):
        if value:
            where.append(f"{column} = %({key})s")
            params[key] = value
    return conn.execute(f"""
        select d.id, d.event_id, d.agent, d.event_type, d.project_id, d.attempts, d.last_error, d.finished_at,
               d.replay_count, e.metadata ->> 'correlation_id' as correlation_id
          from public.event_deliveries d join public.events e on e.id = d.event_id
         where {' and '.join(where)} order by d.finished_at desc nulls last, d.id desc limit %(limit)s""",
                        params).fetchall()


def replay(conn: Conn, *, actor: str, project_id: str | None = None, event_id: UUID | None = None,
           agent: str | None = None, event_type: str | None = None) -> int:
    """Dead deliveries back to pending through ``replay_dead_letters`` (which
    checks owner/admin for members and records who, when and what)."""
    row = conn.execute("select public.replay_dead_letters(p_project_id => %s, p_event_id => %s, p_agent => %s, "
                       "p_type => %s, p_actor => %s) as n",
                       (project_id, event_id, agent, event_type, actor)).fetchone()
    return int(row["n"]) if row else 0


def replay_log(conn: Conn, limit: int = 50) -> list[dict[str, Any]]:
    return conn.execute("select created_at, actor, project_id, filter, replayed from public.replay_log "
                        "order by created_at desc limit %s", (limit,)).fetchall()
