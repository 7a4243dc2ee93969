"""Duplicate agent: embeds new feedback, finds near-duplicates among the
project's existing feedback and publishes duplicate.found with the
candidates, best first.

The search is ``public.match_feedback_hybrid`` (see its migration): candidates
from full-text search over the post's lexemes and from the stored embeddings
(pgvector where present), fused into one calibrated score, so a project's
``duplicate_threshold`` means what it meant for the cosine alone. The same
SQL serves ``signalsloop analyze similarity``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from shared.agent import Decision, Deps
from shared.clustering import DEFAULT_DUPLICATE_THRESHOLD
from shared.events import DomainEvent, EventType
from shared.feedback import embedding_text
from shared.project_settings import check_project_settings
from shared.publish import follow_on
from shared.store import Write

NAME = "duplicate"
MAX_CANDIDATES = 5


@dataclass(frozen=True)
class Context:
    model: str
    embedding: list[float]
    threshold: float
    # feedback_id, similarity (the fused score), cosine, lexical, title
    matches: list[dict[str, Any]] = field(default_factory=list)


class DuplicateAgent:
    name = NAME

    def load(self, event: DomainEvent, deps: Deps) -> Context:
        """One round trip besides the ledger's (duplicate_context): the
        project's settings and the search with the titles of what it found."""
        analyzer = deps.analyzer
        [embedding] = analyzer.embed([embedding_text(event.payload)])
        found = deps.store.rpc("duplicate_context", {
            "p_project_id": event.project_id, "p_feedback_id": event.aggregate_id,
            "p_model": analyzer.embedding_model, "p_embedding": embedding,
            "p_limit": MAX_CANDIDATES, "p_default_threshold": DEFAULT_DUPLICATE_THRESHOLD}) or {}
        settings = check_project_settings(found.get("settings"))
        threshold = float(settings.get("duplicate_threshold", DEFAULT_DUPLICATE_THRESHOLD))
        matches = [{"feedback_id": m["feedback_id"], "similarity": m["score"], "cosine": m["similarity"],
                    "lexical": m["lexical"], "title": m.get("title") or ""} for m in found.get("matches") or []]
        return Context(analyzer.embedding_model, embedding, threshold, matches)

    def decide(self, event: DomainEvent, context: Context) -> Decision:
        return decide(event, context)


def decide(event: DomainEvent, context: Context) -> Decision:
    embedding_row = {"feedback_id": event.aggregate_id, "project_id": event.project_id, "model": context.model,
                     "dims": len(context.embedding), "embedding": context.embedding}
    writes = [Write("feedback_embeddings", [embedding_row], ("feedback_id",))]
    candidates = sorted(context.matches, key=lambda m: (-float(m["similarity"]), str(m["feedback_id"])))
    candidates = [m for m in candidates if float(m["similarity"]) >= context.threshold][:MAX_CANDIDATES]
    if not candidates:
        return Decision(writes=writes, summary={"duplicates": 0})
    pairs = [{"feedback_id": event.aggregate_id, "duplicate_of": m["feedback_id"], "project_id": event.project_id,
              "similarity": round(float(m["similarity"]), 4), "model": context.model, "source_event_id": event.id}
             for m in candidates]
    writes.append(Write("duplicates", pairs, ("feedback_id", "duplicate_of")))
    payload = {"feedback_id": str(event.aggregate_id), "title": event.payload.get("title", ""),
               "threshold": context.threshold, "model": context.model,
               "candidates": [{"feedback_id": str(m["feedback_id"]), "similarity": round(float(m["similarity"]), 4),
                               "title": m.get("title", "")} for m in candidates]}
    found = follow_on(event, agent=NAME, event_type=EventType.DUPLICATE_FOUND, aggregate_type="feedback",
                      aggregate_id=event.aggregate_id, payload=payload)
    return Decision(writes=writes, events=[found], summary={"duplicates": len(candidates)})
