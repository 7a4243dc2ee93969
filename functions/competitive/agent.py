"""Competitive agent: finds the project's competitors in new feedback (name,
alias or domain; see :mod:`shared.mentions`), asks the analyzer what the text
says about each (sentiment, switching intent, features), and publishes
``competitor.mentioned`` and ``competitor.feature_detected``. On its own
``competitor.mentioned`` it counts the competitor's mentions with switching
intent or negative sentiment in the current window and identifies a threat
once per competitor per window (the event id is global to the window, so two
deliveries crossing at once publish one).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from shared.agent import Decision, Deps
from shared.clock import event_time, parse_time, window_start
from shared.events import DomainEvent, EventType
from shared.feedback import feedback_text, load_post, project_settings
from shared.mentions import Mention, find_mentions
from shared.ports import CompetitorSignal
from shared.publish import follow_on
from shared.store import Write

NAME = "competitive"
DEFAULT_THREAT_THRESHOLD = 3
DEFAULT_WINDOW_DAYS = 7


@dataclass(frozen=True)
class Context:
    # feedback.created
    post: dict[str, Any] | None = None
    competitors: list[dict[str, Any]] = field(default_factory=list)
    signals: list[CompetitorSignal] = field(default_factory=list)  # one per mention, in text order
    feedback_sentiment: str | None = None
    # competitor.mentioned
    competitor: dict[str, Any] | None = None
    mentions: list[dict[str, Any]] = field(default_factory=list)  # the competitor's, in the window at least
    threshold: int = DEFAULT_THREAT_THRESHOLD
    window_days: int = DEFAULT_WINDOW_DAYS
    already_identified: bool = False


class CompetitiveAgent:
    name = NAME

    def load(self, event: DomainEvent, deps: Deps) -> Context:
        if event.type == EventType.COMPETITOR_MENTIONED:
            return _load_mentioned(event, deps)
        post = load_post(deps.store, event.aggregate_id)
        if post is None:
            return Context()
        competitors = deps.store.select("competitors", eq={"project_id": event.project_id}, order="name")
        text = feedback_text(post)
        mentions = find_mentions(text, competitors)
        if not mentions:
            return Context(post, competitors)
        signals = deps.analyzer.competitor_signals(text, mentions)
        stored = deps.store.select("sentiment_analysis", eq={"feedback_id": event.aggregate_id}, columns=["label"])
        return Context(post, competitors, signals, stored[0]["label"] if stored else None)

    def decide(self, event: DomainEvent, context: Context) -> Decision:
        return decide(event, context)


def _load_mentioned(event: DomainEvent, deps: Deps) -> Context:
    store, competitor_id = deps.store, event.aggregate_id
    found = store.select("competitors", eq={"id": competitor_id})
    settings = project_settings(store, event.project_id)
    threshold = int(settings.get("competitor_threat_threshold") or DEFAULT_THREAT_THRESHOLD)
    days = int(settings.get("competitor_threat_window_days") or DEFAULT_WINDOW_DAYS)
    start = window_start(_mentioned_at(event), days)
    mentions = store.rpc("competitor_mentions_between", {"p_competitor_id": competitor_id, "p_from": start,
                                                         "p_to": start + timedelta(days=days)})
    identified = store.select("competitive_threats", eq={"competitor_id": competitor_id, "window_start": start},
                              columns=["window_start"])
    return Context(competitor=found[0] if found else None, mentions=mentions, threshold=threshold,
                   window_days=days, already_identified=bool(identified))


def _mentioned_at(event: DomainEvent) -> datetime:
    at = event.payload.get("mentioned_at")
    return parse_time(at, "payload.mentioned_at") if at else event_time(event)


def decide(event: DomainEvent, context: Context) -> Decision:
    if event.type == EventType.COMPETITOR_MENTIONED:
        return decide_threat(event, context)
    if context.post is None:
        return Decision(summary={"skipped": "feedback no longer exists"})
    mentions = find_mentions(feedback_text(context.post), context.competitors)
    if not mentions:
        return Decision(summary={"mentions": 0})
    signals = {s.competitor: s for s in context.signals}
    at = event_time(event)
    rows, events = [], []
    for mention in mentions:
        signal = signals.get(mention.name)
        rows.append(_mention_row(event, mention, signal, at))
        events.extend(_mention_events(event, mention, signal, context.feedback_sentiment, at))
    write = Write("competitor_mentions", rows, ("feedback_id", "competitor_id"))
    return Decision(writes=[write], events=events,
                    summary={"mentions": [m.name for m in mentions],
                             "switching": [s.competitor for s in context.signals if s.switching_intent]})


def _mention_row(event: DomainEvent, mention: Mention, signal: CompetitorSignal | None,
                 at: datetime) -> dict[str, Any]:
    return {"feedback_id": event.aggregate_id, "competitor_id": mention.competitor_id,
            "project_id": event.project_id, "matched": mention.matched, "quote": mention.quote,
            "sentiment": signal.sentiment if signal else None,
            "switching_intent": bool(signal and signal.switching_intent),
            "features": list(signal.features) if signal else [], "model": signal.model if signal else "catalogue",
            "source_event_id": event.id, "mentioned_at": at}


def _mention_events(event: DomainEvent, mention: Mention, signal: CompetitorSignal | None,
                    feedback_sentiment: str | None, at: datetime) -> list[DomainEvent]:
    base = {"competitor_id": mention.competitor_id, "competitor": mention.name,
            "feedback_id": str(event.aggregate_id), "quote": mention.quote,
            "model": signal.model if signal else "catalogue"}
    payload = {**base, "matched": mention.matched, "sentiment": signal.sentiment if signal else None,
               "feedback_sentiment": feedback_sentiment, "switching_intent": bool(signal and signal.switching_intent),
               "features": list(signal.features) if signal else [], "mentioned_at": at.isoformat()}
    out = [follow_on(event, agent=NAME, event_type=EventType.COMPETITOR_MENTIONED, aggregate_type="competitor",
                     aggregate_id=UUID(mention.competitor_id), payload=payload, key=mention.competitor_id)]
    for feature in signal.features if signal else []:
        out.append(follow_on(event, agent=NAME, event_type=EventType.COMPETITOR_FEATURE_DETECTED,
                             aggregate_type="competitor", aggregate_id=UUID(mention.competitor_id),
                             payload={**base, "feature": feature},
                             key=f"{mention.competitor_id}:{feature.casefold()}"))
    return out


def qualifies(row: dict[str, Any]) -> bool:
    """A mention that counts towards a threat: switching intent or negative sentiment."""
    return bool(row.get("switching_intent")) or row.get("sentiment") == "negative"


def decide_threat(event: DomainEvent, context: Context) -> Decision:
    competitor = context.competitor
    if competitor is None:
        return Decision(summary={"skipped": "competitor no longer in the catalogue"})
    start = window_start(_mentioned_at(event), context.window_days)
    end = start + timedelta(days=context.window_days)
    counted = sorted((r for r in context.mentions if qualifies(r) and start <= parse_time(r["mentioned_at"]) < end),
                     key=lambda r: (parse_time(r["mentioned_at"]), str(r["feedback_id"])))
    summary = {"competitor": competitor["name"], "window_start": start.isoformat(), "qualifying": len(counted),
               "threshold": context.threshold}
    if len(counted) < context.threshold or context.already_identified:
        return Decision(summary=summary)
    feedback_ids = [str(r["feedback_id"]) for r in counted]
    model = str(event.payload.get("model") or "catalogue")
    row = {"competitor_id": competitor["id"], "window_start": start, "project_id": event.project_id,
           "window_days": context.window_days, "mentions": len(counted), "threshold": context.threshold,
           "feedback_ids": feedback_ids, "model": model, "source_event_id": event.id}
    payload = {"competitor_id": str(competitor["id"]), "competitor": competitor["name"],
               "window_start": start.isoformat(), "window_end": end.isoformat(), "mentions": len(counted),
               "threshold": context.threshold, "feedback_ids": feedback_ids,
               "switching": sum(bool(r.get("switching_intent")) for r in counted),
               "negative": sum(r.get("sentiment") == "negative" for r in counted),
               "quotes": [r["quote"] for r in counted[-3:]], "model": model}
    threat = follow_on(event, agent=NAME, event_type=EventType.COMPETITIVE_THREAT_IDENTIFIED,
                       aggregate_type="competitor", aggregate_id=competitor["id"], payload=payload,
                       key=f"{competitor['id']}:{start.isoformat()}", once_per_key=True)
    return Decision(writes=[Write("competitive_threats", [row], ("competitor_id", "window_start"), update=False)],
                    events=[threat], summary={**summary, "identified": True})
