"""How much the team should care about an event: a level, a one-line message
and what the message is about (its dedupe key), from the event's type and
what the agent read. Pure.

Messages dedupe on what they say, not on the event that caused them: one
alert per theme and threshold, per spec version's quality check, per
competitor threat window, per stall; re-publishing an event never resends.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from shared.events import DomainEvent, EventType

Importance = Literal["low", "normal", "high", "urgent"]
RANK: dict[str, int] = {"low": 0, "normal": 1, "high": 2, "urgent": 3}
URGENT_VOTES = 10
HIGH_PRIORITY = 70
LOW_SPEC_QUALITY = 60
SUFFIX = ":notify"
# Recorded with every notification (notifications.model): the rules below, versioned.
MODEL = "notify-rules-1"

# Activity that changes numbers but says nothing new on its own; it can still
# make an item urgent (10 votes on angry feedback), checked first.
NOISE = frozenset({EventType.FEEDBACK_VOTED, EventType.FEEDBACK_UPDATED, EventType.THEME_UPDATED})


@dataclass(frozen=True)
class Assessment:
    level: Importance
    text: str
    subject: str  # what the message is about; the dedupe key without the suffix
    suppress: str | None = None  # a reason not to notify at all

    @property
    def key(self) -> str:
        return self.subject + SUFFIX


def _title(event: DomainEvent, post: Mapping[str, Any] | None) -> str:
    p = event.payload
    return str(p.get("title") or (post or {}).get("title") or p.get("theme") or p.get("name") or "")


def _who(p: Mapping[str, Any], *names: str) -> str:
    return next((str(p[n]) for n in names if p.get(n)), "")


def assess(event: DomainEvent, post: Mapping[str, Any] | None, sentiment: Mapping[str, Any] | None,
           settings: Mapping[str, Any]) -> Assessment:
    """The plan's rule first: urgent feedback with 10+ votes and negative sentiment."""
    p = event.payload
    votes = int((post or {}).get("vote_count") or p.get("vote_count") or 0)
    # The stored analysis is the current one (a late retry never overwrites it).
    label = (sentiment or {}).get("label") or p.get("label")
    title = _title(event, post)
    if event.aggregate_type == "feedback" and label == "negative" and votes >= URGENT_VOTES:
        # Votes mostly arrive after the post was analysed: any event about the
        # item (a vote, priority.calculated) can find it urgent.
        return Assessment("urgent", f":rotating_light: Angry feedback with {votes} votes: \"{title}\"",
                          f"urgent:{event.aggregate_id}")
    if event.type in NOISE:
        return Assessment("low", f"{event.type}: {title}", str(event.id), suppress="noise")
    rule = RULES.get(event.type)
    if rule is not None:
        return rule(event, title, label, settings)
    return Assessment("low", f"{event.type}: {title}".rstrip(": "), str(event.id))


Rule = Callable[[DomainEvent, str, Any, Mapping[str, Any]], Assessment]


def _feedback(event: DomainEvent, title: str, label: Any, settings: Mapping[str, Any]) -> Assessment:
    strongly = label == "negative" and float(event.payload.get("score", 0)) <= -0.6
    if event.type == EventType.SENTIMENT_ANALYZED and strongly:
        return Assessment("normal", f"Strongly negative feedback: \"{title}\"", f"negative:{event.aggregate_id}")
    return Assessment("low", f"New feedback: \"{title}\"", f"feedback:{event.aggregate_id}")


def _commented(event: DomainEvent, title: str, label: Any, settings: Mapping[str, Any]) -> Assessment:
    return Assessment("low", f"New comment on \"{title}\"", f"comment:{event.payload.get('comment_id') or event.id}")


def _duplicate(event: DomainEvent, title: str, label: Any, settings: Mapping[str, Any]) -> Assessment:
    candidates = event.payload.get("candidates") or [{}]
    best = candidates[0]
    # Never more than normal: twenty similar posts must not become twenty alerts.
    more = f" and {len(candidates) - 1} more" if len(candidates) > 1 else ""
    return Assessment("normal", f"\"{title}\" looks like a duplicate of \"{best.get('title', '')}\" "
                      f"({best.get('similarity')}){more}", f"duplicate:{event.aggregate_id}")


def _theme_detected(event: DomainEvent, title: str, label: Any, settings: Mapping[str, Any]) -> Assessment:
    return Assessment("low", f"New theme: \"{event.payload.get('name')}\"", f"theme:{event.aggregate_id}")


def _threshold(event: DomainEvent, title: str, label: Any, settings: Mapping[str, Any]) -> Assessment:
    p = event.payload
    return Assessment("high", f":chart_with_upwards_trend: Theme \"{p.get('name')}\" reached "
                      f"{p.get('feedback_count')} items", f"theme-threshold:{event.aggregate_id}:{p.get('threshold')}")


def _spec_drafted(event: DomainEvent, title: str, label: Any, settings: Mapping[str, Any]) -> Assessment:
    p = event.payload
    return Assessment("high", f":memo: Spec drafted for \"{p.get('theme')}\": {p.get('title')}",
                      f"spec-drafted:{event.aggregate_id}")


def _spec_changed(event: DomainEvent, title: str, label: Any, settings: Mapping[str, Any]) -> Assessment:
    what = event.type.removeprefix("spec.")
    version = event.payload.get("version", "")
    return Assessment("low", f"Spec {what}: \"{title}\"", f"spec-{what}:{event.aggregate_id}:{version}")


def _spec_quality(event: DomainEvent, title: str, label: Any, settings: Mapping[str, Any]) -> Assessment:
    p = event.payload
    score = int(p.get("score") or 0)
    subject = f"spec-quality:{event.aggregate_id}:{p.get('version')}"
    minimum = int(settings.get("spec_quality_min", LOW_SPEC_QUALITY))
    if score >= minimum:
        return Assessment("low", f"Spec \"{title}\" scored {score}/100", subject)
    owner = _owner(p.get("owner_id"), settings)
    fixes = "; ".join(str(f) for f in (p.get("fixes") or [])[:3])
    return Assessment("high", f":warning: {owner}spec \"{title}\" scored {score}/100 (below {minimum})."
                      + (f" Fix: {fixes}" if fixes else ""), subject)


def _owner(owner_id: Any, settings: Mapping[str, Any]) -> str:
    """A Slack mention of the spec's owner when the project maps them (settings.slack_users)."""
    slack_id = (settings.get("slack_users") or {}).get(str(owner_id)) if owner_id else None
    return f"<@{slack_id}> your " if slack_id else "For the spec's owner: "


def _priority(event: DomainEvent, title: str, label: Any, settings: Mapping[str, Any]) -> Assessment:
    score = float(event.payload.get("score") or 0)
    if score >= HIGH_PRIORITY:
        return Assessment("high", f"Priority {score:.0f}/100 for \"{title}\"", f"priority-high:{event.aggregate_id}")
    return Assessment("low", f"Priority {score:.0f}/100 for \"{title}\"", f"priority:{event.aggregate_id}")


def _competitor(event: DomainEvent, title: str, label: Any, settings: Mapping[str, Any]) -> Assessment:
    p = event.payload
    name = _who(p, "competitor", "competitor_name", "name")
    quote = str(p.get("quote") or "")[:200]
    switching = bool(p.get("switching_intent")) or p.get("sentiment") == "negative"
    return Assessment("high" if switching else "normal", f"Competitor {name} mentioned: \"{quote}\"",
                      f"competitor:{name.lower()}:{p.get('feedback_id') or event.aggregate_id}")


def _competitor_feature(event: DomainEvent, title: str, label: Any, settings: Mapping[str, Any]) -> Assessment:
    p = event.payload
    name, feature = _who(p, "competitor", "competitor_name", "name"), str(p.get("feature") or "")
    return Assessment("normal", f"{name} has \"{feature}\", say users",
                      f"competitor-feature:{name.lower()}:{feature.lower()}")


def _threat(event: DomainEvent, title: str, label: Any, settings: Mapping[str, Any]) -> Assessment:
    p = event.payload
    name = _who(p, "competitor", "competitor_name", "name")
    count = p.get("mentions") or p.get("count") or ""
    window = _who(p, "window_start", "window", "since") or str(event.id)
    return Assessment("urgent", f":crossed_swords: Competitive threat: {name} ({count} worrying mentions)",
                      f"competitor-threat:{name.lower()}:{window}")


def _user(event: DomainEvent, title: str, label: Any, settings: Mapping[str, Any]) -> Assessment:
    p = event.payload
    user = _who(p, "user_id") or str(event.aggregate_id)
    since = _who(p, "since", "silent_since", "last_active_at", "crossed_at") or str(event.id)
    if event.type == EventType.USER_AT_RISK:
        return Assessment("normal", f"An engaged user went quiet: {_who(p, 'email', 'name') or user}",
                          f"user-at-risk:{user}:{since}")
    return Assessment("low", f"A user became engaged: {_who(p, 'email', 'name') or user}",
                      f"user-engaged:{user}:{since}")


def _roadmap(event: DomainEvent, title: str, label: Any, settings: Mapping[str, Any]) -> Assessment:
    p = event.payload
    spec = _who(p, "spec_id") or str(event.aggregate_id)
    if event.type == EventType.ROADMAP_STALLED:
        since = _who(p, "since", "stalled_since", "last_progress_at") or str(event.id)
        overdue = " and past its target date" if p.get("overdue") else ""
        return Assessment("high", f":hourglass: Roadmap item \"{title}\" stalled{overdue}",
                          f"roadmap-stalled:{spec}:{since}")
    return Assessment("low", f"Roadmap item \"{title}\" updated: {p.get('status', '')}".rstrip(": "), str(event.id))


def _alert(event: DomainEvent, title: str, label: Any, settings: Mapping[str, Any]) -> Assessment:
    """Agent health alerts (raised and resolved on the sweep's schedule, docs/dashboard.md)."""
    p = event.payload
    reasons = ", ".join(str(r).replace("_", " ") for r in p.get("reasons") or [])
    if event.type == EventType.AGENT_ALERT_RAISED:
        text = f":warning: Agent {p.get('agent')} needs attention: {reasons}"
    else:
        text = f":white_check_mark: Agent {p.get('agent')} recovered ({reasons}) after {p.get('duration_seconds')} s"
    return Assessment("high", text, f"alert:{event.id}")


def _own(event: DomainEvent, title: str, label: Any, settings: Mapping[str, Any]) -> Assessment:
    return Assessment("low", event.type, str(event.id), suppress="own_event")


RULES: dict[str, Rule] = {
    EventType.FEEDBACK_CREATED: _feedback, EventType.SENTIMENT_ANALYZED: _feedback,
    EventType.FEEDBACK_COMMENTED: _commented, EventType.DUPLICATE_FOUND: _duplicate,
    EventType.THEME_DETECTED: _theme_detected, EventType.THEME_THRESHOLD_REACHED: _threshold,
    EventType.SPEC_AUTO_DRAFTED: _spec_drafted, EventType.SPEC_APPROVED: _spec_changed,
    EventType.SPEC_LINKED: _spec_changed, EventType.SPEC_COMPLETED: _spec_changed,
    EventType.SPEC_UPDATED: _spec_changed, EventType.SPEC_QUALITY_CHECKED: _spec_quality,
    EventType.PRIORITY_CALCULATED: _priority, EventType.COMPETITOR_MENTIONED: _competitor,
    EventType.COMPETITOR_FEATURE_DETECTED: _competitor_feature, EventType.COMPETITIVE_THREAT_IDENTIFIED: _threat,
    EventType.USER_ENGAGED: _user, EventType.USER_AT_RISK: _user,
    EventType.ROADMAP_UPDATED: _roadmap, EventType.ROADMAP_STALLED: _roadmap,
    EventType.AGENT_ALERT_RAISED: _alert, EventType.AGENT_ALERT_RESOLVED: _alert,
    EventType.NOTIFICATION_SENT: _own,
}
