"""Spec writer agent: when a theme crosses its threshold, drafts a spec from
the theme's feedback (problem, evidence with quotes and votes, user stories,
acceptance criteria, success metrics, open questions) and stores it as a draft.

The spec's id is derived from the theme, so one theme gets one draft however
often the event is delivered or replayed."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from shared.agent import Decision, Deps
from shared.events import DomainEvent, EventType
from shared.feedback import as_item
from shared.ports import SpecDraft
from shared.publish import follow_on, stable_id
from shared.store import Write

NAME = "spec_writer"
MAX_ITEMS = 50


@dataclass(frozen=True)
class Context:
    theme: dict[str, Any] | None
    existing_spec: dict[str, Any] | None
    draft: SpecDraft | None
    feedback_count: int
    total_votes: int


class SpecWriterAgent:
    name = NAME

    def load(self, event: DomainEvent, deps: Deps) -> Context:
        store, theme_id = deps.store, event.aggregate_id
        themes = store.select("themes", eq={"id": theme_id})
        existing = store.select("specs", eq={"id": stable_id("spec", theme_id)}, columns=["id", "title"])
        if not themes or existing:
            return Context(themes[0] if themes else None, existing[0] if existing else None, None, 0, 0)
        links = store.select("theme_feedback", eq={"theme_id": theme_id}, columns=["feedback_id"])
        posts = store.select("posts", in_={"id": [link["feedback_id"] for link in links]})
        posts.sort(key=lambda p: (-int(p["vote_count"]), str(p["id"])))
        items = [as_item(p) for p in posts[:MAX_ITEMS]]
        draft = deps.analyzer.draft_spec(themes[0]["name"], items)
        return Context(themes[0], None, draft, len(posts), sum(int(p["vote_count"]) for p in posts))

    def decide(self, event: DomainEvent, context: Context) -> Decision:
        return decide(event, context)


def decide(event: DomainEvent, context: Context) -> Decision:
    if context.theme is None:
        return Decision(summary={"skipped": "theme no longer exists"})
    if context.existing_spec is not None or context.draft is None:
        spec_id = stable_id("spec", event.aggregate_id)
        return Decision(summary={"skipped": "spec already drafted", "spec_id": str(spec_id)})
    draft = context.draft
    spec_id = stable_id("spec", context.theme["id"])
    content = {**draft.model_dump(mode="json", exclude={"model", "title"}), "theme": context.theme["name"],
               "feedback_count": context.feedback_count, "total_votes": context.total_votes}
    row = {"id": spec_id, "project_id": event.project_id, "theme_id": context.theme["id"], "title": draft.title[:300],
           "status": "draft", "content": content, "source": "agent", "model": draft.model}
    payload = {"spec_id": str(spec_id), "theme_id": str(context.theme["id"]), "theme": context.theme["name"],
               "title": row["title"], "evidence_count": len(draft.evidence),
               "feedback_count": context.feedback_count, "total_votes": context.total_votes, "model": draft.model}
    drafted = follow_on(event, agent=NAME, event_type=EventType.SPEC_AUTO_DRAFTED, aggregate_type="spec",
                        aggregate_id=spec_id, payload=payload, key=str(spec_id), once_per_key=True)
    return Decision(writes=[Write("specs", [row], ("id",), update=False)], events=[drafted],
                    summary={"spec_id": str(spec_id), "title": row["title"]})
