"""Engagement agent: per user and project, contributions (posts, comments,
votes), last activity, a score and a status.

- ``user.engaged`` when a user crosses into engaged: their contributions in
  the last ``engagement_window_days`` (default 14, the boundary included)
  reach ``engagement_threshold`` (default 3). Once per crossing: the event id
  is global to (user, crossing number).
- ``user.at_risk`` on a ``clock.tick`` when an engaged user has been silent
  for more than ``engagement_at_risk_days`` (default 14). Once per silence:
  the id is global to (user, last activity). Their next contribution ends the
  silence (status back to active; engaged again on a new crossing).

Runs one delivery at a time per project (``serialize_by_project``), so the
counts read are not raced by a sibling delivery.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from shared.agent import Decision, Deps
from shared.clock import event_time, parse_time
from shared.events import DomainEvent, EventType
from shared.feedback import project_settings
from shared.publish import follow_on
from shared.store import Write

NAME = "engagement"
MODEL = "engagement-rules-1"
WEIGHTS = {"post": 3.0, "comment": 2.0, "vote": 1.0}
KINDS = {EventType.FEEDBACK_CREATED: "post", EventType.FEEDBACK_COMMENTED: "comment",
         EventType.FEEDBACK_VOTED: "vote"}
DEFAULT_THRESHOLD = 3
DEFAULT_WINDOW_DAYS = 14.0
DEFAULT_AT_RISK_DAYS = 14.0
ROW_COLUMNS = ("project_id", "user_id", "posts", "comments", "votes", "recent", "score", "last_active_at",
               "status", "engaged_at", "at_risk_at", "crossings", "model", "source_event_id")


@dataclass(frozen=True)
class Context:
    user_id: UUID | None = None
    totals: dict[str, int] = field(default_factory=dict)  # every contribution recorded so far, by kind
    recent: list[dict[str, Any]] = field(default_factory=list)  # recorded ones since the window began
    current: dict[str, Any] | None = None  # the user's user_engagement row
    threshold: int = DEFAULT_THRESHOLD
    window_days: float = DEFAULT_WINDOW_DAYS
    at_risk_days: float = DEFAULT_AT_RISK_DAYS
    engaged: list[dict[str, Any]] = field(default_factory=list)  # clock.tick: the project's engaged users


def contributor(event: DomainEvent) -> UUID | None:
    """Who contributed: the author of a post or comment, the voter (an unvote is no contribution)."""
    payload = event.payload
    if event.type == EventType.FEEDBACK_VOTED:
        if int(payload.get("delta") or 1) < 0:
            return None
        who = payload.get("user_id")
    else:
        who = payload.get("author_id")
    who = who or event.metadata.user_id
    try:
        return UUID(str(who)) if who else None
    except ValueError:
        return None


class EngagementAgent:
    name = NAME

    def load(self, event: DomainEvent, deps: Deps) -> Context:
        settings = project_settings(deps.store, event.project_id)
        base = Context(threshold=int(settings.get("engagement_threshold") or DEFAULT_THRESHOLD),
                       window_days=float(settings.get("engagement_window_days") or DEFAULT_WINDOW_DAYS),
                       at_risk_days=float(settings.get("engagement_at_risk_days") or DEFAULT_AT_RISK_DAYS))
        if event.type == EventType.CLOCK_TICK:
            engaged = deps.store.select("user_engagement", eq={"project_id": event.project_id, "status": "engaged"})
            return replace(base, engaged=engaged)
        user = contributor(event)
        if user is None:
            return base
        found = deps.store.select("user_engagement", eq={"project_id": event.project_id, "user_id": user})
        current = found[0] if found else None
        since = latest(event, current) - timedelta(days=base.window_days)
        activity = deps.store.rpc("engagement_activity", {"p_project_id": event.project_id, "p_user_id": user,
                                                          "p_since": since}) or {}
        return replace(base, user_id=user, totals=dict(activity.get("totals") or {}),
                       recent=list(activity.get("recent") or []), current=current)

    def decide(self, event: DomainEvent, context: Context) -> Decision:
        return decide(event, context)


def decide(event: DomainEvent, context: Context) -> Decision:
    if event.type == EventType.CLOCK_TICK:
        return decide_tick(event, context)
    kind = KINDS.get(event.type)
    if kind is None or context.user_id is None:
        return Decision(summary={"skipped": "no contributor"})
    at = event_time(event)
    recorded = any(str(r.get("event_id")) == str(event.id) for r in context.recent)
    recent = [*context.recent] if recorded else [*context.recent, {"event_id": str(event.id), "kind": kind, "at": at}]
    last_active = latest(event, context.current)
    since = last_active - timedelta(days=context.window_days)
    window = [r for r in recent if since <= parse_time(r["at"]) <= last_active]
    totals = {k: int(context.totals.get(k, 0)) + (0 if recorded or k != kind else 1) for k in WEIGHTS}
    current = context.current or {}
    status, crossings = str(current.get("status") or "active"), int(current.get("crossings") or 0)
    row = {"project_id": event.project_id, "user_id": context.user_id, "posts": totals["post"],
           "comments": totals["comment"], "votes": totals["vote"], "recent": len(window),
           "score": sum(WEIGHTS[str(r["kind"])] for r in window), "last_active_at": last_active,
           "status": "active" if status == "at_risk" else status, "engaged_at": current.get("engaged_at"),
           "at_risk_at": current.get("at_risk_at"), "crossings": crossings, "model": MODEL,
           "source_event_id": event.id}
    writes = [Write("user_activity", [{"source_event_id": event.id, "project_id": event.project_id,
                                       "user_id": context.user_id, "kind": kind,
                                       "feedback_id": event.aggregate_id, "at": at}],
                    ("source_event_id",), update=False)]
    events = []
    if status != "engaged" and len(window) >= context.threshold:
        row.update(status="engaged", engaged_at=at, crossings=crossings + 1)
        payload = {"user_id": str(context.user_id), "contributions": len(window), "threshold": context.threshold,
                   "window_days": context.window_days, "score": row["score"], "crossing": crossings + 1,
                   "posts": totals["post"], "comments": totals["comment"], "votes": totals["vote"],
                   "trigger": event.type, "feedback_id": str(event.aggregate_id), "model": MODEL}
        events.append(follow_on(event, agent=NAME, event_type=EventType.USER_ENGAGED, aggregate_type="user",
                                aggregate_id=context.user_id, payload=payload,
                                key=f"{event.project_id}:{context.user_id}:{crossings + 1}", once_per_key=True))
    writes.append(Write("user_engagement", [row], ("project_id", "user_id")))
    return Decision(writes=writes, events=events,
                    summary={"user": str(context.user_id), "status": row["status"], "recent": len(window),
                             "engaged": bool(events)})


def latest(event: DomainEvent, current: dict[str, Any] | None) -> datetime:
    """The user's latest activity, this event included. The window ends there,
    not at this event: deliveries may arrive out of order (a post's event after
    the comments on it), and the later contributions still count."""
    at = event_time(event)
    last = current.get("last_active_at") if current else None
    return max(at, parse_time(last)) if last else at


def silent_past(row: dict[str, Any], at: datetime, days: float) -> bool:
    """Silent for more than ``days`` at ``at`` (exactly ``days`` is not yet past)."""
    return at - parse_time(row["last_active_at"]) > timedelta(days=days)


def decide_tick(event: DomainEvent, context: Context) -> Decision:
    at = event_time(event)
    rows, events = [], []
    for current in sorted(context.engaged, key=lambda r: str(r["user_id"])):
        if current.get("status") != "engaged" or not silent_past(current, at, context.at_risk_days):
            continue
        last = parse_time(current["last_active_at"])
        rows.append({**{k: current.get(k) for k in ROW_COLUMNS}, "status": "at_risk", "at_risk_at": at,
                     "source_event_id": event.id})
        payload = {"user_id": str(current["user_id"]), "last_active_at": last.isoformat(),
                   "silent_days": round((at - last).total_seconds() / 86400, 2),
                   "at_risk_days": context.at_risk_days, "score": current.get("score"),
                   "posts": current.get("posts"), "comments": current.get("comments"),
                   "votes": current.get("votes"), "model": MODEL}
        events.append(follow_on(event, agent=NAME, event_type=EventType.USER_AT_RISK, aggregate_type="user",
                                aggregate_id=UUID(str(current["user_id"])), payload=payload,
                                key=f"{event.project_id}:{current['user_id']}:{last.isoformat()}", once_per_key=True))
    writes = [Write("user_engagement", rows, ("project_id", "user_id"))] if rows else []
    return Decision(writes=writes, events=events, summary={"at_risk": len(events), "engaged": len(context.engaged)})
