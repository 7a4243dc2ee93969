"""Theme agent: puts analysed feedback in the nearest theme or starts a new
one, keeps each theme's centroid, and announces a theme crossing its
project's threshold exactly once. Items are compared in the theme space of
:mod:`shared.theme_space` (themes record that space as their
``embedding_model``), with the same rules as ``signalsloop analyze themes``.

Runs one delivery at a time per project (``serialize_by_project`` in the
registry), so counts read here are not raced by a sibling delivery; the
threshold event's id is global to (theme, threshold), so even a replay cannot
announce it twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from uuid import UUID

import numpy as np

from shared import theme_space
from shared.agent import Decision, Deps
from shared.clustering import DEFAULT_THEME_THRESHOLD, assign, cosine, update_centroid
from shared.events import DomainEvent, EventType
from shared.feedback import embedding_text, feedback_text, load_post, project_settings
from shared.publish import follow_on, stable_id
from shared.store import Write

NAME = "theme"
DEFAULT_SPEC_THRESHOLD = 20
MAX_THEME_NAME = 120  # themes.name check constraint


@dataclass(frozen=True)
class Context:
    post: dict[str, Any] | None
    embedding: list[float]
    model: str
    themes: list[dict[str, Any]]
    current_link: dict[str, Any] | None
    similarity_threshold: float
    spec_threshold: int
    new_theme_name: str | None


class ThemeAgent:
    name = NAME

    def load(self, event: DomainEvent, deps: Deps) -> Context:
        store, feedback_id = deps.store, event.aggregate_id
        post = load_post(store, feedback_id)
        settings = project_settings(store, event.project_id)
        embedding_model = deps.analyzer.embedding_model
        similarity = float(settings.get("theme_similarity",
                                        theme_space.default_threshold(embedding_model, DEFAULT_THEME_THRESHOLD)))
        spec_threshold = int(settings.get("theme_threshold", DEFAULT_SPEC_THRESHOLD))
        model = theme_space.space_name(embedding_model)
        themes = store.select("themes", eq={"project_id": event.project_id, "embedding_model": model},
                              order="created_at")
        links = store.select("theme_feedback", eq={"feedback_id": feedback_id})
        text = feedback_text(post or {})
        stored = store.select("feedback_embeddings", eq={"feedback_id": feedback_id, "model": embedding_model},
                              columns=["embedding"])
        raw = _vector(stored[0]["embedding"]) if stored else deps.analyzer.embed([embedding_text(post or {})])[0]
        embedding = [float(x) for x in theme_space.theme_vectors(np.asarray(raw), embedding_model)[0]]
        name = None
        if post and not links and _joins(embedding, themes, similarity) is None:
            name = theme_space.titled(deps.analyzer.name_theme([text]), np.asarray([raw]), embedding_model)
        return Context(post, embedding, model, themes, links[0] if links else None, similarity,
                       spec_threshold, name)

    def decide(self, event: DomainEvent, context: Context) -> Decision:
        return decide(event, context)


def _vector(value: Any) -> list[float]:
    """pgvector comes back as text '[0.1,...]' over psycopg, arrays as lists."""
    if isinstance(value, str):
        return [float(x) for x in value.strip("[]").split(",") if x]
    return [float(x) for x in value]


def _joins(embedding: list[float], themes: list[dict[str, Any]], threshold: float) -> UUID | None:
    key, _ = assign(embedding, [(t["id"], t["centroid"], t["feedback_count"]) for t in themes], threshold)
    return key


def _same_name(context: Context) -> UUID | None:
    """A feedback item the embedding left alone but that the namer would call
    exactly what an existing theme is called joins that theme: two themes
    both named "Dark Mode" help nobody (small themes' centroids are noisy)."""
    wanted = (context.new_theme_name or "").strip().casefold()
    matches = [t for t in context.themes if wanted and t["name"].strip().casefold() == wanted]
    return max(matches, key=lambda t: (t["feedback_count"], str(t["id"])))["id"] if matches else None


def decide(event: DomainEvent, context: Context) -> Decision:
    if context.post is None:
        return Decision(summary={"skipped": "feedback no longer exists"})
    label = event.payload.get("label", "neutral")
    by_id = {str(t["id"]): t for t in context.themes}
    if context.current_link is not None:
        theme = by_id.get(str(context.current_link["theme_id"]))
        if theme is None:
            return Decision(summary={"skipped": "theme of another embedding model"})
        link = {**_link(event, theme["id"], context.current_link.get("similarity")), "sentiment_label": label}
        return _announce(event, context, theme, [Write("theme_feedback", [link], ("feedback_id",))],
                         count=theme["feedback_count"], created=False)
    joined = _joins(context.embedding, context.themes, context.similarity_threshold) or _same_name(context)
    if joined is None:
        theme = {"id": stable_id("theme", event.project_id, event.aggregate_id), "project_id": event.project_id,
                 "name": _theme_name(context.new_theme_name), "embedding_model": context.model,
                 "centroid": context.embedding, "feedback_count": 0, "threshold_reached_at": None}
        similarity = 1.0
    else:
        theme = by_id[str(joined)]
        theme = {**theme, "centroid": update_centroid(theme["centroid"], theme["feedback_count"], context.embedding)}
        similarity = cosine(context.embedding, by_id[str(joined)]["centroid"])
    row = {k: theme[k] for k in ("id", "project_id", "name", "embedding_model", "centroid")}
    writes = [Write("themes", [row], ("id",)),
              Write("theme_feedback", [{**_link(event, theme["id"], similarity), "sentiment_label": label}],
                    ("feedback_id",))]
    return _announce(event, context, theme, writes, count=theme["feedback_count"] + 1, created=joined is None)


def _theme_name(name: str | None) -> str:
    """The analyzer's name, clipped to fit the column (a one-word 100k-character post names its theme)."""
    return (name or "").strip()[:MAX_THEME_NAME].rstrip() or "Untitled theme"


def _link(event: DomainEvent, theme_id: Any, similarity: Any) -> dict[str, Any]:
    return {"feedback_id": event.aggregate_id, "theme_id": theme_id, "project_id": event.project_id,
            "similarity": None if similarity is None else round(float(similarity), 4)}


def _announce(event: DomainEvent, context: Context, theme: dict[str, Any], writes: list[Write], *, count: int,
              created: bool) -> Decision:
    payload = {"theme_id": str(theme["id"]), "name": theme["name"], "feedback_id": str(event.aggregate_id),
               "feedback_count": count, "threshold": context.spec_threshold}
    kind = EventType.THEME_DETECTED if created else EventType.THEME_UPDATED
    events = [follow_on(event, agent=NAME, event_type=kind, aggregate_type="theme", aggregate_id=theme["id"],
                        payload=payload)]
    if count >= context.spec_threshold and not theme.get("threshold_reached_at"):
        events.append(follow_on(event, agent=NAME, event_type=EventType.THEME_THRESHOLD_REACHED,
                                aggregate_type="theme", aggregate_id=theme["id"], payload=payload,
                                key=f"{theme['id']}:{context.spec_threshold}", once_per_key=True))
        writes = [*writes, Write("themes", [{"id": theme["id"], "project_id": event.project_id,
                                            "name": theme["name"], "embedding_model": context.model,
                                            "centroid": theme["centroid"],
                                            "threshold_reached_at": event.created_at or event.metadata.timestamp}],
                                 ("id",))]
    return Decision(writes=writes, events=events,
                    summary={"theme": theme["name"], "count": count, "created": created})
