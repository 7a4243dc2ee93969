"""Notification agent: scores how important an event is for the team, sends
what matters to Slack (records everything first, never sends twice for one
key, rate-limits per channel) and publishes notification.sent.

Urgent, from the plan: feedback with 10+ votes and negative sentiment.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from shared.agent import Decision, Deps, MessageOutcome
from shared.events import DomainEvent, EventType
from shared.feedback import load_post, project_settings
from shared.ports import Message
from shared.publish import follow_on
from shared.store import Write

NAME = "notify"
Importance = Literal["low", "normal", "high", "urgent"]
RANK: dict[str, int] = {"low": 0, "normal": 1, "high": 2, "urgent": 3}
URGENT_VOTES = 10
DEFAULT_RATE_PER_MINUTE = 20
DEFAULT_MIN_IMPORTANCE = "high"
# What a notification.sent reports: handed to Slack, recorded with no Slack
# configured, or posted-maybe (a timeout after the request left). A retry that
# finds one of these recorded by an earlier attempt publishes it too (same id).
PUBLISHED_STATUSES = ("sent", "unconfigured", "unknown")


@dataclass(frozen=True)
class Context:
    post: dict[str, Any] | None
    sentiment: dict[str, Any] | None
    settings: dict[str, Any]
    recent_sent: list[datetime]
    now: datetime


class NotifyAgent:
    name = NAME

    def load(self, event: DomainEvent, deps: Deps) -> Context:
        store = deps.store
        post = load_post(store, event.aggregate_id) if event.aggregate_type == "feedback" else None
        sentiment = None
        if post is not None:
            rows = store.select("sentiment_analysis", eq={"feedback_id": post["id"]}, columns=["label", "score"])
            sentiment = rows[0] if rows else None
        settings = project_settings(store, event.project_id)
        rate = int(settings.get("slack_rate_per_minute", DEFAULT_RATE_PER_MINUTE))
        recent = store.select("notifications", eq={"project_id": event.project_id, "status": "sent"},
                              columns=["sent_at"], order="sent_at", descending=True, limit=rate)
        return Context(post, sentiment, settings, [r["sent_at"] for r in recent if r["sent_at"]],
                       datetime.now().astimezone())

    def decide(self, event: DomainEvent, context: Context) -> Decision:
        return decide(event, context)

    def after_sending(self, event: DomainEvent, outcomes: Sequence[MessageOutcome]) -> list[DomainEvent]:
        return [follow_on(event, agent=NAME, event_type=EventType.NOTIFICATION_SENT, aggregate_type="notification",
                          aggregate_id=event.id, key=o.message.key, once_per_key=True,
                          payload={"dedupe_key": o.message.key, "status": o.status, "channel": o.channel,
                                   "importance": o.message.importance, "about": event.type,
                                   "transport": o.transport})
                for o in outcomes if o.status in PUBLISHED_STATUSES]


def importance(event: DomainEvent, context: Context) -> tuple[Importance, str]:
    """How much the team should care, and a one-line message saying why."""
    p = event.payload
    votes = int((context.post or {}).get("vote_count") or p.get("vote_count") or 0)
    # The stored analysis is the current one (a late retry never overwrites it).
    label = (context.sentiment or {}).get("label") or p.get("label")
    title = p.get("title") or (context.post or {}).get("title") or p.get("theme") or p.get("name") or ""
    if event.aggregate_type == "feedback" and label == "negative" and votes >= URGENT_VOTES:
        # Votes mostly arrive after the post was analysed: any event about the
        # item (priority.calculated follows every vote) can find it urgent.
        return "urgent", f":rotating_light: Angry feedback with {votes} votes: \"{title}\""
    if event.type in (EventType.FEEDBACK_CREATED, EventType.SENTIMENT_ANALYZED):
        if event.type == EventType.SENTIMENT_ANALYZED and label == "negative" and float(p.get("score", 0)) <= -0.6:
            return "normal", f"Strongly negative feedback: \"{title}\""
        return "low", f"New feedback: \"{title}\""
    if event.type == EventType.DUPLICATE_FOUND:
        best = (p.get("candidates") or [{}])[0]
        return "normal", f"\"{title}\" looks like a duplicate of \"{best.get('title', '')}\" ({best.get('similarity')})"
    if event.type == EventType.THEME_THRESHOLD_REACHED:
        return "high", f":chart_with_upwards_trend: Theme \"{p.get('name')}\" reached {p.get('feedback_count')} items"
    if event.type == EventType.SPEC_AUTO_DRAFTED:
        return "high", f":memo: Spec drafted for \"{p.get('theme')}\": {p.get('title')}"
    if event.type in (EventType.AGENT_ALERT_RAISED, EventType.AGENT_ALERT_RESOLVED):
        return "high", alert_text(event)
    if event.type == EventType.PRIORITY_CALCULATED:
        score = float(p.get("score") or 0)
        return ("high" if score >= 70 else "low"), f"Priority {score:.0f}/100 for \"{title}\""
    return "low", f"{event.type}: {title}"


def alert_text(event: DomainEvent) -> str:
    """Agent health alerts (raised on the sweep's schedule, see docs/dashboard.md)."""
    p = event.payload
    reasons = ", ".join(str(r).replace("_", " ") for r in p.get("reasons") or [])
    if event.type == EventType.AGENT_ALERT_RAISED:
        return f":warning: Agent {p.get('agent')} needs attention: {reasons}"
    return f":white_check_mark: Agent {p.get('agent')} recovered ({reasons}) after {p.get('duration_seconds')} s"


def dedupe_key(event: DomainEvent, level: Importance) -> str:
    """One urgent alert per feedback item, whichever of its events (created,
    analysed, re-analysed, re-prioritised after a vote) finds it urgent; one
    high-priority alert per item; anything else once per event."""
    if level == "urgent" and event.aggregate_type == "feedback":
        return f"urgent:{event.aggregate_id}:{NAME}"
    if level == "high" and event.type == EventType.PRIORITY_CALCULATED:
        return f"priority-high:{event.aggregate_id}:{NAME}"  # once, not once per vote
    return f"{event.id}:{NAME}"


def decide(event: DomainEvent, context: Context) -> Decision:
    if event.aggregate_type == "feedback" and context.post is None:
        return Decision(summary={"skipped": "feedback no longer exists"})
    level, text = importance(event, context)
    key = dedupe_key(event, level)
    min_level = str(context.settings.get("notify_min_importance", DEFAULT_MIN_IMPORTANCE))
    rate = int(context.settings.get("slack_rate_per_minute", DEFAULT_RATE_PER_MINUTE))
    window_start = context.now - timedelta(minutes=1)
    sent_last_minute = sum(1 for t in context.recent_sent if t >= window_start)
    base = {"dedupe_key": key, "project_id": event.project_id, "event_id": event.id, "event_type": event.type,
            "importance": level, "text": text}
    if RANK[level] < RANK.get(min_level, RANK[DEFAULT_MIN_IMPORTANCE]):
        return Decision(writes=[Write("notifications", [{**base, "status": "recorded"}], ("dedupe_key",), False)],
                        summary={"importance": level, "sent": False})
    if level != "urgent" and sent_last_minute >= rate:
        return Decision(writes=[Write("notifications", [{**base, "status": "rate_limited"}], ("dedupe_key",), False)],
                        summary={"importance": level, "sent": False, "rate_limited": True})
    message = Message(key=key, project_id=event.project_id, text=text, importance=level)
    return Decision(messages=[message], summary={"importance": level, "sent": True})
