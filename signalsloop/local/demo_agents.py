"""The demo's Phase-3 part: the competitor catalogue, a spec approved by the
team, time moved on with ``clock.tick`` events, a newcomer after that, and
what the competitive, engagement and roadmap agents made of it."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import psycopg
from psycopg.types.json import Jsonb

from signalsloop.local import scenario

Conn = psycopg.Connection[dict[str, Any]]
PROJECT_SETTINGS = {"competitor_threat_threshold": scenario.THREAT_THRESHOLD}


def seed_competitors(conn: Conn, project: UUID) -> None:
    for name, aliases, domains in scenario.COMPETITORS:
        conn.execute("insert into competitors (project_id, name, aliases, domains) values (%s, %s, %s, %s)",
                     (project, name, aliases, domains))


def approve_drafted_specs(conn: Conn, project: UUID) -> int:
    """The team approves what spec_writer drafted (a spec.approved each)."""
    return conn.execute("update specs set status = 'approved' where project_id = %s and source = 'agent' "
                        "and status = 'draft'", (project,)).rowcount


def publish_clock_tick(conn: Conn, project: UUID, at: datetime) -> UUID:
    """One clock.tick for ``project`` standing for time ``at``, as the sweep's
    schedule would publish it (one id per project and hour)."""
    from shared.publish import event_id

    hour = at.replace(minute=0, second=0, microsecond=0)
    tick_id = event_id(None, "clock", "clock.tick", f"{project}:{hour.isoformat()}")
    conn.execute("insert into events (id, type, aggregate_type, aggregate_id, payload, metadata) "
                 "values (%s, 'clock.tick', 'clock', %s, %s, %s) on conflict (id) do nothing",
                 (tick_id, project, Jsonb({"at": hour.isoformat()}),
                  Jsonb({"project_id": str(project), "producer": "demo.clock"})))
    return tick_id


def days_later(conn: Conn, project: UUID) -> datetime:
    """Move the project's clock ``DAYS_LATER`` days on."""
    now: datetime = conn.execute("select now() as t").fetchone()["t"]  # type: ignore[index]
    later = now + timedelta(days=scenario.DAYS_LATER)
    publish_clock_tick(conn, project, later)
    return later


def newcomer(conn: Conn, project: UUID) -> UUID:
    """A new member who posts, votes and comments: three contributions, engaged."""
    user = conn.execute("insert into auth.users (email) values (%s) returning id",
                        (f"newcomer-{uuid4().hex[:6]}@tidewater.example",)).fetchone()["id"]  # type: ignore[index]
    conn.execute("insert into project_members (project_id, user_id) values (%s, %s)", (project, user))
    item = scenario.NEWCOMER
    with conn.transaction():
        post = conn.execute("insert into posts (project_id, author_id, title, body) values (%s, %s, %s, %s) "
                            "returning id", (project, user, item.title, item.body)).fetchone()["id"]  # type: ignore[index]
        conn.execute("insert into votes (post_id, user_id) values (%s, %s)", (post, user))
        for text in item.comments:
            conn.execute("insert into comments (post_id, author_id, body) values (%s, %s, %s)", (post, user, text))
    return UUID(str(user))


def summary(conn: Conn, since: datetime) -> dict[str, Any]:
    def events(kind: str) -> list[dict[str, Any]]:
        return [r["payload"] for r in conn.execute(
            "select payload from events where type = %s and created_at >= %s order by created_at", (kind, since))]

    users = {str(r["id"]): r["email"].split("@")[0] for r in conn.execute("select id, email from auth.users")}
    return {
        "competitor_mentions": [{k: m[k] for k in ("competitor", "quote", "sentiment", "switching_intent", "model")}
                                for m in events("competitor.mentioned")],
        "competitor_features": [(f["competitor"], f["feature"]) for f in events("competitor.feature_detected")],
        "competitive_threats": [{k: t[k] for k in ("competitor", "mentions", "threshold", "window_start")}
                                for t in events("competitive.threat_identified")],
        "users_engaged": [users.get(e["user_id"], e["user_id"]) for e in events("user.engaged")],
        "users_at_risk": [{"user": users.get(e["user_id"], e["user_id"]), "silent_days": e["silent_days"]}
                          for e in events("user.at_risk")],
        "roadmap": [{k: r[k] for k in ("title", "status", "target_date", "stall_reason", "stalls")} for r in
                    conn.execute("select * from roadmap_items where updated_at >= %s order by title", (since,))],
        "roadmap_stalled": [{k: e[k] for k in ("title", "reason", "idle_days")} for e in events("roadmap.stalled")],
    }


def chain_to_stall_alert(conn: Conn, since: datetime) -> list[dict[str, Any]]:
    """From a post to the alert that its roadmap item stalled: the causal chain
    up to the draft, the team's approval of that spec, the roadmap item it made,
    the clock.tick on which it stalled, and notify's message about it. Empty when
    nothing stalled."""
    stalled = conn.execute("select * from events where type = 'roadmap.stalled' and created_at >= %s "
                           "order by created_at limit 1", (since,)).fetchone()
    if stalled is None:
        return []

    def one_of(kind: str, where: str, value: Any) -> dict[str, Any] | None:
        return conn.execute(f"select * from events where type = %s and {where} = %s order by created_at limit 1",
                            (kind, value)).fetchone()

    spec = stalled["aggregate_id"]
    drafted = one_of("spec.auto_drafted", "aggregate_id", spec)
    approved = one_of("spec.approved", "aggregate_id", spec)
    updated = one_of("roadmap.updated", "(metadata ->> 'causation_id')::uuid", approved["id"]) if approved else None
    tick = one_of("clock.tick", "id", stalled["metadata"].get("causation_id"))
    path = causes(conn, drafted)
    path += [step(approved, "the team approved the draft")] if approved else []
    path += [step(updated)] if updated else []
    path += [step(tick, f"time moved on: {tick['payload'].get('at')}")] if tick else []
    path.append(step(stalled, f"{stalled['payload'].get('reason')}, {stalled['payload'].get('idle_days', 0):.0f} "
                              "days idle"))
    alert = conn.execute("select importance, status, text from notifications where event_id = %s "
                         "and status <> 'suppressed' order by created_at limit 1", (stalled["id"],)).fetchone()
    if alert is not None:
        path.append({"type": "notification", "producer": "notify", "depth": None, "id": None,
                     "note": f"{alert['importance']}, {alert['status']}: {alert['text']}"})
    return path


def step(row: dict[str, Any], note: str | None = None) -> dict[str, Any]:
    """One event of a chain as the summary shows it."""
    return {"type": row["type"], "producer": row["metadata"].get("producer"), "depth": row["metadata"].get("depth"),
            "id": str(row["id"]), "note": note}


def causes(conn: Conn, row: dict[str, Any] | None) -> list[dict[str, Any]]:
    """``row`` and its causes back to the root event, root first."""
    path = []
    while row is not None:
        path.append(step(row))
        cause = row["metadata"].get("causation_id")
        row = conn.execute("select * from events where id = %s", (cause,)).fetchone() if cause else None
    return list(reversed(path))
