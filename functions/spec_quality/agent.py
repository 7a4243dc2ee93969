"""Spec quality agent: on spec.auto_drafted and spec.updated, scores the
spec's current version against the rubric (:mod:`functions.spec_quality.rubric`
offline, OpenAI structured outputs when a key is set), stores the score with
each finding and its fix (one row per spec version) and publishes
spec.quality_checked; notify turns a low score into a message for the spec's
owner.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from uuid import UUID

from functions.spec_quality import rubric
from shared.agent import Decision, Deps
from shared.events import DomainEvent, EventType
from shared.feedback import project_settings
from shared.publish import follow_on, stable_id
from shared.store import Write

NAME = "spec_quality"
DEFAULT_MIN_SCORE = 60


@dataclass(frozen=True)
class Context:
    spec: dict[str, Any] | None
    review: rubric.Review | None
    owner_id: UUID | None
    min_score: int = DEFAULT_MIN_SCORE
    already_checked: bool = False


class SpecQualityAgent:
    name = NAME

    def load(self, event: DomainEvent, deps: Deps) -> Context:
        store = deps.store
        specs = store.select("specs", eq={"id": event.aggregate_id, "project_id": event.project_id})
        if not specs:
            return Context(None, None, None)
        spec = specs[0]
        done = store.select("spec_quality_checks", eq={"spec_id": spec["id"], "spec_version": spec["version"]},
                            columns=["id"])
        settings = project_settings(store, event.project_id)
        min_score = int(settings.get("spec_quality_min", DEFAULT_MIN_SCORE))
        owner = _owner(deps, spec)
        if done:
            return Context(spec, None, owner, min_score, already_checked=True)
        content = spec.get("content") or {}
        ids = rubric.evidence_ids(content)
        known = {UUID(str(r["id"])) for r in store.select(
            "posts", in_={"id": ids}, eq={"project_id": event.project_id}, columns=["id"])} if ids else set()
        return Context(spec, _review(deps, spec["title"], content, known), owner, min_score)

    def decide(self, event: DomainEvent, context: Context) -> Decision:
        return decide(event, context)


def _owner(deps: Deps, spec: dict[str, Any]) -> UUID | None:
    """The spec's owner: named in its content, else the project's owner."""
    named = (spec.get("content") or {}).get("owner_id")
    if named:
        return UUID(str(named))
    rows = deps.store.select("projects", eq={"id": spec["project_id"]}, columns=["owner_id"])
    return rows[0]["owner_id"] if rows and rows[0]["owner_id"] else None


def _review(deps: Deps, title: str, content: dict[str, Any], known: set[UUID]) -> rubric.Review:
    """OpenAI when a key is set; the offline rubric otherwise (without building
    the offline analyzer, which this function does not ship)."""
    key = deps.settings.openai_api_key
    if key is not None and key.get_secret_value():
        from shared.analyzers.openai_analyzer import OpenAIAnalyzer

        analyzer = deps.analyzer
        if isinstance(analyzer, OpenAIAnalyzer):
            from functions.spec_quality import openai_review

            return openai_review.review(analyzer, title, content, known)
    return rubric.review(title, content, known)


def decide(event: DomainEvent, context: Context) -> Decision:
    spec, review = context.spec, context.review
    if spec is None:
        return Decision(summary={"skipped": "spec no longer exists"})
    if context.already_checked or review is None:
        return Decision(summary={"skipped": "this version is already checked", "version": spec["version"]})
    version = int(spec["version"])
    row = {"id": stable_id("spec_quality", spec["id"], version), "project_id": event.project_id,
           "spec_id": spec["id"], "spec_version": version, "score": review.score,
           "findings": [f.to_json() for f in review.findings], "model": review.model, "source_event_id": event.id}
    low = review.score < context.min_score
    payload = {"spec_id": str(spec["id"]), "title": spec["title"], "version": version, "score": review.score,
               "low": low, "min_score": context.min_score, "model": review.model, "fixes": review.fixes,
               "findings": [{"item": f.item, "finding": f.finding, "fix": f.fix}
                            for f in review.findings if not f.passed],
               "owner_id": str(context.owner_id) if context.owner_id else None}
    checked = follow_on(event, agent=NAME, event_type=EventType.SPEC_QUALITY_CHECKED, aggregate_type="spec",
                        aggregate_id=spec["id"], payload=payload, key=f"{spec['id']}:{version}", once_per_key=True)
    return Decision(writes=[Write("spec_quality_checks", [row], ("spec_id", "spec_version"), update=False)],
                    events=[checked], summary={"score": review.score, "version": version, "low": low})
