"""Notification agent: hears every event ('*'), scores how important it is
for the team (:mod:`functions.notify.scoring`), sends high and urgent ones to
Slack at once (recorded first, never twice for one key, rate-limited per
project; urgent bypasses the limit), queues the rest for the project's digest,
sent on clock.tick (:mod:`functions.notify.digest`), and publishes
notification.sent. Each message carries its notification id, so Slack's
"Useful" / "Not useful" buttons can be traced back to it.

Urgent, from the plan: feedback with 10+ votes and negative sentiment.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from functions.notify import digest
from functions.notify.scoring import MODEL, RANK, Assessment, Importance, assess
from shared.agent import Decision, Deps, MessageOutcome
from shared.events import DomainEvent, EventType
from shared.feedback import project_settings
from shared.ports import Message
from shared.project_settings import check_project_settings
from shared.publish import follow_on, stable_id
from shared.store import Write

NAME = "notify"
DEFAULT_RATE_PER_MINUTE = 20
DEFAULT_MIN_IMPORTANCE = "high"
DEFAULT_DIGEST_MIN_IMPORTANCE = "low"
# What a notification.sent reports: handed to Slack, recorded with no Slack
# configured, or posted-maybe (a timeout after the request left). A retry that
# finds one of these recorded by an earlier attempt publishes it too (same id).
PUBLISHED_STATUSES = ("sent", "unconfigured", "unknown")
# Operator events (agent.rollout_changed, ...) carry the nil project id: no
# project means no channel, settings or notifications row to record.
NO_PROJECT = UUID(int=0)


@dataclass(frozen=True)
class Context:
    post: dict[str, Any] | None
    sentiment: dict[str, Any] | None
    settings: dict[str, Any]
    recent_sent: list[datetime]
    now: datetime
    # The stored notification with this event's dedupe key, if any.
    existing: dict[str, Any] | None = None
    # On clock.tick: the project's notifications waiting for the digest.
    queued: list[dict[str, Any]] = field(default_factory=list)


def notification_id(key: str) -> Any:
    """Known before sending, so the Slack buttons can carry it."""
    return stable_id("notification", key)


class NotifyAgent:
    name = NAME

    def load(self, event: DomainEvent, deps: Deps) -> Context:
        store = deps.store
        if event.project_id == NO_PROJECT:
            return Context(None, None, {}, [], datetime.now().astimezone())
        now = datetime.now().astimezone()
        if event.type == EventType.CLOCK_TICK:
            settings = project_settings(store, event.project_id)
            queued = store.rpc("notifications_to_digest", {"p_project_id": event.project_id,
                                                           "p_before": event.payload.get("at")})
            return Context(None, None, settings, [], now, queued=list(queued or []))
        # One round trip for what an event's assessment needs (notify hears
        # every event, so this is half of all deliveries' reads).
        found_context = store.rpc("notify_context", {
            "p_project_id": event.project_id,
            "p_feedback_id": event.aggregate_id if event.aggregate_type == "feedback" else None,
            "p_default_rate": DEFAULT_RATE_PER_MINUTE}) or {}
        settings = check_project_settings(found_context.get("settings"))
        post, sentiment = found_context.get("post"), found_context.get("sentiment")
        recent = [datetime.fromisoformat(t) for t in found_context.get("recent_sent") or []]
        key = assess(event, post, sentiment, settings).key
        found = store.select("notifications", eq={"dedupe_key": key}, columns=["status", "event_id"])
        return Context(post, sentiment, settings, recent, now, existing=found[0] if found else None)

    def decide(self, event: DomainEvent, context: Context) -> Decision:
        return decide(event, context)

    def after_sending(self, event: DomainEvent, outcomes: Sequence[MessageOutcome]) -> list[DomainEvent]:
        return [follow_on(event, agent=NAME, event_type=EventType.NOTIFICATION_SENT, aggregate_type="notification",
                          aggregate_id=o.message.id or notification_id(o.message.key), key=o.message.key,
                          once_per_key=True,
                          payload={"dedupe_key": o.message.key, "status": o.status, "channel": o.channel,
                                   "importance": o.message.importance, "about": event.type,
                                   "transport": o.transport, "notification_id": str(o.message.id or "")})
                for o in outcomes if o.status in PUBLISHED_STATUSES]


def importance(event: DomainEvent, context: Context) -> tuple[Importance, str]:
    """How much the team should care, and a one-line message saying why."""
    found = assess(event, context.post, context.sentiment, context.settings)
    return found.level, found.text


def dedupe_key(event: DomainEvent, context: Context) -> str:
    return assess(event, context.post, context.sentiment, context.settings).key


def channel_for(level: str, settings: Mapping[str, Any]) -> str | None:
    """Routing per project: settings.notify_channels maps an importance (or
    "digest") to a Slack channel; unmapped ones use the project's default."""
    routes = settings.get("notify_channels") or {}
    return routes.get(level) or (routes.get("high") if level == "urgent" else None) or None


def _row(event: DomainEvent, found: Assessment, status: str, *, key: str | None = None,
         reason: str | None = None) -> dict[str, Any]:
    key = key or found.key
    return {"id": notification_id(key), "dedupe_key": key, "project_id": event.project_id, "event_id": event.id,
            "event_type": event.type, "importance": found.level, "text": found.text, "status": status,
            "reason": reason, "model": MODEL}


def _record(event: DomainEvent, found: Assessment, status: str, reason: str | None,
            key: str | None = None) -> Decision:
    row = _row(event, found, status, key=key, reason=reason)
    return Decision(writes=[Write("notifications", [row], ("dedupe_key",), False)],
                    summary={"importance": found.level, "sent": False, "status": status, "reason": reason})


def _is_repeat(event: DomainEvent, context: Context) -> bool:
    """Already notified about by another event (a retry of this one goes on: it
    must finish what an earlier attempt started)."""
    old = context.existing
    return old is not None and old.get("status") != "failed" and str(old.get("event_id")) != str(event.id)


def decide(event: DomainEvent, context: Context) -> Decision:
    if event.project_id == NO_PROJECT:
        return Decision(summary={"skipped": "no project (an operator event)"})
    if event.type == EventType.CLOCK_TICK:
        return digest.decide(event, context.queued, context.settings, context.now,
                             channel_for("digest", context.settings))
    if event.aggregate_type == "feedback" and context.post is None:
        return Decision(summary={"skipped": "feedback no longer exists"})
    found = assess(event, context.post, context.sentiment, context.settings)
    own = f"{event.id}:{NAME}:suppressed"
    if found.suppress:
        return _record(event, found, "suppressed", found.suppress, key=own)
    if _is_repeat(event, context):
        return _record(event, found, "suppressed", "duplicate", key=own)
    settings = context.settings
    min_level = str(settings.get("notify_min_importance", DEFAULT_MIN_IMPORTANCE))
    digest_min = str(settings.get("notify_digest_min_importance", DEFAULT_DIGEST_MIN_IMPORTANCE))
    if RANK[found.level] < RANK.get(min_level, RANK[DEFAULT_MIN_IMPORTANCE]):
        if RANK[found.level] < RANK.get(digest_min, 0):
            return _record(event, found, "suppressed", "below_digest_minimum", key=own)
        return _record(event, found, "queued", "digest")
    rate = int(settings.get("slack_rate_per_minute", DEFAULT_RATE_PER_MINUTE))
    window_start = context.now - timedelta(minutes=1)
    if found.level != "urgent" and sum(1 for t in context.recent_sent if t >= window_start) >= rate:
        decision = _record(event, found, "rate_limited", "rate_limit")  # goes out in the next digest
        return Decision(writes=decision.writes, summary={**decision.summary, "rate_limited": True})
    message = Message(key=found.key, id=notification_id(found.key), project_id=event.project_id, text=found.text,
                      importance=found.level, channel=channel_for(found.level, settings), model=MODEL)
    return Decision(messages=[message], summary={"importance": found.level, "sent": True})
