"""Priority agent: a 0-100 priority from votes, sentiment, theme size,
duplicates and recency, with every component explained in the payload."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from shared.agent import Decision, Deps
from shared.events import DomainEvent, EventType
from shared.publish import follow_on
from shared.store import Write

NAME = "priority"
# Recorded with every score (priority_scores.model): the weighted formula below, versioned.
MODEL = "priority-formula-1"
# Weights sum to 100; each component is scaled to [0, 1] first.
WEIGHTS = {"votes": 35.0, "sentiment": 20.0, "theme": 20.0, "duplicates": 15.0, "recency": 10.0}
VOTES_SATURATE = 50
THEME_SATURATE = 20
DUPLICATES_SATURATE = 5
RECENCY_HALF_LIFE_DAYS = 14.0


@dataclass(frozen=True)
class Context:
    post: dict[str, Any] | None
    sentiment_score: float | None
    theme_size: int
    duplicates: int


class PriorityAgent:
    name = NAME

    def load(self, event: DomainEvent, deps: Deps) -> Context:
        """One round trip (priority_context): the post, its sentiment, its
        theme's size and its duplicates, from the event's project only."""
        found = deps.store.rpc("priority_context", {"p_project_id": event.project_id,
                                                    "p_feedback_id": event.aggregate_id}) or {}
        post = found.get("post")
        if post is not None and isinstance(post.get("created_at"), str):
            post = {**post, "created_at": datetime.fromisoformat(post["created_at"])}
        score = found.get("sentiment_score")
        return Context(post, None if score is None else float(score), int(found.get("theme_size") or 0),
                       int(found.get("duplicates") or 0))

    def decide(self, event: DomainEvent, context: Context) -> Decision:
        return decide(event, context)


def components(context: Context, now: datetime) -> dict[str, float]:
    """Each factor in [0, 1]. Negative sentiment raises priority (pain to fix)."""
    post = context.post or {}
    votes = int(post.get("vote_count") or 0)
    created = post.get("created_at")
    age_days = max((now - created).total_seconds() / 86400, 0.0) if isinstance(created, datetime) else 0.0
    pain = 0.5 if context.sentiment_score is None else (1 - context.sentiment_score) / 2
    return {
        "votes": min(math.log1p(votes) / math.log1p(VOTES_SATURATE), 1.0),
        "sentiment": pain,
        "theme": min(context.theme_size / THEME_SATURATE, 1.0),
        "duplicates": min(context.duplicates / DUPLICATES_SATURATE, 1.0),
        "recency": 0.5 ** (age_days / RECENCY_HALF_LIFE_DAYS),
    }


def decide(event: DomainEvent, context: Context) -> Decision:
    if context.post is None:
        return Decision(summary={"skipped": "feedback no longer exists"})
    now = event.created_at or event.metadata.timestamp or context.post["created_at"]
    parts = components(context, now)
    score = round(sum(WEIGHTS[k] * v for k, v in parts.items()), 2)
    explained = {k: {"value": round(v, 4), "weight": WEIGHTS[k], "points": round(WEIGHTS[k] * v, 2)}
                 for k, v in parts.items()}
    row = {"feedback_id": event.aggregate_id, "project_id": event.project_id, "score": score,
           "components": explained, "model": MODEL, "source_event_id": event.id, "source_event_at": now}
    payload = {"feedback_id": str(event.aggregate_id), "title": context.post.get("title", ""), "score": score,
               "components": explained, "vote_count": int(context.post.get("vote_count") or 0),
               "trigger": event.type, "model": MODEL}
    calculated = follow_on(event, agent=NAME, event_type=EventType.PRIORITY_CALCULATED, aggregate_type="feedback",
                           aggregate_id=event.aggregate_id, payload=payload)
    write = Write("priority_scores", [row], ("feedback_id",), guard="source_event_at")
    return Decision(writes=[write], events=[calculated],
                    summary={"score": score})
