"""The gradual cutover: modes and percentages per agent (status, set,
rollback), recorded in ``rollout_changes``; the SQL in
``20261201000120_rollout.sql`` does the work, these are its operator calls."""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg.rows import dict_row

from shared.errors import BadRequest
from signalsloop.operations.query import query

MODES = ("off", "shadow", "live")

STATUS_SQL = """
select a.name as agent, a.enabled, a.mode, a.rollout_percent,
       count(d.id) filter (where d.status = 'succeeded' and not coalesce(d.shadow, false)) as live_runs,
       count(d.id) filter (where d.status = 'succeeded' and d.shadow) as shadow_runs,
       count(d.id) filter (where d.status in ('pending', 'failed', 'parked', 'running')) as waiting,
       count(d.id) filter (where d.status = 'dead') as dead,
       (select max(changed_at) from public.rollout_changes c where c.agent = a.name) as last_change
  from public.agents a
  left join public.event_deliveries d on d.agent = a.name and d.created_at >= now() - interval '1 day'
 group by a.name
 order by a.name
"""


def rollout_status(conn: psycopg.Connection[Any]) -> list[dict[str, Any]]:
    """Every agent's mode and percentage, and what it got over the last day."""
    return query(conn, STATUS_SQL)


def set_rollout(conn: psycopg.Connection[Any], agent: str, mode: str, percent: int | None = None, *,
                by: str | None = None, reason: str | None = None) -> dict[str, Any]:
    if mode not in MODES:
        raise BadRequest(f"mode must be one of {', '.join(MODES)}, not {mode!r}")
    if percent is not None and not 0 <= percent <= 100:
        raise BadRequest(f"--percent must be between 0 and 100, not {percent}")
    if percent is not None and mode != "live":
        raise BadRequest("--percent applies to live only")
    row = _call(conn, "select public.set_rollout(%s, %s, %s, %s, %s) as r", (agent, mode, percent, by, reason))
    return dict(row)


def rollback(conn: psycopg.Connection[Any], agent: str | None = None, *, by: str | None = None,
             reason: str | None = None) -> list[dict[str, Any]]:
    """Every live agent (or ``agent``) back to shadow at once."""
    if agent is not None:
        known = query(conn, "select mode from public.agents where name = %s", (agent,))
        if not known:
            raise BadRequest(f"unknown agent {agent!r}")
    return list(_call(conn, "select public.rollback_rollout(%s, %s, %s) as r",
                      (agent, by, reason or "rollback")))


def changes(conn: psycopg.Connection[Any], agent: str | None = None, limit: int = 20) -> list[dict[str, Any]]:
    return query(conn, "select * from public.rollout_changes where %(agent)s::text is null or agent = %(agent)s "
                       "order by id desc limit %(limit)s", {"agent": agent, "limit": limit})


def _call(conn: psycopg.Connection[Any], sql: str, params: tuple[Any, ...]) -> Any:
    try:
        with conn.cursor(row_factory=dict_row) as cur:
            row = cur.execute(sql, params).fetchone()
    except psycopg.Error as exc:
        raise BadRequest(str(getattr(exc.diag, "message_primary", None) or exc).strip()) from None
    return row["r"] if row else None
