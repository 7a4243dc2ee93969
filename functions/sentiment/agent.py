"""Sentiment agent: scores new and edited feedback and publishes sentiment.analyzed."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from shared.agent import Decision, Deps
from shared.events import CURRENT_VERSIONS, DomainEvent, EventType
from shared.feedback import feedback_text
from shared.ports import Sentiment
from shared.publish import follow_on
from shared.store import Write

NAME = "sentiment"


@dataclass(frozen=True)
class Context:
    sentiment: Sentiment | None  # None: nothing to analyse (text unchanged, or a newer result stored)
    text_length: int
    stored_at: datetime | None = None  # when the event behind the stored analysis was created


def text_changed(event: DomainEvent) -> bool:
    """A status-only edit keeps the text, so it keeps its sentiment."""
    if event.type != EventType.FEEDBACK_UPDATED:
        return True
    return bool({"title", "body"} & set(event.payload.get("changed") or ["title", "body"]))


class SentimentAgent:
    name = NAME

    def load(self, event: DomainEvent, deps: Deps) -> Context:
        text = feedback_text(event.payload)
        stored = deps.store.select("sentiment_analysis", eq={"feedback_id": event.aggregate_id},
                                   columns=["source_event_at"])
        stored_at = stored[0]["source_event_at"] if stored else None
        if not text_changed(event) or superseded(event, stored_at):
            return Context(None, len(text), stored_at)
        [sentiment] = deps.analyzer.sentiment([text])
        return Context(sentiment, len(text), stored_at)

    def decide(self, event: DomainEvent, context: Context) -> Decision:
        return decide(event, context)


def event_time(event: DomainEvent) -> datetime | None:
    return event.created_at or event.metadata.timestamp


def superseded(event: DomainEvent, stored_at: datetime | None) -> bool:
    """A late retry of an older event, after a newer edit was analysed: it must
    neither overwrite the result nor tell theme and notify an outdated label."""
    at = event_time(event)
    return stored_at is not None and at is not None and at < stored_at


def decide(event: DomainEvent, context: Context) -> Decision:
    s = context.sentiment
    if superseded(event, context.stored_at):
        return Decision(summary={"skipped": "a newer edit was already analysed"})
    if s is None:
        return Decision(summary={"skipped": "text unchanged"})
    row = {"feedback_id": event.aggregate_id, "project_id": event.project_id, "label": s.label,
           "score": round(s.score, 4), "confidence": round(s.confidence, 4), "model": s.model,
           "source_event_id": event.id, "source_event_at": event_time(event)}
    payload = {"feedback_id": str(event.aggregate_id), "label": s.label, "score": row["score"],
               "confidence": row["confidence"], "model": s.model,
               "vote_count": int(event.payload.get("vote_count") or 0), "trigger": event.type}
    analyzed = follow_on(event, agent=NAME, event_type=EventType.SENTIMENT_ANALYZED, aggregate_type="feedback",
                         aggregate_id=event.aggregate_id, payload=payload,
                         version=CURRENT_VERSIONS[EventType.SENTIMENT_ANALYZED])
    write = Write("sentiment_analysis", [row], ("feedback_id",), guard="source_event_at")
    return Decision(writes=[write], events=[analyzed],
                    summary={"label": s.label, "score": row["score"]})
